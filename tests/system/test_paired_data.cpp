// Real low-/high-res pairs end to end: `iris shard pairs` on two folders of PNG files, then `iris train` on
// the shards (whole images and random crops), and `iris sample` from them (the crop-trained stage at the
// shard's full size, with its truth); the command's errors name the files at fault.
#include <cstdio>
#include <filesystem>

#include "data/image.h"
#include "data/shard.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// n pairs of grey 16x16 block images and 4x4 partners made by point sampling (not the antialiased bicubic a
// resize would store): hr/<i>.png, lr/<i>.png.
void write_pairs(const std::string& root, int n) {
  fs::create_directories(fs::path(root) / "hr");
  fs::create_directories(fs::path(root) / "lr");
  for (int i = 0; i < n; ++i) {
    data::Image hr(16, 16, 1), lr(4, 4, 1);
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x)
        hr.at(y, x) = static_cast<uint8_t>((37 * i + 53 * (y / 4) + 91 * (x / 4)) % 256);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) lr.at(y, x) = hr.at(4 * y + 1, 4 * x + 2);
    char name[32];
    std::snprintf(name, sizeof(name), "img%02d.png", i);  // name order = index order
    data::write_png((fs::path(root) / "hr" / name).string(), hr);
    data::write_png((fs::path(root) / "lr" / name).string(), lr);
  }
}

}  // namespace

TEST_CASE("iris shard pairs, then training on the real pairs, whole and cropped, and sampling from them") {
  const std::string root = fresh_dir("pairs");
  write_pairs(root, 24);
  const std::string hr = root + "/hr", lr = root + "/lr", shards = root + "/shards";
  const RunResult s =
      run_iris("shard pairs --hr " + hr + " --lr " + lr + " --out " + shards + " --channels 1 --threads 2");
  REQUIRE_MESSAGE(s.exit_code == 0, s.output);
  check_contains(s, "24 pairs, scale factor 4");
  check_contains(s, "24 samples (16x16x1, low-res 4x4) in 1 shard");
  const data::ShardSet set = data::ShardSet::open(shards);
  CHECK(set.lowres(5, 4) == data::read_png(lr + "/img05.png"));
  CHECK(set.image(5) == data::read_png(hr + "/img05.png"));

  const std::string config = write_tiny_config(root, shards);
  const std::string train =
      "train --config " + config + " --threads 2 --set train.steps=3 --set train.sample_every=3 ";
  const RunResult whole = run_iris(train + "--run " + root + "/whole");
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.output);
  CHECK(fs::exists(root + "/whole/checkpoints/step_000000003.h5"));
  const RunResult cropped = run_iris(train + "--run " + root +
                                     "/cropped --set data.crop_size=12 "
                                     "--set model.resolution=12 --set model.attention_resolutions=6");
  REQUIRE_MESSAGE(cropped.exit_code == 0, cropped.output);
  CHECK(fs::exists(root + "/cropped/checkpoints/step_000000003.h5"));
  // Sampling a whole-image stage takes the stored (real) low-res images as its inputs.
  const RunResult sample =
      run_iris("sample --ckpt " + root + "/whole/checkpoints/step_000000003.h5 --shard " + shards +
               " --count 2 --out " + root + "/out --threads 2");
  REQUIRE_MESSAGE(sample.exit_code == 0, sample.output);
  CHECK(fs::exists(root + "/out/samples.h5"));
  // A stage trained on 12x12 crops super-resolves the shard's whole 4x4 inputs to 16x16, and stores their
  // truth: the shard's 16x16 images (its data.image_size), not images of its 12x12 resolution.
  const RunResult crop_sample =
      run_iris("sample --ckpt " + root + "/cropped/checkpoints/step_000000003.h5 --shard " + shards +
               " --count 2 --out " + root + "/out_cropped --threads 2");
  REQUIRE_MESSAGE(crop_sample.exit_code == 0, crop_sample.output);
  const std::string crop_h5 = root + "/out_cropped/samples.h5";
  CHECK(read_h5(crop_h5, "images").shape() == Shape{2, 16, 16, 1});
  CHECK(same_bytes(read_h5(crop_h5, "truth"), set.images(0, 2)));
  // So do `iris cascade` and `iris sweep` (they asked for truth at the last stage's 12x12 resolution, which
  // this shard set does not hold: no truth stored, no PSNR; a set storing 12x12 low-res copies would have
  // scored the 16x16 outputs against those).
  const std::string crop_ckpt = root + "/cropped/checkpoints/step_000000003.h5";
  const RunResult cascade = run_iris("cascade --stage " + crop_ckpt + " --shard " + shards +
                                     " --count 2 --steps 2 --out " + root + "/cascade --threads 2");
  REQUIRE_MESSAGE(cascade.exit_code == 0, cascade.output);
  CHECK(read_h5(root + "/cascade/cascade.h5", "stage_0").shape() == Shape{2, 16, 16, 1});
  CHECK(same_bytes(read_h5(root + "/cascade/cascade.h5", "truth"), set.images(0, 2)));
  const RunResult sweep =
      run_iris("sweep --stage " + crop_ckpt + " --shard " + shards +
               " --count 2 --vary steps=2 --metrics psnr --no-tensorboard --out " + root + "/sweep --threads 2");
  REQUIRE_MESSAGE(sweep.exit_code == 0, sweep.output);
  check_contains(sweep, "sr3 16x16");
  check_contains(sweep, "psnr");
  fs::remove_all(root);
}

TEST_CASE("iris shard pairs: mismatched folders and bad ratios fail naming the files") {
  const std::string root = fresh_dir("pairs-errors");
  write_pairs(root, 3);
  const std::string base = "shard pairs --hr " + root + "/hr --lr " + root + "/lr --out " + root + "/out";
  fs::remove(root + "/lr/img01.png");
  expect_error(run_iris(base), {"without a low-res partner", "img01.png"});
  data::write_png(root + "/lr/img01.png", data::Image(8, 8, 1));  // 2x where the others are 4x
  expect_error(run_iris(base), {"hr/img01.png' is 2x", "lr/img01.png'", "the same scale factor"});
  data::write_png(root + "/lr/img01.png", data::Image(3, 3, 1));
  expect_error(run_iris(base), {"hr/img01.png' (16x16)", "lr/img01.png' (3x3)", "not one integer factor"});
  CHECK(!fs::exists(root + "/out"));
  fs::remove_all(root);
}
