// The gradient-norm spike guard (train.spike_zscore): it skips updates whose gradient norm is far above its
// running mean, says so, counts them in metrics.jsonl, keeps its statistics in checkpoints (a resumed run
// decides exactly as an uninterrupted one), and changes nothing when it never fires.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "diffusion/checkpoint.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;
namespace fs = std::filesystem;

TEST_CASE("train.spike_zscore skips spiking updates, resumes exactly, and is a no-op when it never fires") {
  const std::string root = fresh_dir("spike-guard");
  const std::string data = (fs::path(root) / "data").string();
  write_tiny_shards(data, 48);
  const std::string cfg = write_tiny_config(root, data);
  const std::string common =
      "train --config " + cfg + " --threads 2 --set train.steps=10 --set train.log_every=1 ";
  // A threshold low enough to fire on ordinary noise in the norm, after 2 steps of statistics.
  const std::string guard = "--set train.spike_zscore=0.2 --set train.spike_warmup=2 ";
  auto run = [&](const std::string& name) { return (fs::path(root) / name).string(); };
  auto ckpt = [&](const std::string& name, int64_t step) {
    return (fs::path(run(name)) / "checkpoints" / checkpoint_name(step)).string();
  };

  const RunResult straight = run_iris(common + guard + "--run " + run("straight"));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  check_contains(straight, "standard deviations above its running mean");
  const TrainingCheckpoint s = load_checkpoint(ckpt("straight", 10));
  MESSAGE("updates skipped in 10 steps: ", s.skipped_updates, "; running norm mean ", s.grad_norm_mean);
  CHECK(s.skipped_updates > 0);
  CHECK(s.skipped_updates < 8);  // steps 1-2 always update; and not everything is a spike
  CHECK(s.grad_norm_count == 10 - s.skipped_updates);
  {
    std::ifstream f((fs::path(run("straight")) / "metrics.jsonl").string());
    nlohmann::json last;  // the last training record (validation records have no loss)
    for (std::string line; std::getline(f, line);)
      if (const auto j = nlohmann::json::parse(line); j.contains("loss")) last = j;
    CHECK(last["skipped_updates"] == s.skipped_updates);
  }

  // Stopped at step 5 and resumed in a fresh process: the same decisions, bit for bit.
  REQUIRE(run_iris(common + guard + "--run " + run("split") + " --stop-after 5").exit_code == 0);
  const RunResult resumed = run_iris(common + guard + "--run " + run("split") + " --resume auto");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  const RunResult same = run_iris("ckpt diff " + ckpt("straight", 10) + " " + ckpt("split", 10));
  CHECK_MESSAGE(same.exit_code == 0, same.output);
  CHECK(load_checkpoint(ckpt("split", 10)).skipped_updates == s.skipped_updates);

  // A guard that never fires trains exactly what no guard trains.
  REQUIRE(run_iris(common + "--run " + run("off")).exit_code == 0);
  REQUIRE(run_iris(common + "--set train.spike_zscore=1e9 --set train.spike_warmup=2 --run " + run("high"))
              .exit_code == 0);
  const RunResult no_op = run_iris("ckpt diff " + ckpt("off", 10) + " " + ckpt("high", 10));
  CHECK_MESSAGE(no_op.exit_code == 0, no_op.output);
  CHECK(load_checkpoint(ckpt("high", 10)).skipped_updates == 0);
  // ... and the skipping guard did train something else.
  CHECK(run_iris("ckpt diff " + ckpt("off", 10) + " " + ckpt("straight", 10)).exit_code != 0);
  fs::remove_all(root);
}
