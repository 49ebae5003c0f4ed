// `iris bench` run as the built program on the CPU: the JSON record's fields agree with each other and with
// the model, overrides reach the model, and bad options are named in the error.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/tools/tool_test_util.h"

using namespace iris::test;

namespace {

// The last line of the output that starts with '{': the bench's JSON record.
nlohmann::json last_json(const IrisRun& r) {
  const size_t at = r.out.rfind("\n{");
  REQUIRE_MESSAGE(at != std::string::npos, r.out);
  return nlohmann::json::parse(r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1));
}

const std::string kBench =
    "bench --config configs/fmnist_sr3_7to28.toml --device cpu --threads 1 --batch 2 --steps 3 --warmup 1 ";

}  // namespace

TEST_CASE("iris bench reports a median, rates and memory that agree with its step times") {
  for (const char* mode : {"train", "sample"}) {
    CAPTURE(mode);
    const IrisRun r = run_iris(kBench + "--mode " + mode + " --precision f32");
    INFO(r.out);
    REQUIRE(r.code == 0);
    const nlohmann::json j = last_json(r);
    CHECK(j["params"] == 1520833);  // configs/fmnist_sr3_7to28.toml, as `iris info` counts it
    CHECK(j["batch"] == 2);
    CHECK(j["mode"] == mode);
    CHECK(j["precision"] == "f32");
    CHECK(j["device"] == "cpu");
    CHECK_FALSE(j.contains("conv_search"));  // a CUDA setting: not reported for the CPU
    std::vector<double> steps = j["steps_ms"].get<std::vector<double>>();
    REQUIRE(steps.size() == 3);
    std::sort(steps.begin(), steps.end());
    const double median = j["step_ms"].get<double>();
    CHECK(median == steps[1]);
    CHECK(steps.front() > 0);
    CHECK(j["img_per_s"].get<double>() == doctest::Approx(2 * 1000.0 / median).epsilon(1e-9));
    // On the CPU the host does the work itself: queueing a step is the step.
    CHECK(j["host_ms"].get<double>() > 0);
    CHECK(j["host_ms"].get<double>() <= steps.back() * 1.01);
    CHECK(j["tflops"].get<double>() > 0);
    CHECK(j["peak_bytes"].get<double>() > 0);
    // What tools/scripts/bench_pytorch.py reports for PyTorch: the resident memory's growth (0 when the steps
    // fit in memory the process already held), for this tiny model far below a GiB.
    CHECK(j["peak_rss_bytes"].get<double>() >= 0);
    CHECK(j["peak_rss_bytes"].get<double>() < 1e9);
    CHECK(j["threads"] == 1);
    CHECK((j["cpu_conv"] == "winograd" || j["cpu_conv"] == "im2col"));
    CHECK(r.has(std::string("step         ") + mode + ", f32, batch 2, 3 steps after 1 warm-up\n"));
  }
}

TEST_CASE("iris bench --cpu-conv chooses the CPU convolutions and --profile shows where the step goes") {
  IrisRun r = run_iris(kBench + "--mode train --cpu-conv im2col --profile");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(last_json(r)["cpu_conv"] == "im2col");
  CHECK(r.has("convolutions im2col + GEMM\n"));
  // The profile's table: every convolution pass and the optimizer appear, with the framework's remainder.
  for (const char* kernel : {"conv2d_forward ", "conv2d_backward_data ", "conv2d_backward_weight ",
                             "group_norm_forward ", "adamw_update_multi ", "(outside kernels) "})
    CHECK_MESSAGE(r.has(std::string("\n") + kernel), kernel);
  r = run_iris(kBench + "--mode sample --cpu-conv fft");
  CHECK(r.code == 1);
  CHECK(r.has("--cpu-conv must be auto, winograd, direct or im2col, got 'fft'"));
  // CUDA graphs are for sampling on a GPU: asked for on the CPU (kBench runs there), a clear refusal.
  r = run_iris(kBench + "--mode sample --graphs");
  CHECK(r.code == 1);
  CHECK(r.has("--graphs is for --mode sample on a CUDA device"));

  // IRIS_CPU_CONV sets the method for a whole run ("auto" leaves it to the library), and names itself when
  // it is wrong.
  struct EnvGuard {
    ~EnvGuard() { unsetenv("IRIS_CPU_CONV"); }
  } restore;
  setenv("IRIS_CPU_CONV", "im2col", 1);
  r = run_iris(kBench + "--mode sample");
  REQUIRE(r.code == 0);
  CHECK(last_json(r)["cpu_conv"] == "im2col");
  setenv("IRIS_CPU_CONV", "fastest", 1);
  r = run_iris(kBench + "--mode sample");
  CHECK(r.code == 1);
  CHECK(r.has("IRIS_CPU_CONV='fastest': expected auto, winograd, direct or im2col"));
}

TEST_CASE("iris bench applies --set to the model and names bad options") {
  IrisRun r = run_iris(kBench + "--mode sample --set model.base_channels=16 --set model.norm_groups=4");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(last_json(r)["params"].get<int64_t>() < 1520833);
  r = run_iris(kBench + "--precision fp8");
  CHECK(r.code == 1);
  CHECK(r.has("--precision must be f32, tf32 or bf16, got 'fp8'"));
  r = run_iris(kBench + "--set train.conv_search=fastest");
  CHECK(r.code == 1);
  CHECK(r.has("train.conv_search must be heuristic or find, got 'fastest'"));
  r = run_iris(kBench + "--set model.base_chanels=16");
  CHECK(r.code == 1);
  CHECK(r.has("model.base_chanels"));
}

TEST_CASE("iris bench times class-conditional models (labels are part of the inputs)") {
  for (const char* mode : {"train", "sample"}) {
    CAPTURE(mode);
    const IrisRun r = run_iris(
        "bench --config configs/fmnist_base_14.toml --device cpu --threads 1 --batch 3 --steps 2 --warmup 1 "
        "--mode " +
        std::string(mode));
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(last_json(r)["batch"] == 3);
  }
}
