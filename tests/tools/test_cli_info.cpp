// `iris info`, `iris config` and `iris eval` run as the built program: exact parameter counts of the shipped
// configs, the key listing, resolved TOML, and metrics with known values on PNG folders and HDF5 files.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/image.h"
#include "framework/io/hdf5.h"
#include "tests/data/data_test_util.h"
#include "tests/tools/tool_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;
namespace fs = std::filesystem;

TEST_CASE("iris info prints the exact parameter counts and the resolved settings") {
  IrisRun r = run_iris("info configs/fmnist_sr3_7to28.toml");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("parameters         1,520,833 "));
  CHECK(r.has("task      sr3: 7x7 -> 28x28 super-resolution (4x), 1 channel"));
  CHECK(r.has("schedule  linear, T = 2000, beta 1e-06 -> 0.01"));
  CHECK(r.has("sampler   ddpm, 100 steps"));
  CHECK(r.has("mid1 res+attn"));
  CHECK(r.has("7x7x64"));
  r = run_iris("info configs/sr3_bench_128.toml");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("parameters         97,807,491 "));
  CHECK(r.has("16x16 -> 128x128 super-resolution (8x), 3 channels"));
  // Overrides change the model; unknown keys are errors that suggest the right one.
  r = run_iris(
      "info configs/fmnist_sr3_7to28.toml --set diffusion.sampler=ddim --set diffusion.sample_steps=50");
  CHECK(r.code == 0);
  CHECK(r.has("sampler   ddim (eta 0), 50 steps"));
  r = run_iris("info configs/fmnist_sr3_7to28.toml --set model.base_chanels=16");
  CHECK(r.code == 1);
  CHECK(r.has("unknown config key 'model.base_chanels' (did you mean 'model.base_channels'?)"));
  r = run_iris("info no/such.toml");
  CHECK(r.code != 0);
  CHECK(r.has("no/such.toml"));
}

TEST_CASE("iris config lists every key and shows resolved configurations") {
  IrisRun r = run_iris("config --keys");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("[train]"));
  CHECK(r.has("train.lr"));
  CHECK(r.has("peak learning rate"));
  CHECK(r.has("model.channel_mults"));
  r = run_iris("config --keys --section diffusion");
  CHECK(r.code == 0);
  CHECK(r.has("diffusion.sampler"));
  CHECK(!r.has("train.lr"));
  r = run_iris("config show configs/fmnist_sr3_7to28.toml --set train.lr=3e-4");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("[train]\nsteps = 3000"));
  CHECK(r.has("lr = 0.0003\n"));  // the shortest form that reads back exactly
  CHECK(r.has("beta_start = 1e-06\n"));
  r = run_iris("config show configs/fmnist_sr3_7to28.toml --changed --set data.hflip=true");
  CHECK(r.code == 0);
  CHECK(r.has("hflip = true"));
  CHECK(!r.has("prefetch"));
  r = run_iris("config show configs/fmnist_sr3_7to28.toml --set train.lr=fast");
  CHECK(r.code == 1);
  CHECK(r.has("config key 'train.lr' expects a number, got 'fast'"));
  r = run_iris("config");
  CHECK(r.code != 0);
  CHECK(r.has("--keys or the subcommand"));
}

namespace {

// 3x16x16 RGB images with values in [20, 220) so that +10 stays in range.
std::vector<Image> truth_images() {
  std::vector<Image> v;
  for (int i = 0; i < 3; ++i) {
    Image im = pattern_image(16, 16, 3, i);
    for (auto& p : im.pixels) p = static_cast<uint8_t>(20 + p % 200);
    v.push_back(im);
  }
  return v;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void write_h5(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& datasets) {
  h5::AtomicWriter w(path);
  {
    h5::Group root = w.root();
    for (const auto& [name, t] : datasets) root.write_tensor(name, t);
  }
  w.commit();
}

}  // namespace

TEST_CASE("iris eval gives the known PSNR, SSIM and consistency on PNG folders and HDF5 files") {
  TempDir dir("cli-eval");
  const std::string truth = dir.file("truth"), pred = dir.file("pred"), low = dir.file("low");
  fs::create_directories(truth);
  fs::create_directories(pred);
  fs::create_directories(low);
  const std::vector<Image> t = truth_images();
  const char* names[3] = {"a.png", "b.png", "c.png"};
  for (int i = 0; i < 3; ++i) {
    Image p = t[static_cast<size_t>(i)];
    for (auto& v : p.pixels) v = static_cast<uint8_t>(v + 10);  // MSE 100 everywhere
    write_png(truth + "/" + names[i], t[static_cast<size_t>(i)]);
    write_png(pred + "/" + names[i], p);
    write_png(low + "/" + names[i], Image(4, 4, 3, 0));
  }
  write_png(truth + "/extra.png", t[0]);                       // references without a prediction are not used
  const double want = 10 * std::log10(255.0 * 255.0 / 100.0);  // 28.1308...

  IrisRun r = run_iris("eval --pred " + shell_quote(pred) + " --truth " + shell_quote(truth) + " --json " +
                       shell_quote(dir.file("e.json")));
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("a.png"));
  CHECK(r.has("28.131"));
  nlohmann::json j = read_json(dir.file("e.json"));
  CHECK(j["count"] == 3);
  CHECK(j["mean"]["psnr"].get<double>() == doctest::Approx(want).epsilon(1e-12));
  CHECK(j["images"][1]["name"] == "b.png");
  CHECK(j["images"][1]["psnr"].get<double>() == doctest::Approx(want).epsilon(1e-12));
  CHECK(j["mean"]["ssim"].get<double>() < 1.0);
  CHECK(j["mean"]["consistency"].is_null());

  // With low-res inputs: consistency. The predictions downsample to roughly their mean; compare with the
  // library's definition on one image by hand: a constant prediction against a constant low-res image.
  fs::create_directories(dir.file("flat"));
  fs::create_directories(dir.file("flatlow"));
  write_png(dir.file("flat/x.png"), Image(12, 12, 1, 100));
  write_png(dir.file("flatlow/x.png"), Image(3, 3, 1, 120));
  r = run_iris("eval --pred " + shell_quote(dir.file("flat/x.png")) + " --truth " +
               shell_quote(dir.file("flat")) + " --lowres " + shell_quote(dir.file("flatlow")) + " --json " +
               shell_quote(dir.file("c.json")));
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("inf"));  // the prediction is its own reference
  j = read_json(dir.file("c.json"));
  CHECK(j["mean"]["psnr"] == "inf");
  CHECK(j["mean"]["ssim"].get<double>() == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(j["mean"]["consistency"].get<double>() == doctest::Approx(std::pow(20.0 / 255.0, 2)).epsilon(1e-12));

  // HDF5: predictions and low-res images as datasets of one file, the references a folder (by position).
  const std::string h5 = dir.file("samples.h5");
  std::vector<Image> p;
  for (const Image& im : t) {
    Image q = im;
    for (auto& v : q.pixels) v = static_cast<uint8_t>(v + 10);
    p.push_back(q);
  }
  write_h5(h5, {{"images", stack_images(p)},
                {"lowres", stack_images({Image(4, 4, 3, 0), Image(4, 4, 3, 0), Image(4, 4, 3, 0)})}});
  r = run_iris("eval -q --pred " + shell_quote(h5) + " --truth " + shell_quote(truth + "/a.png"));
  CHECK(r.code == 1);  // 3 predictions, 1 reference
  CHECK(r.has("3 predictions"));
  fs::remove(truth + "/extra.png");
  r = run_iris("eval -q --pred " + shell_quote(h5) + " --truth " + shell_quote(truth) + " --lowres " +
               shell_quote(h5 + ":lowres") + " --json " + shell_quote(dir.file("h.json")));
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(!r.has("#1 "));  // -q: only the mean
  j = read_json(dir.file("h.json"));
  CHECK(j["mean"]["psnr"].get<double>() == doctest::Approx(want).epsilon(1e-12));
  CHECK(j["images"][0]["name"] == "#0");
  CHECK(j["mean"]["consistency"].get<double>() > 0);

  // Misuse names the file.
  r = run_iris("eval --pred " + shell_quote(h5 + ":nothing") + " --truth " + shell_quote(truth));
  CHECK(r.code == 1);
  CHECK(r.has("has no dataset 'nothing'"));
  write_png(dir.file("big.png"), Image(20, 20, 3, 1));
  r = run_iris("eval --pred " + shell_quote(dir.file("big.png")) + " --truth " +
               shell_quote(truth + "/a.png"));
  CHECK(r.code == 1);
  CHECK(r.has("20x20x3"));
  CHECK(r.has("16x16x3"));
}
