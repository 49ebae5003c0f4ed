// Exact resume and crash safety, with `iris train` run as separate processes: a run stopped and resumed
// equals an uninterrupted one bit for bit (parameters, EMA, optimizer, data cursor); SIGTERM checkpoints and
// exits 0; SIGKILL during checkpointing never leaves a damaged checkpoint under its final name, and
// --resume auto falls back past a damaged one with a warning.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "diffusion/checkpoint.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;
namespace fs = std::filesystem;

namespace {

void check_same_tensors(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b,
                        const char* what) {
  REQUIRE_MESSAGE(a.size() == b.size(), what, ": ", a.size(), " vs ", b.size(), " tensors");
  for (const auto& [name, t] : a) {
    CAPTURE(what);
    CAPTURE(name);
    REQUIRE(b.count(name) == 1);
    const Tensor& u = b.at(name);
    REQUIRE(t.shape() == u.shape());
    REQUIRE(t.dtype() == u.dtype());
    CHECK(std::memcmp(t.contiguous().data_ptr(), u.contiguous().data_ptr(), t.nbytes()) == 0);
  }
}

void check_same_state(const TrainingCheckpoint& a, const TrainingCheckpoint& b) {
  CHECK(a.step == b.step);
  CHECK(a.cursor == b.cursor);
  CHECK(a.schedule_step == b.schedule_step);
  CHECK(a.samples_seen == b.samples_seen);
  check_same_tensors(a.model, b.model, "model");
  check_same_tensors(a.ema, b.ema, "ema");
  check_same_tensors(a.optimizer.tensors, b.optimizer.tensors, "optimizer");
  CHECK(a.optimizer.ints == b.optimizer.ints);
  CHECK(a.ema_state.ints == b.ema_state.ints);
}

std::string ckpt(const std::string& run, int64_t step) {
  return (fs::path(run) / "checkpoints" / checkpoint_name(step)).string();
}

// Starts iris in the background; returns its pid.
pid_t spawn_iris(const std::vector<std::string>& args, const std::string& log_path) {
  std::fflush(nullptr);  // or the child would flush a copy of our buffered output
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FILE* f = std::freopen(log_path.c_str(), "w", stdout);
    (void)f;
    ::dup2(::fileno(stdout), 2);
    std::vector<char*> argv{const_cast<char*>(iris_binary())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(iris_binary(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int lines_in(const std::string& path) {
  std::ifstream f(path);
  int n = 0;
  std::string line;
  while (std::getline(f, line)) ++n;
  return n;
}

struct Fixture {
  std::string root, data, config;
  explicit Fixture(const std::string& tag) {
    root = fresh_dir(tag);
    data = (fs::path(root) / "data").string();
    write_tiny_shards(data, 64);
    config = write_tiny_config(root, data);
  }
  ~Fixture() { fs::remove_all(root); }
  std::string run(const std::string& name) const { return (fs::path(root) / name).string(); }
};

}  // namespace

TEST_CASE("a run stopped and resumed in a fresh process equals an uninterrupted run bit for bit") {
  Fixture fx("resume");
  const std::string common = "train --config " + fx.config + " --threads 2 ";
  const RunResult a = run_iris(common + "--run " + fx.run("straight"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  const RunResult b1 = run_iris(common + "--run " + fx.run("split") + " --stop-after 3");
  REQUIRE_MESSAGE(b1.exit_code == 0, b1.output);
  CHECK(fs::exists(ckpt(fx.run("split"), 3)));
  const RunResult b2 = run_iris(common + "--run " + fx.run("split") + " --resume auto");
  REQUIRE_MESSAGE(b2.exit_code == 0, b2.output);
  CHECK(b2.output.find("resumed from") != std::string::npos);
  CHECK(b2.output.find("changed since") == std::string::npos);  // the same data: no warning
  check_same_state(load_checkpoint(ckpt(fx.run("straight"), 8)), load_checkpoint(ckpt(fx.run("split"), 8)));
  // `iris ckpt diff` says the same, and tells checkpoints of different steps apart.
  const RunResult same =
      run_iris("ckpt diff " + ckpt(fx.run("straight"), 8) + " " + ckpt(fx.run("split"), 8));
  CHECK_MESSAGE(same.exit_code == 0, same.output);
  CHECK_MESSAGE(same.output.find("model      identical") != std::string::npos, same.output);
  CHECK_MESSAGE(same.output.rfind("identical\n") == same.output.size() - 10, same.output);
  const RunResult steps =
      run_iris("ckpt diff " + ckpt(fx.run("straight"), 8) + " " + ckpt(fx.run("split"), 3));
  CHECK(steps.exit_code != 0);
  CHECK_MESSAGE(steps.output.find("step 8 vs 3") != std::string::npos, steps.output);
  // Starting again in a run folder with checkpoints, without --resume, is refused rather than overwritten.
  const RunResult again = run_iris(common + "--run " + fx.run("split"));
  CHECK(again.exit_code != 0);
  CHECK(again.output.find("--resume auto") != std::string::npos);
}

TEST_CASE("patch training (data.crop_size) stopped and resumed equals an uninterrupted run bit for bit") {
  // 12x12 crops of the 16x16 images (3x3 of their 4x4 low-res copies), flips on: every crop window and flip
  // is drawn from the sample's own stream, so the resumed run cuts the same crops.
  Fixture fx("resume-crop");
  const std::string common = "train --config " + fx.config +
                             " --threads 2 --set data.crop_size=12 --set model.resolution=12"
                             " --set model.attention_resolutions=6 --set train.sample_every=4 ";
  const RunResult a = run_iris(common + "--run " + fx.run("straight"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  const RunResult b1 = run_iris(common + "--run " + fx.run("split") + " --stop-after 3");
  REQUIRE_MESSAGE(b1.exit_code == 0, b1.output);
  const RunResult b2 = run_iris(common + "--run " + fx.run("split") + " --resume auto");
  REQUIRE_MESSAGE(b2.exit_code == 0, b2.output);
  CHECK(b2.output.find("resumed from") != std::string::npos);
  check_same_state(load_checkpoint(ckpt(fx.run("straight"), 8)), load_checkpoint(ckpt(fx.run("split"), 8)));
}

TEST_CASE("SIGTERM finishes the step, writes a checkpoint, exits 0, and the resumed run is exact") {
  Fixture fx("sigterm");
  const std::string run = fx.run("preempted");
  const pid_t pid = spawn_iris({"train", "--config", fx.config, "--threads", "2", "--run", run, "--set",
                                "train.steps=100000", "--set", "train.checkpoint_every=0"},
                               (fs::path(fx.root) / "log.txt").string());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (lines_in((fs::path(run) / "metrics.jsonl").string()) < 3 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(::kill(pid, SIGTERM) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const auto ckpts = list_checkpoints((fs::path(run) / "checkpoints").string());
  REQUIRE(ckpts.size() == 1);
  const int64_t k = read_checkpoint_info(ckpts[0]).step;
  CHECK(k >= 3);
  // Continue to k + 2 steps, and compare with a straight run of k + 2 steps.
  const std::string target = "--set train.steps=" + std::to_string(k + 2) + " --set train.checkpoint_every=0";
  const RunResult resumed =
      run_iris("train --config " + fx.config + " --threads 2 --run " + run + " --resume auto " + target);
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  const RunResult straight =
      run_iris("train --config " + fx.config + " --threads 2 --run " + fx.run("straight") + " " + target);
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  check_same_state(load_checkpoint(ckpt(fx.run("straight"), k + 2)), load_checkpoint(ckpt(run, k + 2)));
}

TEST_CASE("SIGKILL while checkpointing leaves only valid checkpoints, and resume auto skips a damaged one") {
  Fixture fx("sigkill");
  const std::string run = fx.run("killed");
  // A checkpoint every step, killed at varying moments: whatever carries a final name must verify.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const pid_t pid = spawn_iris(
        {"train", "--config", fx.config, "--threads", "1", "--run", run, "--resume", "auto", "--set",
         "train.steps=100000", "--set", "train.checkpoint_every=1", "--set", "train.keep_checkpoints=100"},
        (fs::path(fx.root) / "log.txt").string());
    std::this_thread::sleep_for(std::chrono::milliseconds(700 + 230 * attempt));
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
  }
  const auto ckpts = list_checkpoints((fs::path(run) / "checkpoints").string());
  REQUIRE(!ckpts.empty());
  for (const auto& c : ckpts) CHECK_NOTHROW(verify_checkpoint(c));
  // Damage the newest: --resume auto names it, skips it and resumes from the one before.
  const int64_t newest = read_checkpoint_info(ckpts[0]).step;
  fs::resize_file(ckpts[0], fs::file_size(ckpts[0]) / 2);
  const RunResult r = run_iris("train --config " + fx.config + " --threads 1 --run " + run +
                               " --resume auto --stop-after 1 --set train.steps=100000");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("skipping damaged checkpoint") != std::string::npos);
  CHECK(r.output.find(checkpoint_name(newest)) != std::string::npos);
  if (ckpts.size() > 1) CHECK(r.output.find("resumed from " + ckpts[1]) != std::string::npos);
}

TEST_CASE("resuming on other training data warns, naming the folder and both sample counts") {
  Fixture fx("resume-data");
  const std::string common = "train --config " + fx.config + " --threads 2 --run " + fx.run("r") + " ";
  REQUIRE(run_iris(common + "--stop-after 3").exit_code == 0);
  fs::remove_all(fx.data);
  write_tiny_shards(fx.data, 40);  // re-sharded with fewer images
  const RunResult r = run_iris(common + "--resume auto");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "warning: the training data in '" + fx.data + "' changed since");
  check_contains(r, "64 samples then, 40 now");
}
