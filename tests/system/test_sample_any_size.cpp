// Any-size and tiled inference through `iris sample` and `iris cascade` (diffusion/tiling.h), run as
// processes on the tiny trained checkpoints: image inputs at their own size (--native-size), windows blended
// at every step (--tile, --tile-overlap) recorded in run.json and samples.h5, image sets as --input, SR
// cascades from an image with tiling per stage, and clear errors for options that cannot work.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/image.h"
#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

RunResult sample(const TrainedFixture& fx, const std::string& out, const std::string& args) {
  return run_iris("sample --ckpt " + fx.sr3_ckpt + " --device cpu --threads 2 --out " + fx.path(out) + " " +
                  args);
}

// A grey h x w image with a gradient and a bright square (something for the network to work on).
data::Image test_image(int h, int w, int seed) {
  data::Image img(h, w, 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      img.at(y, x) =
          static_cast<uint8_t>((y * 37 + x * 11 + seed * 50) % 200 + (y < h / 2 && x < w / 2 ? 50 : 0));
  return img;
}

nlohmann::json run_record(const std::string& dir) {
  std::ifstream f(fs::path(dir) / "run.json");
  return nlohmann::json::parse(f);
}

}  // namespace

TEST_CASE("iris sample --native-size super-resolves images of any size, and tiles blend into the same size") {
  TrainedFixture fx("sample-any-size", {.sr3 = true});
  const std::string dir = fx.path("inputs");
  fs::create_directories(dir);
  data::write_png(dir + "/a.png", test_image(5, 7, 0));
  data::write_png(dir + "/b.png", test_image(5, 7, 1));
  const std::string common = "--input-dir " + dir + " --native-size --steps 3 --sampler ddpm ";

  // 5x7 inputs of a 4 -> 16 stage: 20x28 outputs; the inputs are kept as they are.
  const RunResult whole = sample(fx, "whole", common);
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.output);
  check_contains(whole, "sr3 20x28");
  const std::string h5 = fx.path("whole") + "/samples.h5";
  const Tensor images = read_h5(h5, "images");
  CHECK(images.shape() == Shape{2, 20, 28, 1});
  CHECK(same_bytes(read_h5(h5, "lowres"), data::stack_images({test_image(5, 7, 0), test_image(5, 7, 1)})));
  const data::Image png = data::read_png(fx.path("whole") + "/a.png");
  CHECK(png.height == 20);
  CHECK(png.width == 28);
  CHECK(h5::File::open(h5).root().int_attr("native_size") == 1);
  CHECK(run_record(fx.path("whole"))["native_size"] == true);
  CHECK_FALSE(run_record(fx.path("whole"))["stage"].contains("tile"));

  // One window at least the image's size is the untiled run, bit for bit.
  const RunResult one = sample(fx, "one_window", common + "--tile 64");
  REQUIRE_MESSAGE(one.exit_code == 0, one.output);
  CHECK(same_bytes(read_h5(fx.path("one_window") + "/samples.h5", "images"), images));

  // Windows of 8 overlapping by 4: the same size, recorded in run.json and samples.h5 with the coverage map.
  const RunResult tiled = sample(fx, "tiled", common + "--tile 8 --tile-overlap 4");
  REQUIRE_MESSAGE(tiled.exit_code == 0, tiled.output);
  check_contains(tiled, "8x8 windows overlapping by 4");
  const std::string th5 = fx.path("tiled") + "/samples.h5";
  const Tensor tiled_images = read_h5(th5, "images");
  CHECK(tiled_images.shape() == Shape{2, 20, 28, 1});
  CHECK_FALSE(same_bytes(tiled_images, images));
  const Tensor coverage = read_h5(th5, "tile_coverage");
  CHECK(coverage.shape() == Shape{20, 28});
  CHECK(max(coverage.to(DType::f32)).item() >= 2);
  CHECK(h5::File::open(th5).root().int_attr("tile") == 8);
  const nlohmann::json record = run_record(fx.path("tiled"));
  CHECK(record["stage"]["tile"] == 8);
  CHECK(record["stage"]["tile_overlap"] == 4);
  // iris eval scores the seams (where windows overlap) apart from the rest.
  const RunResult eval = run_iris("eval --pred " + th5 + " --truth " + h5 + " --tile-coverage " + th5 +
                                  " --json " + fx.path("eval.json"));
  REQUIRE_MESSAGE(eval.exit_code == 0, eval.output);
  check_contains(eval, "over the seams, where windows overlap");
  std::ifstream ej(fx.path("eval.json"));
  const nlohmann::json scores = nlohmann::json::parse(ej);
  CHECK(scores["mean"].contains("psnr_seams"));
  CHECK(scores["mean"].contains("psnr_interior"));

  // Resuming with other windows is refused, naming the setting; the same command resumes.
  expect_error(sample(fx, "tiled", common + "--tile 12 --tile-overlap 4 --resume"),
               {"'stage.tile' was 8, now 12"});
  const RunResult resumed = sample(fx, "tiled", common + "--tile 8 --tile-overlap 4 --resume");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  check_contains(resumed, "resuming: 2 of 2 samples already in");

  // An HDF5 dataset of images as --input: the low-res inputs of the first run, named after the file.
  const RunResult from_h5 =
      sample(fx, "from_h5", "--input " + h5 + ":lowres --native-size --steps 3 --sampler ddpm");
  REQUIRE_MESSAGE(from_h5.exit_code == 0, from_h5.output);
  CHECK(fs::exists(fx.path("from_h5") + "/samples_000001.png"));
  CHECK(same_bytes(read_h5(fx.path("from_h5") + "/samples.h5", "images"), images));
}

TEST_CASE("iris sample refuses any-size and tiling options that cannot work, naming them") {
  TrainedFixture fx("sample-any-size-errors", {.sr3 = true});
  const std::string dir = fx.path("inputs");
  fs::create_directories(dir);
  data::write_png(dir + "/a.png", test_image(5, 7, 0));
  data::write_png(dir + "/b.png", test_image(6, 6, 1));
  expect_error(sample(fx, "x", "--input-dir " + dir + " --native-size --steps 2"),
               {"--native-size: input 'b' is 6x6 but 'a' is 5x7", "must share one size"});
  const std::string one = "--input " + dir + "/a.png --native-size --steps 2 ";
  expect_error(sample(fx, "x", one + "--tile 7"),
               {"--tile 7 must be a multiple of 2", "halves its input once"});
  expect_error(sample(fx, "x", one + "--tile 8 --tile-overlap 8"),
               {"--tile 8 must be larger than --tile-overlap 8"});
  expect_error(sample(fx, "x", one + "--tile 8 --tile-overlap 3"),
               {"--tile-overlap 3 must be a multiple of 2"});
  expect_error(sample(fx, "x", one + "--tile-overlap 4"), {"--tile-overlap 4 needs --tile"});
  expect_error(sample(fx, "x", "--shard " + fx.data + " --native-size --steps 2"),
               {"--native-size takes image inputs", ":lowres_<h>"});
  expect_error(sample(fx, "x", "--input " + fx.data + ":lowres_9 --steps 2"),
               {"--input", "has no 'lowres_9'"});
}

TEST_CASE("iris cascade super-resolves an image through SR stages at its own size, tiled per stage") {
  TrainedFixture fx("cascade-any-size", {.sr3 = true, .sr3_aug = true, .base = true});
  const std::string png = fx.path("photo.png");
  data::write_png(png, test_image(5, 7, 2));
  const std::string stages = "cascade --stage " + fx.sr3_ckpt + " --stage " + fx.sr3_aug_ckpt +
                             " --device cpu --threads 2 --input " + png + " --steps 2 ";

  // Both stages multiply by 4: 5x7 -> 20x28 -> 80x112; the second stage runs on 16x16 windows.
  const RunResult r =
      run_iris(stages + "--native-size --aug-level 0.1 --tile 0,16 --tile-overlap 4 --out " + fx.path("c"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "stage 1: ");
  check_contains(r, "80x112");
  check_contains(r, "16x16 windows overlapping by 4");
  const std::string h5 = fx.path("c") + "/cascade.h5";
  CHECK(read_h5(h5, "stage_0").shape() == Shape{1, 20, 28, 1});
  CHECK(read_h5(h5, "stage_1").shape() == Shape{1, 80, 112, 1});
  CHECK(read_h5(h5, "stage_1_tile_coverage").shape() == Shape{80, 112});
  CHECK_FALSE(h5::File::open(h5).root().has("stage_0_tile_coverage"));
  const data::Image out = data::read_png(fx.path("c") + "/stage_1/photo.png");
  CHECK(out.height == 80);
  CHECK(out.width == 112);
  const nlohmann::json record = run_record(fx.path("c"));
  CHECK(record["native_size"] == true);
  CHECK_FALSE(record["stages"][0].contains("tile"));
  CHECK(record["stages"][1]["tile"] == 16);
  // A single --tile-overlap concerns the tiled stages only; a single --tile goes to every SR stage.
  const RunResult all = run_iris(stages + "--native-size --tile 16 --tile-overlap 4 --out " + fx.path("all"));
  REQUIRE_MESSAGE(all.exit_code == 0, all.output);
  CHECK(run_record(fx.path("all"))["stages"][0]["tile"] == 16);

  // Without --native-size the second stage wants its trained 4x4 input and says how to chain anyway.
  expect_error(run_iris(stages + "--out " + fx.path("bad")),
               {"expects 4x4 inputs but stage 0 produces 16x16", "--native-size"});
  // Tiling concerns super-resolution stages: a single value skips a base first stage, a value aimed at it
  // must be 0.
  const std::string base = "cascade --stage " + fx.base_ckpt + " --stage " + fx.sr3_ckpt +
                           " --device cpu --threads 2 --labels 0,1 --steps 2 ";
  const RunResult skip = run_iris(base + "--tile 8 --tile-overlap 4 --out " + fx.path("base"));
  REQUIRE_MESSAGE(skip.exit_code == 0, skip.output);
  CHECK(read_h5(fx.path("base") + "/cascade.h5", "stage_1").shape() == Shape{2, 16, 16, 1});
  expect_error(run_iris(base + "--tile 8,8 --out " + fx.path("bad")),
               {"--tile and --tile-overlap for stage 0", "tiling applies to super-resolution stages"});
  expect_error(run_iris(base + "--tile 0,5 --out " + fx.path("bad")),
               {"stage 1", "--tile 5 must be a multiple of 2"});
  expect_error(run_iris(base + "--native-size --out " + fx.path("bad")),
               {"--native-size is for super-resolution first stages"});
}
