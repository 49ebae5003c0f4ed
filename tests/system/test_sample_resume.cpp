// Sampling runs that die part way: `iris sample|cascade --resume` keeps the finished samples (their PNGs are
// written atomically as each round finishes) and samples only the rest, giving the same output bit for bit as
// an uninterrupted run; a run in --out is never silently replaced, and a resume with other settings is
// refused naming the setting.

#include <filesystem>
#include <fstream>

#include "data/image.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// The PNG files of a folder, sorted.
std::vector<fs::path> pngs_in(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png" && e.path().filename() != "grid.png") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("iris sample --resume samples only what is missing and equals an uninterrupted run") {
  TrainedFixture fx("sample-resume", {.sr3 = true});
  const std::string cmd = "sample --ckpt " + fx.sr3_ckpt + " --shard " + fx.data +
                          " --count 9 --steps 3 --sampler ddpm --batch 2 --threads 2 --device cpu --out ";
  const std::string full = fx.path("full"), part = fx.path("part");
  REQUIRE(run_iris(cmd + full + " --seed 4").exit_code == 0);
  REQUIRE(run_iris(cmd + part + " --seed 4").exit_code == 0);

  // As if the job had died: samples.h5 never written, 4 samples missing, one PNG damaged.
  fs::remove(fs::path(part) / "samples.h5");
  const auto pngs = pngs_in(part);
  REQUIRE(pngs.size() == 9);
  for (size_t k : {1, 4, 5, 8}) fs::remove(pngs[k]);
  std::ofstream(pngs[2], std::ios::binary | std::ios::trunc) << "not a png";

  // Without --resume the run folder is not replaced; other settings are refused by name.
  const RunResult refused = run_iris(cmd + part + " --seed 4");
  CHECK(refused.exit_code != 0);
  check_contains(refused, "already holds a sampling run");
  check_contains(refused, "--resume");
  const RunResult other_seed = run_iris(cmd + part + " --seed 5 --resume");
  CHECK(other_seed.exit_code != 0);
  check_contains(other_seed, "'seed' was 4, now 5");
  const RunResult other_steps = run_iris(cmd + part + " --seed 4 --raw --resume");
  CHECK(other_steps.exit_code != 0);
  check_contains(other_steps, "'stage.weights' was \"ema\", now \"raw\"");

  const RunResult resumed = run_iris(cmd + part + " --seed 4 --resume");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  check_contains(resumed, "resuming: 4 of 9 samples already in");  // the damaged one is sampled again
  check_contains(resumed, "cannot be read");
  CHECK(same_bytes(read_h5(part + "/samples.h5", "images"), read_h5(full + "/samples.h5", "images")));
  CHECK(pngs_in(part).size() == 9);
  // Every PNG equals the uninterrupted run's, the damaged one included.
  for (const auto& p : pngs_in(full)) {
    CAPTURE(p.filename().string());
    const data::Image a = data::read_png(p.string()),
                      b = data::read_png((fs::path(part) / p.filename()).string());
    CHECK(a.pixels == b.pixels);
  }
  // Resuming a finished run samples nothing and still writes its outputs.
  const RunResult again = run_iris(cmd + part + " --seed 4 --resume");
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  check_contains(again, "resuming: 9 of 9 samples");
  // --overwrite replaces the run.
  const RunResult over = run_iris(cmd + part + " --seed 6 --overwrite");
  REQUIRE_MESSAGE(over.exit_code == 0, over.output);
  CHECK_FALSE(same_bytes(read_h5(part + "/samples.h5", "images"), read_h5(full + "/samples.h5", "images")));
  // --resume where there is no run is an error.
  const RunResult nothing = run_iris(cmd + fx.path("empty") + " --seed 4 --resume");
  CHECK(nothing.exit_code != 0);
  check_contains(nothing, "holds no sampling run");
}

TEST_CASE("iris sample killed mid-run leaves only complete PNGs, and --resume finishes it exactly") {
  TrainedFixture fx("sample-kill", {.sr3 = true});
  // Enough work that a kill lands part way: 24 samples in batches of 2, 100 DDPM steps (~0.1 s a batch here).
  const std::string args =
      "sample --ckpt " + fx.sr3_ckpt + " --shard " + fx.data +
      " --count 24 --steps 100 --sampler ddpm --batch 2 --threads 1 --device cpu --seed 2 --out ";
  const std::string full = fx.path("full"), killed = fx.path("killed");
  REQUIRE(run_iris(args + full).exit_code == 0);

  // Kill it once a few samples are on disk.
  const bool was_killed =
      kill_iris_when(args + killed, [&] { return fs::exists(killed) && pngs_in(killed).size() >= 4; });
  CHECK_MESSAGE(was_killed, "the sampling process was not killed");
  const size_t on_disk = pngs_in(killed).size();
  MESSAGE("killed with ", on_disk, " of 24 samples on disk");
  CHECK(on_disk < 24);
  CHECK_FALSE(fs::exists(fs::path(killed) / "samples.h5"));
  for (const auto& p : pngs_in(killed)) CHECK_NOTHROW(data::read_png(p.string()));

  const RunResult resumed = run_iris(args + killed + " --resume");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  check_contains(resumed, "resuming: " + std::to_string(on_disk) + " of 24");
  for (const auto& e :
       fs::directory_iterator(killed))  // a PNG being written when killed leaves nothing behind
    CHECK_MESSAGE(e.path().filename().string().find(".tmp-") == std::string::npos, e.path().string());
  CHECK(same_bytes(read_h5(killed + "/samples.h5", "images"), read_h5(full + "/samples.h5", "images")));
}

TEST_CASE(
    "iris cascade --resume redoes a sample whose last stage is missing and equals an uninterrupted run") {
  TrainedFixture fx("cascade-resume", {.sr3 = true, .base = true});
  const std::string cmd = "cascade --stage " + fx.base_ckpt + " --stage " + fx.sr3_ckpt +
                          " --labels 0,1,2,0,1 --steps 2 --seed 3 --batch 2 --threads 2 --device cpu --out ";
  const std::string full = fx.path("full"), part = fx.path("part");
  REQUIRE(run_iris(cmd + full).exit_code == 0);
  REQUIRE(run_iris(cmd + part).exit_code == 0);
  fs::remove(fs::path(part) / "cascade.h5");
  const auto last = pngs_in(part + "/stage_1");
  REQUIRE(last.size() == 5);
  fs::remove(last[3]);  // its stage-0 PNG stays: the sample is still redone whole
  const RunResult resumed = run_iris(cmd + part + " --resume");
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  check_contains(resumed, "resuming: 4 of 5 samples");
  for (const char* stage : {"stage_0", "stage_1"}) {
    CAPTURE(stage);
    CHECK(same_bytes(read_h5(part + "/cascade.h5", stage), read_h5(full + "/cascade.h5", stage)));
  }
}
