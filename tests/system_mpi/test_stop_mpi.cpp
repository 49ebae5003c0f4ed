// A coordinated stop under mpirun: SIGTERM sent to one rank only (a scheduler that signals one node first,
// or a user's kill) stops every rank at the same step; rank 0 writes one checkpoint, the job exits 0, and the
// resumed 2-rank run equals an uninterrupted one bit for bit.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "diffusion/checkpoint.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system_mpi/system_mpi_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;
namespace fs = std::filesystem;

namespace {
int64_t lines_of(const fs::path& path) {
  std::ifstream f(path);
  int64_t n = 0;
  for (std::string line; std::getline(f, line);) ++n;
  return n;
}
}  // namespace

TEST_CASE(
    "SIGTERM to one rank under mpirun stops every rank at one step with a checkpoint, and resume is exact") {
  const std::string root = fresh_dir("mpi-stop");
  const std::string data = (fs::path(root) / "data").string();
  write_tiny_shards(data, 48);
  const std::string cfg = write_tiny_config(root, data);
  const std::string train = std::string(iris_binary()) + " train --config " + cfg +
                            " --threads 1 --set train.batch_size=12 --set train.checkpoint_every=0 ";
  const fs::path run = fs::path(root) / "preempted";

  // Each rank records its pid, then becomes iris (exec: the signal reaches iris itself).
  RunResult job;
  std::thread launcher([&] {
    job = run_cmd(mpirun(2) + "sh -c 'echo $$ > " + root + "/pid_$OMPI_COMM_WORLD_RANK; exec " + train +
                  "--run " + run.string() + " --set train.steps=100000'");
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((lines_of(run / "metrics.jsonl") < 3 || !fs::exists(fs::path(root) / "pid_1")) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pid_t rank1 = 0;
  std::ifstream(fs::path(root) / "pid_1") >> rank1;
  const bool signalled = rank1 > 0 && ::kill(rank1, SIGTERM) == 0;
  launcher.join();
  REQUIRE_MESSAGE(signalled, job.output);
  REQUIRE_MESSAGE(job.exit_code == 0, job.output);
  CHECK_MESSAGE(job.output.find("(a stop on another rank); resume with --resume auto") != std::string::npos,
                job.output);  // rank 0 reports; the signal reached rank 1 only
  const auto ckpts = list_checkpoints((run / "checkpoints").string());
  REQUIRE_MESSAGE(ckpts.size() == 1, job.output);
  const TrainingCheckpoint stopped = load_checkpoint(ckpts[0]);
  const int64_t k = stopped.step;
  CHECK(k >= 3);
  CHECK(stopped.world_size == 2);

  // Both ranks continue to k + 2; an uninterrupted 2-rank run of k + 2 steps gives the same bits.
  const std::string to = "--set train.steps=" + std::to_string(k + 2);
  const RunResult resumed = run_cmd(mpirun(2) + train + "--run " + run.string() + " --resume auto " + to);
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  const fs::path straight = fs::path(root) / "straight";
  const RunResult uninterrupted = run_cmd(mpirun(2) + train + "--run " + straight.string() + " " + to);
  REQUIRE_MESSAGE(uninterrupted.exit_code == 0, uninterrupted.output);
  const RunResult diff = run_cmd(std::string(iris_binary()) + " ckpt diff " +
                                 (run / "checkpoints" / checkpoint_name(k + 2)).string() + " " +
                                 (straight / "checkpoints" / checkpoint_name(k + 2)).string());
  CHECK_MESSAGE(diff.exit_code == 0, diff.output);
  fs::remove_all(root);
}
