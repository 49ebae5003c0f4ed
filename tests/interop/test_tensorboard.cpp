// iris train's TensorBoard event files, read by TensorBoard's own reader (EventAccumulator): every scalar of
// metrics.jsonl under its tag at its step, the sample grids as images of their PNG's size, the config as text;
// and a run resumed from an earlier checkpoint leaves each step once (the restart marker drops the steps the
// killed process logged after that checkpoint). Then iris eval's means in the same run at the checkpoint's
// step, and iris sweep's scores at the swept values, each point once after a re-run.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "diffusion/checkpoint.h"
#include "tests/interop/interop_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {
// metrics.jsonl's records with `key`, as step -> value.
std::map<int64_t, double> metrics_of(const fs::path& run, const std::string& key) {
  std::map<int64_t, double> out;
  std::ifstream f(run / "metrics.jsonl");
  for (std::string line; std::getline(f, line);)
    if (const auto j = nlohmann::json::parse(line); j.contains(key))
      out[j["step"].get<int64_t>()] = j[key].get<double>();
  return out;
}
}  // namespace

TEST_CASE(
    "TensorBoard reads iris train's event files: scalars, grids, config, and a resume without duplicates") {
  IRIS_INTEROP_BEGIN();
  const std::string root = fresh_dir("interop-tb");
  const std::string data = root + "/data";
  write_tiny_shards(data, 24);
  const std::string cfg = write_tiny_config(root, data);
  const fs::path run = fs::path(root) / "run";
  const std::string train = std::string(iris_binary()) + " train --config " + cfg +
                            " --threads 1 --device cpu --run " + run.string() +
                            " --set train.sample_every=2 --set train.checkpoint_every=2 ";
  const RunResult first = run_shell(train + "--set train.steps=4");
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  // The process "dies" after step 4 having checkpointed only step 2: resume from 2 and train to 6.
  fs::remove(run / "checkpoints" / diffusion::checkpoint_name(4));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // event file names carry whole seconds
  const RunResult second = run_shell(train + "--resume auto --set train.steps=6");
  REQUIRE_MESSAGE(second.exit_code == 0, second.output);

  const nlohmann::json tb = run_python_json("read_tensorboard.py", (run / "tensorboard").string());
  INFO(tb.dump());
  // Every metrics.jsonl value of the resumed run (the last record of each step) at its step, each step once.
  for (const auto& [tag, key] :
       std::map<std::string, std::string>{{"train/loss", "loss"},
                                          {"train/lr", "lr"},
                                          {"train/grad_norm", "grad_norm"},
                                          {"val/psnr", "val_psnr"},
                                          {"val/ssim", "val_ssim"},
                                          {"val/bicubic_psnr", "val_bicubic_psnr"}}) {
    CAPTURE(tag);
    const auto expected = metrics_of(run, key);
    REQUIRE(tb["scalars"].contains(tag));
    const auto& events = tb["scalars"][tag];
    REQUIRE(events.size() == expected.size());
    for (const auto& e : events) {
      const int64_t step = e[0].get<int64_t>();
      REQUIRE(expected.count(step) == 1);
      const double want = expected.at(step), got = e[1].get<double>();
      CHECK(std::abs(got - want) <= 1e-6 * std::abs(want) + 1e-12);  // stored as float32
    }
  }
  CHECK(tb["scalars"]["train/loss"].size() == 6);  // steps 1..6 (log_every 1), 3 and 4 once
  // The grids: one image per grid written, at its step, of the grid's size.
  REQUIRE(tb["images"].contains("samples"));
  for (const auto& e : tb["images"]["samples"]) {
    char name[64];
    std::snprintf(name, sizeof(name), "step_%09lld.png", static_cast<long long>(e[0].get<int64_t>()));
    const fs::path png = run / "samples" / name;
    REQUIRE(fs::exists(png));
    CHECK(e[3].get<int64_t>() > 0);
  }
  CHECK(tb["images"]["samples"].size() == 3);  // steps 2, 4, 6
  // The resolved config as text, from each process.
  REQUIRE(tb["text"].contains("config"));
  CHECK(tb["text"]["config"].back()[1].get<std::string>().find("[train]") != std::string::npos);

  // iris eval of samples from the step-6 checkpoint: its means in the run at step 6, beside the curves.
  const std::string samples = root + "/samples";
  const RunResult sampled =
      run_iris("sample --ckpt " + (run / "checkpoints" / diffusion::checkpoint_name(6)).string() +
               " --shard " + data + " --count 4 --steps 2 --device cpu --threads 1 --out " + samples);
  REQUIRE_MESSAGE(sampled.exit_code == 0, sampled.output);
  const std::string h5 = samples + "/samples.h5";
  const RunResult eval = run_iris("eval -q --pred " + h5 + " --truth " + h5 + ":truth --lowres " + h5 +
                                  ":lowres --json " + root + "/eval.json");
  REQUIRE_MESSAGE(eval.exit_code == 0, eval.output);
  std::ifstream ej(root + "/eval.json");
  const nlohmann::json mean = nlohmann::json::parse(ej)["mean"];
  const nlohmann::json after = run_python_json("read_tensorboard.py", (run / "tensorboard").string());
  INFO(after.dump());
  for (const char* m : {"psnr", "ssim", "consistency", "bicubic_psnr", "bicubic_ssim"}) {
    CAPTURE(m);
    const auto& events = after["scalars"][std::string("eval/") + m];
    REQUIRE(events.size() == 1);
    CHECK(events[0][0].get<int64_t>() == 6);
    const double want = mean[m].get<double>();
    CHECK(std::abs(events[0][1].get<double>() - want) <= 1e-6 * std::abs(want) + 1e-12);
  }
  CHECK(after["scalars"]["train/loss"] == tb["scalars"]["train/loss"]);  // the curves as they were
  REQUIRE(after["text"].contains("eval/about"));

  // iris sweep over steps: sweep/psnr at the steps' values, each point once after a re-run.
  const std::string sweep =
      "sweep --stage " + (run / "checkpoints" / diffusion::checkpoint_name(6)).string() + " --shard " + data +
      " --count 4 --vary steps=2,3 --metrics psnr --device cpu --threads 1 --out " + root + "/sweep";
  REQUIRE(run_iris(sweep).exit_code == 0);
  const RunResult again = run_iris(sweep);
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  std::ifstream sj(root + "/sweep/sweep.json");
  const nlohmann::json points = nlohmann::json::parse(sj)["points"];
  const nlohmann::json swept = run_python_json("read_tensorboard.py", root + "/sweep/tensorboard");
  INFO(swept.dump());
  const auto& psnr = swept["scalars"]["sweep/psnr"];
  REQUIRE(psnr.size() == 2);
  for (size_t k = 0; k < 2; ++k) {
    CHECK(psnr[k][0].get<int64_t>() == (k == 0 ? 2 : 3));
    const double want = points[k]["scores"]["psnr"].get<double>();
    CHECK(std::abs(psnr[k][1].get<double>() - want) <= 1e-6 * std::abs(want) + 1e-12);
  }
  fs::remove_all(root);
}
