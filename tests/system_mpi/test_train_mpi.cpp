// Data-parallel training through `mpirun ... iris train`: 2 ranks x B/2 train the same model as 1 rank x B
// (up to summation order), and a run checkpointed at 2 ranks resumes at 3 ranks and at 1 with the same data
// order (the cursor counts global samples) and the same parameters as an uninterrupted single-rank run.
#include <sys/wait.h>

#include <filesystem>

#include "diffusion/checkpoint.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system_mpi/system_mpi_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;
namespace fs = std::filesystem;

namespace {
std::string ckpt(const std::string& run, int64_t step) {
  return (fs::path(run) / "checkpoints" / checkpoint_name(step)).string();
}
}  // namespace

TEST_CASE("2 ranks equal 1 rank, and a 2-rank checkpoint resumes at 3 ranks and at 1") {
  const std::string root = fresh_dir("mpi-train");
  const std::string data = (fs::path(root) / "data").string();
  write_tiny_shards(data, 48);
  const std::string cfg = write_tiny_config(root, data);
  const std::string args =
      std::string(iris_binary()) + " train --config " + cfg + " --threads 1 --set train.batch_size=12 ";
  auto run = [&](const std::string& name) { return (fs::path(root) / name).string(); };

  const RunResult one = run_cmd(args + "--run " + run("one") + " --set train.steps=4");
  REQUIRE_MESSAGE(one.exit_code == 0, one.output);
  const RunResult two = run_cmd(mpirun(2) + args + "--run " + run("two") + " --set train.steps=4");
  REQUIRE_MESSAGE(two.exit_code == 0, two.output);
  CHECK(two.output.find("data parallel") != std::string::npos);
  const TrainingCheckpoint c1 = load_checkpoint(ckpt(run("one"), 4)),
                           c2 = load_checkpoint(ckpt(run("two"), 4));
  CHECK(c1.cursor == c2.cursor);
  CHECK(c2.world_size == 2);
  const double d = max_rel_diff(c2.model, c1.model);
  MESSAGE("2 ranks vs 1 rank after 4 steps: max relative parameter difference ", d);
  CHECK(d < 1e-3);
  CHECK(d > 0);  // different summation order, so not bit-identical: the test really ran 2 ranks

  // 2 ranks with micro-batches (each rank's 6 rows in passes of 4 and 2; only the last pass all-reduces).
  const RunResult micro = run_cmd(mpirun(2) + args + "--run " + run("two_micro") +
                                  " --set train.steps=4 --set train.microbatch=4");
  REQUIRE_MESSAGE(micro.exit_code == 0, micro.output);
  CHECK(micro.output.find("micro-batches: 2 forward/backward passes") != std::string::npos);
  const double dm = max_rel_diff(load_checkpoint(ckpt(run("two_micro"), 4)).model, c1.model);
  MESSAGE("2 ranks x micro-batches 4+2 vs 1 rank x 12 after 4 steps: max relative parameter difference ", dm);
  CHECK(dm < 1e-3);

  // Continue the 2-rank run at 3 ranks and at 1 rank to step 8; compare with a straight 1-rank run.
  fs::copy(run("two"), run("two_then_three"), fs::copy_options::recursive);
  const RunResult three =
      run_cmd(mpirun(3) + args + "--run " + run("two_then_three") + " --resume auto --set train.steps=8");
  REQUIRE_MESSAGE(three.exit_code == 0, three.output);
  const RunResult back_to_one = run_cmd(args + "--run " + run("two") + " --resume auto --set train.steps=8");
  REQUIRE_MESSAGE(back_to_one.exit_code == 0, back_to_one.output);
  const RunResult straight = run_cmd(args + "--run " + run("one") + " --resume auto --set train.steps=8");
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  const TrainingCheckpoint s = load_checkpoint(ckpt(run("one"), 8));
  for (const std::string& name : {std::string("two_then_three"), std::string("two")}) {
    CAPTURE(name);
    const TrainingCheckpoint c = load_checkpoint(ckpt(run(name), 8));
    CHECK(c.cursor == s.cursor);  // the same samples were seen, whatever the number of ranks
    CHECK(c.samples_seen == s.samples_seen);
    CHECK(max_rel_diff(c.model, s.model) < 1e-3);
  }

  // A run folder that only rank 0 sees (node-local disks): the ranks would resume from different steps; the
  // job stops and says why instead of training with mismatched optimizer state and data positions.
  fs::create_directories(run("local_r1"));
  fs::copy(run("one"), run("local_r0"), fs::copy_options::recursive);
  const RunResult split_fs =
      run_cmd(mpirun(2) + "sh -c '" + args + "--run " + root + "/local_r$OMPI_COMM_WORLD_RANK --resume auto" +
              " --set train.steps=10'");
  CHECK(split_fs.exit_code != 0);
  CHECK_MESSAGE(split_fs.output.find("rank 1 starts at step 0 but rank 0 at step 8") != std::string::npos,
                split_fs.output);
  CHECK(split_fs.output.find("filesystem all nodes share") != std::string::npos);
  fs::remove_all(root);
}
