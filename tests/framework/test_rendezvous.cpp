// The file rendezvous that bootstraps NCCL without MPI (framework/dist/rendezvous.h): configuration from the
// environment, Slurm's per-node task counts, and the exchange itself between real processes (rank 0 late,
// several readers), with the errors a user meets: no key, an unsafe key, a missing file after the timeout, a
// file of the wrong size. (The NCCL initialisation that uses it needs GPUs: not tested here.)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "framework/dist/rendezvous.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::dist;
namespace fs = std::filesystem;

namespace {

std::string fresh_folder(const std::string& tag) {
  const fs::path p =
      fs::temp_directory_path() / ("iris-rendezvous-" + tag + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace

TEST_CASE("dist slurm_tasks_on_node reads SLURM_STEP_TASKS_PER_NODE") {
  CHECK(slurm_tasks_on_node("4", 0) == 4);
  CHECK(slurm_tasks_on_node("4", 1) == -1);
  CHECK(slurm_tasks_on_node("2(x3),1", 0) == 2);
  CHECK(slurm_tasks_on_node("2(x3),1", 2) == 2);
  CHECK(slurm_tasks_on_node("2(x3),1", 3) == 1);
  CHECK(slurm_tasks_on_node("2(x3),1", 4) == -1);
  CHECK(slurm_tasks_on_node("8,8,4(x2)", 3) == 4);
  for (const std::string bad : {"", "x", "2(3)", "2(x3", "2,,1", "2(x)", "-1", "2,"}) {
    CAPTURE(bad);
    CHECK(slurm_tasks_on_node(bad, 0) == -1);
  }
  CHECK(slurm_tasks_on_node("4", -1) == -1);
  const LauncherInfo slurm = detect_launcher(fake_env({{"SLURM_STEP_ID", "0"},
                                                       {"SLURM_PROCID", "5"},
                                                       {"SLURM_STEP_NUM_TASKS", "7"},
                                                       {"SLURM_LOCALID", "1"},
                                                       {"SLURM_NODEID", "2"},
                                                       {"SLURM_STEP_TASKS_PER_NODE", "3(x2),1"}}));
  CHECK(slurm.local_rank == 1);
  CHECK(slurm.local_size == 1);
}

TEST_CASE("dist rendezvous configuration from the environment") {
  CHECK_FALSE(rendezvous_from_env(fake_env({{"SLURM_JOB_ID", "77"}})).enabled());
  const RendezvousConfig slurm = rendezvous_from_env(
      fake_env({{"IRIS_RENDEZVOUS_DIR", "/shared/x"}, {"SLURM_JOB_ID", "77"}, {"SLURM_STEP_ID", "3"}}));
  CHECK(slurm.enabled());
  CHECK(slurm.key == "77.3");
  CHECK(slurm.path() == "/shared/x/iris-rendezvous-77.3");
  const RendezvousConfig keyed = rendezvous_from_env(fake_env(
      {{"IRIS_RENDEZVOUS_DIR", "/shared/x"}, {"IRIS_RENDEZVOUS_KEY", "run-5_b"}, {"SLURM_JOB_ID", "77"}}));
  CHECK(keyed.key == "run-5_b");
  check_throws_with(
      [] {
        rendezvous_from_env(fake_env({{"IRIS_RENDEZVOUS_DIR", "/shared/x"}}));
      },
      {"IRIS_RENDEZVOUS_KEY", "unique to this job"});
  check_throws_with(
      [] {
        rendezvous_from_env(fake_env({{"IRIS_RENDEZVOUS_DIR", "/s"}, {"IRIS_RENDEZVOUS_KEY", "../etc"}}));
      },
      {"'../etc'", "file name"});
}

TEST_CASE("dist rendezvous_exchange hands rank 0's bytes to every other process") {
  RendezvousConfig c;
  c.dir = fresh_folder("exchange");
  c.key = "job1";
  const std::vector<uint8_t> id = {7, 0, 255, 3, 42, 1, 2, 3, 4, 5, 6, 99};
  // Three readers start first and wait; rank 0 publishes after a while.
  std::vector<pid_t> readers;
  for (int rank = 1; rank <= 3; ++rank) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 3;
      try {
        code = rendezvous_exchange(c, rank, {}, id.size(), 30.0) == id ? 0 : 1;
      } catch (...) {
        code = 2;
      }
      ::_exit(code);
    }
    readers.push_back(pid);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  CHECK(rendezvous_exchange(c, 0, id, id.size(), 30.0) == id);
  for (pid_t pid : readers) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK_MESSAGE(WIFEXITED(status), "a reader died");
    CHECK_MESSAGE(WEXITSTATUS(status) == 0, "reader exit code ", WEXITSTATUS(status),
                  " (1: other bytes, 2: threw)");
  }
  // Only the published file is there (no temporary left), and rank 0 removes it afterwards.
  int files = 0;
  for (const auto& e : fs::directory_iterator(c.dir)) files += e.path().string() == c.path() ? 1 : 100;
  CHECK(files == 1);
  rendezvous_remove(c);
  CHECK_FALSE(fs::exists(c.path()));
  fs::remove_all(c.dir);
}

TEST_CASE("dist rendezvous_exchange names the file when it never comes or is not the right size") {
  RendezvousConfig c;
  c.dir = fresh_folder("errors");
  c.key = "job2";
  const auto t0 = std::chrono::steady_clock::now();
  check_throws_with([&] { rendezvous_exchange(c, 2, {}, 16, 0.3); },
                    {"rank 2", c.path(), "did rank 0 start", "IRIS_RENDEZVOUS_DIR"});
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(waited >= 0.3);
  CHECK(waited < 5.0);
  std::ofstream(c.path(), std::ios::binary) << "short";
  check_throws_with([&] { rendezvous_exchange(c, 1, {}, 16, 1.0); },
                    {c.path(), "holds 5 bytes, expected 16"});
  RendezvousConfig missing = c;
  missing.dir = c.dir + "/not-there";
  check_throws_with([&] { rendezvous_exchange(missing, 0, std::vector<uint8_t>(16, 1), 16, 1.0); },
                    {"IRIS_RENDEZVOUS_DIR", "not a folder"});
  fs::remove_all(c.dir);
}
