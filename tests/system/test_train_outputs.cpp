// What a training run leaves besides checkpoints: sample grids of the validation batch every
// train.sample_every steps, and metrics.jsonl with the training records and, for sr3, the validation scores
// of the EMA model next to bicubic upsampling.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/image.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

TEST_CASE("iris train writes sample grids and validation PSNR/SSIM records to metrics.jsonl") {
  const std::string root = fresh_dir("train-outputs");
  const std::string data = (fs::path(root) / "data").string();
  write_tiny_shards(data, 24);
  const std::string cfg = write_tiny_config(root, data);
  const std::string run = (fs::path(root) / "run").string();
  const RunResult r = run_iris("train --config " + cfg + " --threads 2 --run " + run +
                               " --set train.steps=8 --set train.sample_every=4 --set train.sample_steps=5"
                               " --set train.log_every=4");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK_MESSAGE(r.output.find("validation images: PSNR") != std::string::npos, r.output);
  for (const char* grid : {"step_000000004.png", "step_000000008.png"}) {
    const fs::path p = fs::path(run) / "samples" / grid;
    REQUIRE_MESSAGE(fs::exists(p), p.string());
    const data::Image img = data::read_image(p.string());
    CHECK(img.width > 16);  // four 16x16 columns and labels at least
    CHECK(img.height > 16);
  }

  std::ifstream f((fs::path(run) / "metrics.jsonl").string());
  std::string line;
  std::vector<nlohmann::json> train, val;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line);
    (j.contains("val_psnr") ? val : train).push_back(j);
  }
  REQUIRE(train.size() == 2);
  CHECK(train[0]["step"] == 4);
  CHECK(std::isfinite(train[1]["loss"].get<double>()));
  for (const auto& t : train) CHECK(t["peak_bytes"].get<double>() > 100e3);  // the tiny U-Net's weights alone
  CHECK_MESSAGE(r.output.find("  mem ") != std::string::npos, r.output);
  REQUIRE(val.size() == 2);
  for (const auto& v : val) {
    CHECK(v["val_images"] == 2);  // train.sample_count of the tiny config
    const double psnr = v["val_psnr"], ssim = v["val_ssim"], bic = v["val_bicubic_psnr"];
    CHECK(std::isfinite(psnr));
    CHECK(psnr > 0);
    CHECK(ssim <= 1.0);
    CHECK(bic > 5);  // block images upsampled from 4x4: far from noise
  }
  CHECK(val[0]["step"] == 4);
  CHECK(val[1]["step"] == 8);
  // The validation batch is fixed: the same bicubic baseline at every evaluation.
  CHECK(val[0]["val_bicubic_psnr"].get<double>() == val[1]["val_bicubic_psnr"].get<double>());
  fs::remove_all(root);
}
