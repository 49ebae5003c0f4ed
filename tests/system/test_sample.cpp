// `iris sample` and `iris cascade` run as processes on tiny checkpoints trained by `iris train`: the files
// they write (one PNG per sample, grids, samples.h5 / cascade.h5 with the right shapes and contents),
// reproducibility from --seed independently of --batch, and clear errors for bad checkpoints and options.
#include <filesystem>
#include <fstream>

#include "data/image.h"
#include "data/shard.h"
#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

RunResult sample(const TrainedFixture& fx, const std::string& ckpt, const std::string& out,
                 const std::string& args) {
  return run_iris("sample --ckpt " + ckpt + " --device cpu --threads 2 --out " + fx.path(out) + " " + args);
}

}  // namespace

TEST_CASE("iris sample super-resolves a shard range: one PNG per sample, a grid and samples.h5") {
  TrainedFixture fx("sample-sr3", {.sr3 = true});
  const RunResult r =
      sample(fx, fx.sr3_ckpt, "a", "--shard " + fx.data + " --start 3 --count 5 --steps 3 --batch 2");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string out = fx.path("a");
  CHECK(count_pngs(out) == 5);
  // Named after the shard index and class: sample 3 has label 3 % 3 = 0, class "a".
  REQUIRE(fs::exists(fs::path(out) / "000003_a.png"));
  CHECK(fs::exists(fs::path(out) / "000007_b.png"));
  const data::Image png = data::read_png((fs::path(out) / "000003_a.png").string());
  CHECK(png.height == 16);
  CHECK(png.width == 16);
  CHECK(png.channels == 1);
  // grid: 4 columns (low-res | bicubic | SR3 | truth) of 16-pixel cells and 5 rows.
  const data::Image grid = data::read_png((fs::path(out) / "grid.png").string());
  CHECK(grid.height > 5 * 16);
  CHECK(grid.width > 4 * 16);

  const std::string h5 = (fs::path(out) / "samples.h5").string();
  const Tensor images = read_h5(h5, "images"), lowres = read_h5(h5, "lowres"), truth = read_h5(h5, "truth");
  const Tensor labels = read_h5(h5, "labels");
  CHECK(images.shape() == Shape{5, 16, 16, 1});
  CHECK(images.dtype() == DType::u8);
  // The conditions and the truth are the shard's own rows.
  const data::ShardSet set = data::ShardSet::open(fx.data);
  CHECK(same_bytes(lowres, set.lowres(4, 3, 5)));
  CHECK(same_bytes(truth, set.images(3, 5)));
  CHECK(same_bytes(labels, set.labels(3, 5)));
  // The PNG holds the same pixels as the HDF5 file.
  CHECK(same_bytes(data::stack_images({png}), images.slice(0, 0, 1).contiguous()));
  // No temporary files are left beside samples.h5.
  for (const auto& e : fs::directory_iterator(out))
    CHECK(e.path().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("iris sample is reproducible from --seed and does not depend on --batch") {
  TrainedFixture fx("sample-seed", {.sr3 = true});
  // DDPM draws fresh noise at every step: the strictest test of per-sample streams.
  const std::string common = "--shard " + fx.data + " --count 5 --steps 3 --sampler ddpm ";
  REQUIRE(sample(fx, fx.sr3_ckpt, "b2", common + "--batch 2 --seed 11").exit_code == 0);
  REQUIRE(sample(fx, fx.sr3_ckpt, "b2again", common + "--batch 2 --seed 11").exit_code == 0);
  REQUIRE(sample(fx, fx.sr3_ckpt, "b5", common + "--batch 5 --seed 11").exit_code == 0);
  REQUIRE(sample(fx, fx.sr3_ckpt, "seed12", common + "--batch 2 --seed 12").exit_code == 0);
  // A range starting later gives its samples the same noise (streams follow shard indices).
  REQUIRE(sample(fx, fx.sr3_ckpt, "later",
                 "--shard " + fx.data +
                     " --start 2 --count 3 --steps 3 --sampler ddpm "
                     "--batch 3 --seed 11")
              .exit_code == 0);
  const auto images = [&](const std::string& run) { return read_h5(fx.path(run) + "/samples.h5", "images"); };
  CHECK(same_bytes(images("b2"), images("b2again")));
  CHECK(same_bytes(images("b2"), images("b5")));
  CHECK_FALSE(same_bytes(images("b2"), images("seed12")));
  CHECK(same_bytes(images("b2").slice(0, 2, 5).contiguous(), images("later")));
}

TEST_CASE("iris sample takes image files, converts and resizes them, and names outputs after them") {
  TrainedFixture fx("sample-files", {.sr3 = true});
  const std::string dir = fx.path("inputs");
  fs::create_directories(dir);
  data::Image rgb(8, 8, 3);  // 8x8 RGB: converted to grey and resized to the model's 4x4 low-res size
  for (size_t i = 0; i < rgb.pixels.size(); ++i) rgb.pixels[i] = static_cast<uint8_t>(i * 7 % 256);
  data::write_png(dir + "/cat.png", rgb);
  data::Image grey(4, 4, 1, 90);
  data::write_png(dir + "/dog.png", grey);
  const RunResult r = sample(fx, fx.sr3_ckpt, "files", "--input-dir " + dir + " --steps 2 --raw");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(fs::exists(fx.path("files") + "/cat.png"));
  CHECK(fs::exists(fx.path("files") + "/dog.png"));
  const std::string h5 = fx.path("files") + "/samples.h5";
  const Tensor lowres = read_h5(h5, "lowres");
  CHECK(lowres.shape() == Shape{2, 4, 4, 1});
  CHECK(same_bytes(lowres.slice(0, 1, 2).contiguous(), data::stack_images({grey})));
  CHECK(read_h5(h5, "images").shape() == Shape{2, 16, 16, 1});
  const h5::File f = h5::File::open(h5);
  CHECK(f.root().string_attr("weights") == "raw");
  CHECK_FALSE(f.root().has("truth"));
  // The same with --input and explicit files.
  const RunResult r2 = sample(fx, fx.sr3_ckpt, "files2", "--input " + dir + "/dog.png --steps 2");
  REQUIRE_MESSAGE(r2.exit_code == 0, r2.output);
  CHECK(count_pngs(fx.path("files2")) == 1);
}

TEST_CASE(
    "iris sample draws base samples from labels, names, --per-class, a shard's labels or unconditionally") {
  TrainedFixture fx("sample-base", {.base = true, .base_uncond = true});
  const RunResult r = sample(fx, fx.base_ckpt, "labels", "--labels 0,C,2 --steps 3 --guidance 2 --batch 2");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string h5 = fx.path("labels") + "/samples.h5";
  CHECK(read_h5(h5, "images").shape() == Shape{3, 4, 4, 1});
  CHECK(read_h5(h5, "labels").to_vector<int32_t>() == std::vector<int32_t>{0, 2, 2});
  // Class names come from the config's data set.
  CHECK(fs::exists(fx.path("labels") + "/00001_c.png"));
  CHECK(fs::exists(fx.path("labels") + "/grid.png"));

  const RunResult pc = sample(fx, fx.base_ckpt, "per_class", "--per-class 2 --steps 3");
  REQUIRE_MESSAGE(pc.exit_code == 0, pc.output);
  CHECK(read_h5(fx.path("per_class") + "/samples.h5", "labels").to_vector<int32_t>() ==
        std::vector<int32_t>{0, 0, 1, 1, 2, 2});
  CHECK(count_pngs(fx.path("per_class")) == 6);

  // A shard range gives its labels, and its 4x4 low-res images as real examples.
  const RunResult sh =
      sample(fx, fx.base_ckpt, "shard", "--shard " + fx.data + " --start 4 --count 3 --steps 2");
  REQUIRE_MESSAGE(sh.exit_code == 0, sh.output);
  const data::ShardSet set = data::ShardSet::open(fx.data);
  CHECK(same_bytes(read_h5(fx.path("shard") + "/samples.h5", "labels"), set.labels(4, 3)));
  CHECK(same_bytes(read_h5(fx.path("shard") + "/samples.h5", "truth"), set.lowres(4, 4, 3)));

  // Unconditional: --count images, no labels.
  const RunResult un = sample(fx, fx.base_uncond_ckpt, "uncond", "--count 5 --steps 2 --batch 2");
  REQUIRE_MESSAGE(un.exit_code == 0, un.output);
  CHECK(read_h5(fx.path("uncond") + "/samples.h5", "images").shape() == Shape{5, 4, 4, 1});
  CHECK_FALSE(h5::File::open(fx.path("uncond") + "/samples.h5").root().has("labels"));
  CHECK(fs::exists(fx.path("uncond") + "/00004.png"));
  const RunResult un_labels = sample(fx, fx.base_uncond_ckpt, "bad", "--labels 1");
  CHECK(un_labels.exit_code != 0);
  check_contains(un_labels, "unconditional base stage");

  const RunResult count = sample(fx, fx.base_ckpt, "bad", "--count 5");
  CHECK(count.exit_code != 0);
  check_contains(count, "is class-conditional: give --labels or --per-class");
  const RunResult bad = sample(fx, fx.base_ckpt, "bad", "--labels 0,zebra");
  CHECK(bad.exit_code != 0);
  check_contains(bad, "unknown class 'zebra'");
  const RunResult range = sample(fx, fx.base_ckpt, "bad", "--labels 3");
  CHECK(range.exit_code != 0);
  check_contains(range, "the model has 3 classes");
}

TEST_CASE("iris cascade chains a base stage and an sr3 stage, keeping every stage's output") {
  TrainedFixture fx("cascade", {.sr3 = true, .base = true});
  const std::string stages = "--stage " + fx.base_ckpt + " --stage " + fx.sr3_ckpt;
  const std::string options = "cascade " + stages +
                              " --device cpu --threads 2 --per-class 1 --sampler ddpm,ddim "
                              "--guidance 2 --seed 5 ";
  const std::string common = options + "--steps 3,2 ";
  const RunResult r = run_iris(common + "--batch 2 --out " + fx.path("c2"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string h5 = fx.path("c2") + "/cascade.h5";
  CHECK(read_h5(h5, "stage_0").shape() == Shape{3, 4, 4, 1});
  CHECK(read_h5(h5, "stage_1").shape() == Shape{3, 16, 16, 1});
  CHECK(read_h5(h5, "labels").to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2});
  CHECK(count_pngs(fx.path("c2") + "/stage_0") == 3);
  CHECK(count_pngs(fx.path("c2") + "/stage_1") == 3);
  CHECK(data::read_png(fx.path("c2") + "/stage_1/00002_c.png").height == 16);
  CHECK(fs::exists(fx.path("c2") + "/grid.png"));
  {
    const h5::File f = h5::File::open(h5);
    CHECK(f.root().open_dataset("stage_0").string_attr("sampler") == "ddpm");
    CHECK(f.root().open_dataset("stage_1").int_attr("steps") == 2);
    CHECK(f.root().open_dataset("stage_0").double_attr("guidance") == 2.0);
  }
  // Per-sample streams run through the whole cascade: the batch size changes nothing.
  const RunResult r3 = run_iris(common + "--batch 3 --out " + fx.path("c3"));
  REQUIRE_MESSAGE(r3.exit_code == 0, r3.output);
  CHECK(same_bytes(read_h5(h5, "stage_1"), read_h5(fx.path("c3") + "/cascade.h5", "stage_1")));

  // Stages that do not chain are refused with the checkpoints named.
  const RunResult reversed = run_iris("cascade --stage " + fx.sr3_ckpt + " --stage " + fx.base_ckpt +
                                      " --device cpu --shard " + fx.data + " --out " + fx.path("bad"));
  CHECK(reversed.exit_code != 0);
  check_contains(reversed, "must be a super-resolution (sr3 or regression) stage");
  check_contains(reversed, fx.base_ckpt);
  const RunResult sizes = run_iris("cascade --stage " + fx.sr3_ckpt + " --stage " + fx.sr3_ckpt +
                                   " --device cpu --shard " + fx.data + " --out " + fx.path("bad"));
  CHECK(sizes.exit_code != 0);
  check_contains(sizes, "expects 4x4 inputs but stage 0 produces 16x16");
  const RunResult lists = run_iris(options + "--steps 1,2,3 --out " + fx.path("bad"));
  CHECK(lists.exit_code != 0);
  check_contains(lists, "--steps has 3 values for 2 stages");
}

TEST_CASE("iris sample reports bad checkpoints and options clearly") {
  TrainedFixture fx("sample-errors", {.sr3 = true});
  const std::string shard = "--shard " + fx.data + " --count 2 --steps 2";
  const RunResult missing = sample(fx, fx.path("nope.h5"), "x", shard);
  CHECK(missing.exit_code == 1);
  check_contains(missing, "nope.h5' does not exist");
  // A model shape changed by --set no longer fits the checkpoint's weights.
  const RunResult mismatch = sample(fx, fx.sr3_ckpt, "x", shard + " --set model.base_channels=16");
  CHECK(mismatch.exit_code == 1);
  check_contains(mismatch, "weights do not fit the model its config (with the --set overrides) describes");
  // An HDF5 file that is not a checkpoint.
  REQUIRE(sample(fx, fx.sr3_ckpt, "ok", shard).exit_code == 0);
  const RunResult foreign = sample(fx, fx.path("ok") + "/samples.h5", "x", shard);
  CHECK(foreign.exit_code == 1);
  check_contains(foreign, "is not an Iris checkpoint");
  // Options that do not fit the stage.
  const RunResult labels = sample(fx, fx.sr3_ckpt, "x", shard + " --labels 1");
  CHECK(labels.exit_code == 1);
  check_contains(labels, "--labels and --per-class are for base stages");
  const RunResult no_input = sample(fx, fx.sr3_ckpt, "x", "--steps 2");
  CHECK(no_input.exit_code == 1);
  check_contains(no_input, "needs low-res inputs");
  const RunResult sampler = sample(fx, fx.sr3_ckpt, "x", shard + " --sampler euler");
  CHECK(sampler.exit_code == 1);
  check_contains(sampler, "--sampler must be ddpm, ddim or dpmpp2m");
  const RunResult aug = sample(fx, fx.sr3_ckpt, "x", shard + " --aug-level 0.1");
  CHECK(aug.exit_code == 1);
  check_contains(aug, "--aug-level applies to");
  const RunResult range = sample(fx, fx.sr3_ckpt, "x", "--shard " + fx.data + " --start 20 --count 10");
  CHECK(range.exit_code == 1);
  check_contains(range, "runs past the end of the shard set");
}

TEST_CASE("iris cascade applies per-stage augmentation levels and truncated conditioning") {
  TrainedFixture fx("cascade-aug", {.sr3 = true, .sr3_aug = true, .base = true});
  const std::string common = "cascade --stage " + fx.base_ckpt + " --stage " + fx.sr3_aug_ckpt +
                             " --device cpu --threads 2 --labels 0,1 --steps 3,3 --sampler ddim --seed 3 ";
  const RunResult plain = run_iris(common + "--aug-level 0,0.3 --out " + fx.path("plain"));
  REQUIRE_MESSAGE(plain.exit_code == 0, plain.output);
  const RunResult truncated =
      run_iris(common + "--aug-level 0,0.3 --truncated --out " + fx.path("truncated"));
  REQUIRE_MESSAGE(truncated.exit_code == 0, truncated.output);
  check_contains(truncated, "truncated conditioning");
  const RunResult none = run_iris(common + "--aug-level 0,0 --out " + fx.path("none"));
  REQUIRE_MESSAGE(none.exit_code == 0, none.output);
  const auto stage = [&](const std::string& run, int i) {
    return read_h5(fx.path(run) + "/cascade.h5", "stage_" + std::to_string(i));
  };
  CHECK(stage("truncated", 0).shape() == Shape{2, 4, 4, 1});
  CHECK(stage("truncated", 1).shape() == Shape{2, 16, 16, 1});
  {
    const h5::File f = h5::File::open(fx.path("truncated") + "/cascade.h5");
    CHECK(f.root().open_dataset("stage_1").int_attr("truncated") == 1);
    CHECK(f.root().open_dataset("stage_1").double_attr("aug_level") == 0.3);
    CHECK(f.root().open_dataset("stage_0").int_attr("truncated") == 0);
  }
  // The full base chain is the same without truncation; a truncated one stops early (its x_s is kept).
  CHECK(same_bytes(stage("plain", 0), stage("none", 0)));
  CHECK_FALSE(same_bytes(stage("plain", 0), stage("truncated", 0)));
  // The augmentation level reaches the SR stage.
  CHECK_FALSE(same_bytes(stage("plain", 1), stage("none", 1)));

  // --truncated needs an augmented SR stage; --aug-level per stage must fit each stage.
  const RunResult no_aug = run_iris("cascade --stage " + fx.base_ckpt + " --stage " + fx.sr3_ckpt +
                                    " --device cpu --labels 0 --truncated --out " + fx.path("bad"));
  CHECK(no_aug.exit_code != 0);
  check_contains(no_aug, "--truncated: no stage after the first was trained with noise");
  const RunResult base_aug = run_iris(common + "--aug-level 0.2,0.3 --out " + fx.path("bad"));
  CHECK(base_aug.exit_code != 0);
  check_contains(base_aug, "--aug-level for stage 0");
  // iris sample takes --aug-level for the augmented stage.
  const RunResult s = run_iris("sample --ckpt " + fx.sr3_aug_ckpt + " --device cpu --shard " + fx.data +
                               " --count 2 --steps 2 --aug-level 0.25 --out " + fx.path("s"));
  REQUIRE_MESSAGE(s.exit_code == 0, s.output);
  const h5::File f = h5::File::open(fx.path("s") + "/samples.h5");
  CHECK(f.root().double_attr("aug_level") == 0.25);
}

TEST_CASE("a regression stage samples in one pass with iris sample and iris cascade, and refuses samplers") {
  TrainedFixture fx("sample-regression", {.base = true, .regression = true});
  const RunResult r = sample(fx, fx.regression_ckpt, "reg", "--shard " + fx.data + " --count 4");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "none, 1 steps");
  CHECK(count_pngs(fx.path("reg")) == 4);
  const Tensor images = read_h5(fx.path("reg") + "/samples.h5", "images");
  CHECK(images.shape() == Shape{4, 16, 16, 1});
  // Deterministic: another seed gives the same pixels (no noise is drawn). Same batch: with --batch 3 the
  // sample drawn alone in its batch differs in its last bits (a 1-channel stem convolution at batch 1 on the
  // CPU; found here, not yet explained; the sr3 stages of these tests, with 2 input channels, match).
  const RunResult again =
      sample(fx, fx.regression_ckpt, "reg2", "--shard " + fx.data + " --count 4 --seed 7");
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  CHECK(same_bytes(images, read_h5(fx.path("reg2") + "/samples.h5", "images")));
  for (const char* bad : {"--sampler ddim", "--steps 10", "--schedule cosine"}) {
    CAPTURE(bad);
    const RunResult e = sample(fx, fx.regression_ckpt, "bad", "--shard " + fx.data + " --count 2 " + bad);
    expect_error(e, {fx.regression_ckpt, "regression stage", "one forward pass"});
  }
  // In a cascade after a base stage: a single --steps value goes to the base stage only; a value aimed at
  // the regression stage by position is refused naming it.
  const std::string cascade = "cascade --stage " + fx.base_ckpt + " --stage " + fx.regression_ckpt +
                              " --per-class 1 --device cpu --threads 2 ";
  const RunResult c = run_iris(cascade + "--steps 2 --out " + fx.path("cascade"));
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  CHECK(read_h5(fx.path("cascade") + "/cascade.h5", "stage_1").shape() == Shape{3, 16, 16, 1});
  expect_error(run_iris(cascade + "--steps 2,3 --out " + fx.path("cascade_bad")),
               {fx.regression_ckpt, "one forward pass"});
}
