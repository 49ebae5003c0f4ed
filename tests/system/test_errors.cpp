// Bad input to `iris train` gives a clear error naming the file or key and a non-zero exit, never a crash
// or a silently wrong run.
#include <filesystem>
#include <fstream>

#include "diffusion/checkpoint.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

TEST_CASE("iris train: bad config keys, values, data and checkpoints are named in the error") {
  const std::string root = fresh_dir("errors");
  const std::string data = (fs::path(root) / "data").string();
  write_tiny_shards(data, 24);
  const std::string cfg = write_tiny_config(root, data);
  const std::string base =
      "train --config " + cfg + " --threads 1 --run " + (fs::path(root) / "run").string() + " ";
  expect_error(run_iris(base + "--set train.lrate=1e-3"), {"unknown config key 'train.lrate'", "train.lr"});
  expect_error(run_iris(base + "--set train.steps=many"), {"train.steps", "integer", "many"});
  expect_error(run_iris(base + "--set data.dir=" + root + "/nowhere"), {"nowhere"});
  expect_error(run_iris(base + "--set data.lowres_size=8"), {"data.lowres_size 8", "re-shard"});
  expect_error(run_iris(base + "--set model.norm_groups=3"), {"norm_groups"});
  expect_error(run_iris(base + "--set train.batch_size=0"), {"train.batch_size"});
  expect_error(run_iris(base + "--set train.precision=bf61"),
               {"train.precision", "f32, tf32 or bf16", "bf61"});
  expect_error(run_iris(base + "--set train.conv_search=fastest"), {"train.conv_search", "fastest"});
  {  // bf16 asked of the CPU: the run says it trains in f32 instead of passing over it silently
    const RunResult r = run_iris("train --config " + cfg + " --threads 1 --device cpu --run " + root +
                                 "/bf16 --set train.steps=1 --set train.precision=bf16");
    CHECK_MESSAGE(r.exit_code == 0, r.output);
    check_contains(r,
                   "warning: train.precision = bf16 applies to CUDA devices; on cpu this run trains in f32");
  }
  // A shard whose bytes were cut off.
  const std::string broken = (fs::path(root) / "broken").string();
  fs::copy(data, broken);
  for (const auto& e : fs::directory_iterator(broken))
    if (e.path().extension() == ".h5") {
      fs::resize_file(e.path(), fs::file_size(e.path()) / 3);
      break;
    }
  expect_error(run_iris(base + "--set data.dir=" + broken), {broken});
  // A checkpoint of another model cannot be resumed with this config.
  const RunResult ok = run_iris(base + "--set train.steps=2");
  REQUIRE_MESSAGE(ok.exit_code == 0, ok.output);
  const std::string ck = (fs::path(root) / "run" / "checkpoints" / diffusion::checkpoint_name(2)).string();
  const RunResult other = run_iris("train --config " + cfg + " --threads 1 --run " + root +
                                   "/other --resume " + ck + " --set model.base_channels=16");
  expect_error(other, {ck, "different model configuration"});
  check_contains(other, "model.base_channels is ");  // the key that differs, with both values
  check_contains(other, " in the checkpoint, 16 now");
  // A file that is not a checkpoint.
  const std::string junk = (fs::path(root) / "junk.h5").string();
  std::ofstream(junk) << "not hdf5";
  expect_error(run_iris("train --config " + cfg + " --threads 1 --run " + root + "/other2 --resume " + junk),
               {junk, "not an HDF5 file"});
  fs::remove_all(root);
}
