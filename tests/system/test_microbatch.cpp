// The memory settings: gradient accumulation (train.microbatch) trains the same model as one pass over the
// whole batch, up to summation order, with dropout and flips on (every random draw belongs to a sample, not
// to a pass); a bad value is named. Activation checkpointing (model.checkpoint_res_blocks) and micro-batches
// may be turned on when a run resumes (after running out of memory) and change nothing but the summation
// order.
#include <filesystem>

#include "diffusion/checkpoint.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;
namespace fs = std::filesystem;

TEST_CASE("iris train with train.microbatch equals the whole batch in one pass") {
  const std::string root = fresh_dir("microbatch");
  const std::string data = (fs::path(root) / "data").string();
  write_tiny_shards(data, 48);
  const std::string cfg = write_tiny_config(root, data);
  const std::string common =
      "train --config " + cfg + " --threads 2 --set train.batch_size=12 --set train.steps=4 ";
  auto run = [&](const std::string& name) { return (fs::path(root) / name).string(); };
  auto last = [&](const std::string& name) {
    return load_checkpoint((fs::path(run(name)) / "checkpoints" / checkpoint_name(4)).string());
  };

  const RunResult whole = run_iris(common + "--run " + run("whole"));
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.output);
  // 12 rows in passes of 5, 5 and 2: unequal passes check the per-pass loss weights.
  const RunResult micro = run_iris(common + "--run " + run("micro") + " --set train.microbatch=5");
  REQUIRE_MESSAGE(micro.exit_code == 0, micro.output);
  CHECK_MESSAGE(micro.output.find("micro-batches: 3 forward/backward passes of up to 5") != std::string::npos,
                micro.output);
  const TrainingCheckpoint a = last("whole"), b = last("micro");
  CHECK(a.cursor == b.cursor);
  CHECK(a.samples_seen == b.samples_seen);
  const double d = max_rel_diff(b.model, a.model);
  MESSAGE("micro-batches 5+5+2 vs one pass of 12, after 4 steps: max relative parameter difference ", d);
  CHECK(d < 1e-4);
  // The same comparison can fail: a different global batch trains a different model.
  const RunResult other = run_iris(common + "--run " + run("other") + " --set train.batch_size=8");
  REQUIRE_MESSAGE(other.exit_code == 0, other.output);
  CHECK(max_rel_diff(last("other").model, a.model) > 1e-3);

  // `iris ckpt diff` reports the same: not bit-identical, equal within a tolerance; the other run differs.
  const auto ckpt4 = [&](const std::string& name) {
    return (fs::path(run(name)) / "checkpoints" / checkpoint_name(4)).string();
  };
  const RunResult exact = run_iris("ckpt diff " + ckpt4("micro") + " " + ckpt4("whole"));
  CHECK(exact.exit_code != 0);
  CHECK_MESSAGE(exact.output.find("not bit-identical") != std::string::npos, exact.output);
  const RunResult close =
      run_iris("ckpt diff " + ckpt4("micro") + " " + ckpt4("whole") + " --tolerance 1e-4");
  CHECK_MESSAGE(close.exit_code == 0, close.output);
  CHECK_MESSAGE(close.output.find("equal within --tolerance") != std::string::npos, close.output);
  const RunResult tight =
      run_iris("ckpt diff " + ckpt4("micro") + " " + ckpt4("whole") + " --tolerance 1e-9");
  CHECK(tight.exit_code != 0);
  CHECK_MESSAGE(tight.output.find("above --tolerance") != std::string::npos, tight.output);
  const RunResult far = run_iris("ckpt diff " + ckpt4("other") + " " + ckpt4("whole") + " --tolerance 1e-4");
  CHECK(far.exit_code != 0);
  CHECK_MESSAGE(far.output.find("counters   DIFFER") != std::string::npos, far.output);  // batch 8 vs 12

  const RunResult bad = run_iris(common + "--run " + run("bad") + " --set train.microbatch=-2");
  CHECK(bad.exit_code != 0);
  CHECK_MESSAGE(bad.output.find("train.microbatch") != std::string::npos, bad.output);
  fs::remove_all(root);
}

TEST_CASE(
    "a run resumes with activation checkpointing and micro-batches turned on, training the same model") {
  const std::string root = fresh_dir("memory-resume");
  const std::string data = (fs::path(root) / "data").string();
  write_tiny_shards(data, 48);
  const std::string cfg = write_tiny_config(root, data);
  const std::string common =
      "train --config " + cfg + " --threads 2 --set train.batch_size=12 --set train.steps=6 ";
  auto run = [&](const std::string& name) { return (fs::path(root) / name).string(); };
  const RunResult straight = run_iris(common + "--run " + run("straight"));
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  const RunResult first = run_iris(common + "--run " + run("split") + " --stop-after 3");
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  const RunResult second =
      run_iris(common + "--run " + run("split") +
               " --resume auto --set model.checkpoint_res_blocks=true --set train.microbatch=4");
  REQUIRE_MESSAGE(second.exit_code == 0, second.output);
  check_contains(second, "resumed from");
  const auto at6 = [&](const std::string& name) {
    return load_checkpoint((fs::path(run(name)) / "checkpoints" / checkpoint_name(6)).string());
  };
  const double d = max_rel_diff(at6("split").model, at6("straight").model);
  MESSAGE("3 steps plain + 3 with checkpointing and micro-batches 4+4+4 vs 6 plain: max relative difference ",
          d);
  CHECK(d < 1e-4);
  // Resuming a finished run trains nothing and rewrites nothing.
  const auto written = fs::last_write_time(fs::path(run("split")) / "checkpoints" / checkpoint_name(6));
  const RunResult done = run_iris(common + "--run " + run("split") + " --resume auto");
  REQUIRE_MESSAGE(done.exit_code == 0, done.output);
  check_contains(done, "nothing to train (already at step 6)");
  CHECK(fs::last_write_time(fs::path(run("split")) / "checkpoints" / checkpoint_name(6)) == written);
  // A change of the model itself is still refused.
  const RunResult other =
      run_iris(common + "--run " + run("split") + " --resume auto --set model.base_channels=16");
  CHECK(other.exit_code != 0);
  check_contains(other, "different model configuration");
  fs::remove_all(root);
}
