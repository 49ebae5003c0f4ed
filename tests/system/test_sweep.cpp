// `iris sweep` run as a process on tiny checkpoints trained by `iris train`: a 2x2 grid writes its table,
// sweep.json, one plot per metric and every point's record and samples; a re-run skips finished points and
// recomputes a deleted one bit for bit (and OUT/tensorboard holds every point once, laid out as the plots);
// a changed command is refused naming what changed; bad settings, metrics without their data and stages that
// do not chain are clear errors naming the checkpoint.
//
// (Here rather than in tests/tools: it needs the trained fixture, whose run_iris would clash with
// tests/tools/tool_test_util.h's.)
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/image.h"
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

// The 2x2 grid over sampler and steps of the SR3 stage on 6 shard samples, with every metric.
std::string grid_command(const TrainedFixture& fx, const std::string& out) {
  return "sweep --stage " + fx.sr3_ckpt + " --shard " + fx.data +
         " --count 6 --vary sampler=ddim,dpmpp2m --vary steps=2,3 --metrics psnr,ssim,consistency,fd,cas,ms"
         " --fd-train " +
         fx.data + " --real " + fx.data +
         " --classifier-steps 4 --classifier-batch 8 --classifier-width 8 --batch 4 --device cpu --threads 2"
         " --out " +
         fx.path(out);
}

// OUT/tensorboard of grid_command's sweep, against its sweep.json: the x axis is sampler (the first of two
// axes of two values), at steps 0 and 1 (not whole numbers: their positions); a run per value of steps; the
// references as a run of their own; every point once.
void check_tensorboard(const fs::path& out, const nlohmann::json& j) {
  const fs::path tb = out / "tensorboard";
  for (const char* m : {"psnr", "ssim", "consistency", "fd", "accuracy", "cas", "ms"}) {
    CAPTURE(m);
    for (const char* steps : {"2", "3"}) {
      CAPTURE(steps);
      std::vector<std::pair<int64_t, double>> want;
      for (const auto& p : j["points"])
        if (p["values"]["steps"] == steps)
          want.emplace_back(p["values"]["sampler"] == "ddim" ? 0 : 1,
                            static_cast<float>(p["scores"][m].get<double>()));
      REQUIRE(want.size() == 2);
      CHECK(EventView((tb / (std::string("steps=") + steps)).string()).scalars(std::string("sweep/") + m) ==
            want);
    }
  }
  const EventView reference((tb / "reference").string());
  for (const auto& [m, key] : {std::pair{"fd", "fd_floor"}, std::pair{"cas", "cas_real"},
                               std::pair{"accuracy", "classifier_top1_real"}}) {
    const auto v = static_cast<float>(j["references"][key].get<double>());
    CHECK(reference.scalars(std::string("sweep/") + m) ==
          std::vector<std::pair<int64_t, double>>{{0, v}, {1, v}});
  }
  const EventView top(tb.string());
  REQUIRE(top.values("sweep/x_axis").size() == 1);
  CHECK(top.values("sweep/x_axis")[0].second.str.find("0 = ddim, 1 = dpmpp2m") != std::string::npos);
  REQUIRE(top.values("sweep/points").size() == 1);
  CHECK(top.values("sweep/points")[0].second.str.find("\n| 3 | dpmpp2m | 3 |") != std::string::npos);
}

}  // namespace

TEST_CASE("iris sweep scores a 2x2 grid, resumes after a lost point bit for bit and refuses a changed run") {
  TrainedFixture fx("sweep", {.sr3 = true});
  const RunResult r = run_iris(grid_command(fx, "s"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const fs::path out = fx.path("s");
  // The table: a header with the axes and metrics, accuracy added (labelled samples, a feature classifier),
  // a '*' on each metric's best value, and the directions.
  check_contains(r, "sampler  steps");
  check_contains(r, "accuracy");
  check_contains(r, "Higher is better: psnr, ssim, accuracy, cas; lower is better: consistency, fd, ms");
  check_contains(r, "FD floor: ");

  const nlohmann::json j = read_json((out / "sweep.json").string());
  REQUIRE(j["points"].size() == 4);
  CHECK(j["points"][1]["values"]["sampler"] == "ddim");
  CHECK(j["points"][1]["values"]["steps"] == "3");
  CHECK(j["points"][2]["stages"][0]["sampler"] == "dpmpp2m");
  CHECK(j["points"][2]["stages"][0]["steps"] == 2);
  for (const char* m : {"psnr", "ssim", "consistency", "fd", "accuracy", "cas", "ms"}) {
    INFO(m);
    CHECK(j["points"][0]["scores"][m].is_number());
    CHECK(j["metrics"][m]["best_point"].is_number());
    // One plot per metric, a readable size.
    const data::Image plot = data::read_png((out / (std::string(m) + ".png")).string());
    CHECK(plot.width >= 600);
    CHECK(plot.channels == 3);
  }
  CHECK(j["metrics"]["psnr"]["better"] == "higher");
  CHECK(j["metrics"]["fd"]["better"] == "lower");
  CHECK(j["references"]["fd_floor"].is_number());
  CHECK(j["references"]["cas_real"].is_number());
  CHECK(j["references"]["classifier_top1_real"].is_number());
  // Each point: its record and its samples (the same inputs: 6 outputs of 16x16).
  for (int k = 0; k < 4; ++k) {
    CHECK(fs::exists(out / "points" / (std::to_string(k) + ".json")));
    CHECK(fs::exists(out / "points" / std::to_string(k) / "grid.png"));
    CHECK(read_h5((out / "points" / std::to_string(k) / "samples.h5").string(), "images").shape() ==
          Shape{6, 16, 16, 1});
  }

  check_tensorboard(out, j);

  // The scores are iris eval's and iris fd's on the point's samples.h5 (the same code, the same numbers).
  const std::string samples = (out / "points" / "1" / "samples.h5").string();
  const RunResult eval = run_iris("eval --pred " + samples + " --truth " + fx.data + " --lowres " + fx.data +
                                  ":lowres_4 --json " + fx.path("eval.json"));
  REQUIRE_MESSAGE(eval.exit_code == 0, eval.output);
  const nlohmann::json mean = read_json(fx.path("eval.json"))["mean"];
  const nlohmann::json& scores = j["points"][1]["scores"];
  CHECK(scores["psnr"].get<double>() == doctest::Approx(mean["psnr"].get<double>()).epsilon(1e-12));
  CHECK(scores["ssim"].get<double>() == doctest::Approx(mean["ssim"].get<double>()).epsilon(1e-12));
  CHECK(scores["consistency"].get<double>() ==
        doctest::Approx(mean["consistency"].get<double>()).epsilon(1e-12));
  const RunResult fd =
      run_iris("fd --classifier " + (out / "feature_classifier.h5").string() + " --generated " + samples +
               " --real " + fx.data + " --device cpu --json " + fx.path("fd.json"));
  REQUIRE_MESSAGE(fd.exit_code == 0, fd.output);
  CHECK(scores["fd"].get<double>() == doctest::Approx(read_json(fx.path("fd.json"))["fd"].get<double>()));

  // Lose point 2, run the same command: only point 2 is sampled again, with the same pixels and scores.
  const std::string h5 = (out / "points" / "2" / "samples.h5").string();
  const Tensor before = read_h5(h5, "images");
  const nlohmann::json point2 = read_json((out / "points" / "2.json").string());
  fs::remove(out / "points" / "2.json");
  fs::remove_all(out / "points" / "2");
  const RunResult again = run_iris(grid_command(fx, "s"));
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  check_contains(again, "3 of 4 points already in");
  check_contains(again, "point 3/4 ");
  CHECK(again.output.find("point 1/4 ") == std::string::npos);
  CHECK(again.output.find("point 4/4 ") == std::string::npos);
  CHECK(again.output.find("training the feature classifier") == std::string::npos);  // the saved one
  CHECK(same_bytes(read_h5(h5, "images"), before));
  const nlohmann::json redone = read_json((out / "points" / "2.json").string());
  for (const char* m : {"psnr", "ssim", "consistency", "fd", "accuracy", "cas"}) {
    INFO(m);
    CHECK(redone["scores"][m] == point2["scores"][m]);
  }
  CHECK(read_json((out / "sweep.json").string())["points"].size() == 4);
  check_tensorboard(out, read_json((out / "sweep.json").string()));  // rewritten: every point once

  // Another seed in the same folder: refused, naming the setting, unless --overwrite.
  const RunResult other = run_iris(grid_command(fx, "s") + " --seed 3");
  CHECK(other.exit_code != 0);
  check_contains(other, "holds a sweep with other settings ('seed' was 0, now 3)");
  const RunResult overwritten = run_iris(grid_command(fx, "s") + " --seed 3 --overwrite");
  REQUIRE_MESSAGE(overwritten.exit_code == 0, overwritten.output);
  check_contains(overwritten, "point 1/4 ");
}

TEST_CASE("iris sweep killed part way keeps its finished points, and the same command completes it exactly") {
  TrainedFixture fx("sweep-kill", {.sr3 = true});
  // Enough work that a kill lands part way: 3 points of 8 samples, 40-60 DDPM steps (~0.5 s a point here).
  const std::string args = "sweep --stage " + fx.sr3_ckpt + " --shard " + fx.data +
                           " --count 8 --vary sampler=ddpm --vary steps=40,50,60 --metrics psnr,consistency"
                           " --batch 4 --threads 1 --device cpu --out ";
  const std::string full = fx.path("full"), killed = fx.path("killed");
  REQUIRE(run_iris(args + full).exit_code == 0);
  const bool was_killed =
      kill_iris_when(args + killed, [&] { return fs::exists(killed + "/points/0.json"); });
  CHECK_MESSAGE(was_killed, "the sweep was not killed");
  const RunResult resumed = run_iris(args + killed);
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  check_contains(resumed, " of 3 points already in ");
  for (int k = 0; k < 3; ++k) {
    CAPTURE(k);
    const std::string point = "/points/" + std::to_string(k);
    CHECK(same_bytes(read_h5(full + point + "/samples.h5", "images"),
                     read_h5(killed + point + "/samples.h5", "images")));
    CHECK(read_json(full + point + ".json")["scores"]["psnr"] ==
          read_json(killed + point + ".json")["scores"]["psnr"]);
  }
}

TEST_CASE("iris sweep over a cascade: a per-stage augmentation level and truncation") {
  TrainedFixture fx("sweep-cascade", {.sr3_aug = true, .base = true});
  const RunResult r =
      run_iris("sweep --stage " + fx.base_ckpt + " --stage " + fx.sr3_aug_ckpt +
               " --per-class 2 --vary 1:aug_level=0.05,0.2 --vary truncated=0,1 --vary steps=2"
               " --metrics ms --device cpu --threads 2 --out " +
               fx.path("c"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const nlohmann::json j = read_json(fx.path("c") + "/sweep.json");
  REQUIRE(j["points"].size() == 4);
  const nlohmann::json& p = j["points"][3];
  CHECK(p["values"]["1:aug_level"] == "0.2");
  CHECK(p["stages"][1]["aug_level"] == 0.2);
  CHECK(p["stages"][1]["truncated"] == true);
  CHECK(p["stages"][0]["truncated"] == false);  // the base stage takes no truncation
  CHECK(p["stages"][0]["steps"] == 2);
  CHECK(p["stages"][1]["steps"] == 2);
  CHECK(read_h5(fx.path("c") + "/points/3/samples.h5", "stage_0").shape() == Shape{6, 4, 4, 1});
  CHECK(fs::exists(fx.path("c") + "/ms.png"));
}

TEST_CASE("iris sweep scores FD with a classifier saved by iris fd, without training one") {
  TrainedFixture fx("sweep-classifier", {.sr3 = true});
  const std::string clf = fx.path("features.h5");
  const RunResult fd =
      run_iris("fd --train " + fx.data + " --generated " + fx.data + " --real " + fx.data +
               " --steps 4 --batch 8 --width 8 --device cpu --threads 2 --save-classifier " + clf);
  REQUIRE_MESSAGE(fd.exit_code == 0, fd.output);
  const RunResult r = run_iris("sweep --stage " + fx.sr3_ckpt + " --shard " + fx.data +
                               " --count 4 --vary steps=2,3 --metrics fd --classifier " + clf + " --real " +
                               fx.data + " --device cpu --threads 2 --out " + fx.path("s"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "feature classifier: " + clf);
  CHECK(r.output.find("training the feature classifier") == std::string::npos);
  const nlohmann::json j = read_json(fx.path("s") + "/sweep.json");
  REQUIRE(j["points"].size() == 2);
  CHECK(j["points"][1]["scores"]["fd"].is_number());
  CHECK(j["points"][1]["scores"]["accuracy"].is_number());  // labelled shard samples, a feature classifier
  CHECK(j["references"].contains("classifier_top1_real"));
  CHECK_FALSE(j["references"].contains("fd_floor"));  // no real training images: no floor
}

TEST_CASE("iris sweep names the setting and the checkpoint for settings a stage lacks and bad input") {
  TrainedFixture fx("sweep-errors", {.sr3 = true, .base_uncond = true});
  auto sweep = [&](const std::string& stages, const std::string& args) {
    return run_iris("sweep " + stages + " --device cpu --threads 2 --out " + fx.path("e") + " " + args);
  };
  const std::string sr3 = "--stage " + fx.sr3_ckpt, shard = " --shard " + fx.data + " --count 4";
  const std::string ok = " --vary steps=2,3 --metrics ms";
  struct Case {
    std::string stages, args, message;
  };
  const std::vector<Case> cases = {
      {sr3, shard + " --vary guidance=1,2 --metrics ms",
       "--vary guidance: no stage has the setting guidance (stage 0 ('" + fx.sr3_ckpt +
           "'): classifier-free guidance applies to class-conditional base stages only)"},
      {sr3, shard + " --vary aug_level=0,0.2 --metrics ms", "(model.aug_embedding is false)"},
      {"--stage " + fx.base_uncond_ckpt, " --count 4 --vary 0:guidance=1,2 --metrics ms",
       "--vary 0:guidance: stage 0 ('" + fx.base_uncond_ckpt + "') has no setting guidance"},
      {sr3, shard + " --vary 1:steps=2 --metrics ms", "--vary 1:steps: there is no stage 1 (1 stage"},
      {sr3, shard + " --vary steps= --metrics ms", "--vary 'steps=' gives no values"},
      {sr3, shard + " --vary steps --metrics ms", "--vary 'steps' must be KEY=V1,V2,..."},
      {sr3, shard + " --vary steps=2,,3 --metrics ms", "--vary 'steps=2,,3' has an empty value"},
      {sr3, shard + " --vary steps=2,x --metrics ms", "steps takes numbers, got 'x'"},
      {sr3, shard + " --vary temperature=1 --metrics ms", "unknown setting 'temperature'"},
      {sr3, shard + " --vary truncated=0,1 --metrics ms", "no stage has the setting truncated"},
      {sr3, shard + " --vary steps=2 --vary steps=3 --metrics ms", "--vary steps is given twice"},
      {sr3, shard + " --vary sampler=ddpm --vary eta=0,1 --metrics ms",
       "--vary eta: eta applies to the ddim sampler, and no point samples with it (stage 0 ('" + fx.sr3_ckpt +
           "') uses ddpm)"},
      {sr3, shard + ok + ",fd --real " + fx.data, "--metrics fd needs a feature classifier"},
      {sr3, shard + ok + ",fd --fd-train " + fx.data, "--metrics fd needs --real"},
      {sr3, shard + ok + ",bogus", "unknown metric 'bogus'"},
      {"--stage " + fx.base_uncond_ckpt, " --count 4" + ok + ",psnr", "' is a base stage (it has no truth"},
      {"--stage " + fx.base_uncond_ckpt, " --count 4" + ok + ",cas --real " + fx.data,
       "--metrics cas needs class labels"},
      {sr3 + " " + sr3, shard + ok,
       "--stage '" + fx.sr3_ckpt + "' (stage 1) cannot follow --stage '" + fx.sr3_ckpt + "' (stage 0)"},
  };
  for (const Case& c : cases) {
    const RunResult r = sweep(c.stages, c.args);
    INFO(c.args);
    CHECK(r.exit_code != 0);
    check_contains(r, c.message);
  }
}
