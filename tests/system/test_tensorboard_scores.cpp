// TensorBoard events of the scoring commands, run as processes and read back with the tests' event reader
// (tests/common/event_file.h): `iris eval` of `iris sample`'s output logs its means into the training run at
// the checkpoint's step, beside (and without disturbing) the training curves; --tensorboard, --step,
// --tensorboard-tag and --no-tensorboard; folders that cannot be written (asked for: an error before the
// scoring; the run's: a warning). `iris sweep`'s events: a whole-number axis drawn at its values,
// --no-tensorboard, and a folder that cannot be written, refused before any point is sampled (the grid's
// layout and re-runs: test_sweep.cpp).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/common/event_file.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), path);
  return nlohmann::json::parse(f);
}

// The one value of `tag` in `view`, at `step`, equal to `want` as float32.
void check_scalar(const EventView& view, const std::string& tag, int64_t step, double want) {
  CAPTURE(tag);
  const auto got = view.scalars(tag);
  REQUIRE(got.size() == 1);
  CHECK(got[0].first == step);
  CHECK(got[0].second == static_cast<float>(want));
}

}  // namespace

TEST_CASE("iris eval logs its means to the training run's TensorBoard at the checkpoint's step") {
  TrainedFixture fx("eval-tb", {.sr3 = true});
  const fs::path run = fs::path(fx.sr3_ckpt).parent_path().parent_path();
  const std::string tb = (run / "tensorboard").string();
  REQUIRE(fs::is_directory(tb));  // iris train's own events
  const EventView trained(tb);
  REQUIRE(trained.scalars("train/loss").size() == 2);

  const std::string out = fx.path("samples");
  const RunResult sampled = run_iris("sample --ckpt " + fx.sr3_ckpt + " --shard " + fx.data +
                                     " --count 4 --steps 2 --device cpu --threads 2 --out " + out);
  REQUIRE_MESSAGE(sampled.exit_code == 0, sampled.output);
  const std::string h5 = out + "/samples.h5";
  const std::string eval = "eval -q --pred " + h5 + " --truth " + h5 + ":truth --lowres " + h5 + ":lowres ";

  // The default: the checkpoint's run, at its step (2), every mean, and the training curves untouched.
  const RunResult r = run_iris(eval + "--json " + fx.path("eval.json"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r,
                 "TensorBoard: eval/psnr, eval/ssim, eval/consistency, eval/bicubic_psnr, eval/bicubic_ssim "
                 "at step 2 -> " +
                     tb + "/events.out.tfevents.");
  const nlohmann::json mean = read_json(fx.path("eval.json"))["mean"];
  {
    const EventView view(tb);
    for (const char* m : {"psnr", "ssim", "consistency", "bicubic_psnr", "bicubic_ssim"})
      check_scalar(view, std::string("eval/") + m, 2, mean[m].get<double>());
    CHECK(view.scalars("train/loss") == trained.scalars("train/loss"));
    const auto about = view.values("eval/about");
    REQUIRE(about.size() == 1);
    CHECK(about[0].first == 2);
    CHECK(about[0].second.plugin == "text");
    CHECK(about[0].second.str.find("4 images of '" + h5 + "'") != std::string::npos);
    CHECK(about[0].second.str.find(fs::absolute(fx.sr3_ckpt).string() + " (step 2, ema weights, ") !=
          std::string::npos);
  }
  const size_t files = event_files(tb).size();

  // --tensorboard DIR with --step and --tensorboard-tag: there, and nothing more in the run.
  const std::string mine = fx.path("mine/tb");
  const RunResult chosen =
      run_iris(eval + "--tensorboard " + mine + " --step 7 --tensorboard-tag eval_ddim2");
  REQUIRE_MESSAGE(chosen.exit_code == 0, chosen.output);
  check_scalar(EventView(mine), "eval_ddim2/psnr", 7, mean["psnr"].get<double>());
  CHECK(event_files(tb).size() == files);
  // The same samples read as samples.h5:images also come from the checkpoint.
  const RunResult images = run_iris("eval -q --pred " + h5 + ":images --truth " + h5 + ":truth");
  REQUIRE_MESSAGE(images.exit_code == 0, images.output);
  check_contains(images, "TensorBoard: eval/psnr, eval/ssim at step 2 -> " + tb);
  CHECK(event_files(tb).size() == files + 1);
  // --no-tensorboard writes nothing; images not made by iris sample have no run to log to.
  const RunResult off = run_iris(eval + "--no-tensorboard");
  REQUIRE_MESSAGE(off.exit_code == 0, off.output);
  CHECK(off.output.find("TensorBoard") == std::string::npos);
  const RunResult truth = run_iris("eval -q --pred " + h5 + ":truth --truth " + h5 + ":truth");
  REQUIRE_MESSAGE(truth.exit_code == 0, truth.output);
  CHECK(truth.output.find("TensorBoard") == std::string::npos);
  CHECK(event_files(tb).size() == files + 1);

  // An asked-for folder that cannot be made: an error naming it before anything is scored.
  const std::string blocked = fx.path("blocked");
  std::ofstream(blocked) << "a file where the folder should be";
  const RunResult bad = run_iris(eval + "--tensorboard " + blocked + "/tb");
  expect_error(bad, {"tensorboard", blocked});
  CHECK(bad.output.find("PSNR") == std::string::npos);
  // The run's folder that cannot be written (a folder of /proc in its place, which not even root can write
  // in): a warning, and the scores as usual.
  fs::rename(tb, tb + ".moved");
  fs::create_directory_symlink("/proc/self", tb);
  const RunResult warned = run_iris(eval);
  REQUIRE_MESSAGE(warned.exit_code == 0, warned.output);
  check_contains(warned, "warning: tensorboard: cannot write in the folder '" + tb +
                             "'; the scores are not logged to the run's TensorBoard");
  check_contains(warned, "PSNR (dB)");
  CHECK(warned.output.find("TensorBoard: eval/") == std::string::npos);
  // --step with nowhere to write: said, not ignored.
  expect_error(run_iris("eval -q --pred " + h5 + ":truth --truth " + h5 + ":truth --step 3"),
               {"--step sets the TensorBoard step", "give --tensorboard DIR"});
}

TEST_CASE("iris sweep's TensorBoard: a whole-number axis at its values, --no-tensorboard, a blocked folder") {
  TrainedFixture fx("sweep-tb", {.sr3 = true});
  const std::string sweep =
      "sweep --stage " + fx.sr3_ckpt + " --shard " + fx.data +
      " --count 4 --vary steps=2,3 --metrics psnr,ms --batch 4 --device cpu --threads 2";
  const std::string out = fx.path("s");
  const RunResult r = run_iris(sweep + " --out " + out);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "TensorBoard: sweep/<metric> of every point in " + out + "/tensorboard");
  // One series: the scores in OUT/tensorboard itself, at steps 2 and 3 (the values of steps).
  const nlohmann::json j = read_json(out + "/sweep.json");
  const EventView view(out + "/tensorboard");
  for (const char* m : {"psnr", "ms"}) {
    CAPTURE(m);
    const auto got = view.scalars(std::string("sweep/") + m);
    REQUIRE(got.size() == 2);
    for (size_t k = 0; k < 2; ++k) {
      CHECK(got[k].first == (k == 0 ? 2 : 3));
      CHECK(got[k].second == static_cast<float>(j["points"][k]["scores"][m].get<double>()));
    }
  }
  const auto axis = view.values("sweep/x_axis");
  REQUIRE(axis.size() == 1);
  CHECK(axis[0].second.str.find("The step of each point is its value of steps") != std::string::npos);
  const auto table = view.values("sweep/points");
  REQUIRE(table.size() == 1);
  CHECK(table[0].second.str.find("| point | steps | PSNR (dB) | ms per image |") == 0);
  CHECK(std::count_if(fs::directory_iterator(out + "/tensorboard"), fs::directory_iterator(),
                      [](const fs::directory_entry& e) { return e.is_directory(); }) == 0);

  const RunResult off = run_iris(sweep + " --no-tensorboard --out " + fx.path("off"));
  REQUIRE_MESSAGE(off.exit_code == 0, off.output);
  CHECK_FALSE(fs::exists(fx.path("off") + "/tensorboard"));

  // A file where the folder should be: refused naming it, before any point is sampled.
  const std::string blocked = fx.path("blocked");
  fs::create_directories(blocked);
  std::ofstream(blocked + "/tensorboard") << "a file where the folder should be";
  const RunResult bad = run_iris(sweep + " --out " + blocked);
  expect_error(bad, {"tensorboard", blocked + "/tensorboard"});
  CHECK(bad.output.find("point 1/2") == std::string::npos);
  CHECK_FALSE(fs::exists(blocked + "/points/0.json"));
}
