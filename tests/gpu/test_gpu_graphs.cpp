// CUDA graphs of the sampling U-Net evaluation (framework/core/replay_graph.h, diffusion::Stage::sample with
// IRIS_CUDA_GRAPHS=1): a captured and replayed sample must equal the eager one bit for bit (the same kernels
// on the same values), in f32 and under bf16 autocast, for the first call (warm-up, capture, replays) and a
// second call of the same shape (replays only), and the graphs must really be captured and replayed.
#include <cstdlib>
#include <initializer_list>

#include "diffusion/stage.h"
#include "framework/iris.h"
#include "tests/gpu/gpu_util.h"

using namespace iris;
using namespace iris::diffusion;

namespace {

Config config_of(std::initializer_list<const char*> settings) {
  Config c;
  for (const char* s : settings) c.set(s);
  return c;
}

Config small_sr3() {
  return config_of({"model.task=sr3", "model.resolution=16", "model.in_channels=6", "model.out_channels=3",
                    "model.base_channels=16", "model.channel_mults=1,2", "model.num_res_blocks=1",
                    "model.attention_resolutions=8", "model.norm_groups=4", "data.image_size=16",
                    "data.lowres_size=4", "data.channels=3", "diffusion.sampler=ddim", "diffusion.sample_steps=6"});
}

Config small_guided_base() {
  return config_of({"model.task=base", "model.resolution=8", "model.in_channels=3", "model.out_channels=3",
                    "model.base_channels=16", "model.channel_mults=1,2", "model.num_res_blocks=1",
                    "model.attention_resolutions=4", "model.norm_groups=4", "model.num_classes=3",
                    "data.image_size=8", "data.lowres_size=8", "data.channels=3", "diffusion.sampler=ddim",
                    "diffusion.sample_steps=6"});
}

// The stage's sample of `lowres` with graphs on or off (same seed: same noise); `steps` gets the number of
// sampler steps (U-Net evaluations).
Tensor sample_with(const Stage& stage, const Tensor& lowres, bool graphs, int64_t* steps = nullptr) {
  ::setenv("IRIS_CUDA_GRAPHS", graphs ? "1" : "0", 1);
  StageBatch b;
  b.lowres = lowres;
  SampleSettings s = stage.default_sample_settings();
  s.sampler = "ddim";
  s.steps = 6;
  int64_t calls = 0;
  s.on_step = [&calls](const SamplerStep&) { ++calls; };
  Generator gen(11);
  const Tensor out = stage.sample(b, lowres.size(0), gen, s).cpu();
  ::unsetenv("IRIS_CUDA_GRAPHS");
  if (steps != nullptr) *steps = calls;
  return out;
}

}  // namespace

TEST_CASE("gpu graphed sampling equals eager sampling bit for bit, in f32 and under bf16 autocast") {
  IRIS_GPU_TEST_BEGIN();
  Generator init(3);
  Stage stage(small_sr3(), init);
  stage.net().to(gputest::gpu());
  const Tensor lowres = test::randn({2, 4, 4, 3}, 5, DType::f32).to(gputest::gpu());
  for (bool autocast : {false, true}) {
    AutocastGuard guard(autocast, DType::bf16);
    int64_t K = 0;
    const Tensor eager = sample_with(stage, lowres, false, &K);
    const auto before = stage.sample_graph_stats();
    const Tensor first = sample_with(stage, lowres, true);   // warm-up, capture, replays
    const Tensor second = sample_with(stage, lowres, true);  // replays only
    const auto after = stage.sample_graph_stats();
    INFO("autocast " << autocast << ", last capture failure: " << stage.sample_graph_failure());
    CHECK(after.captures - before.captures == 1);
    CHECK(after.failed == 0);
    REQUIRE(K >= 3);
    CHECK(after.replays - before.replays == (K - 2) + K);  // a call: 1 eager, 1 captured, the rest replayed
    CHECK(test::max_abs_diff(first, eager) == 0.0);
    CHECK(test::max_abs_diff(second, eager) == 0.0);
  }
}

TEST_CASE("gpu graphed class-conditional sampling with guidance equals eager sampling bit for bit") {
  IRIS_GPU_TEST_BEGIN();
  Generator init(4);
  Stage stage(small_guided_base(), init);
  stage.net().to(gputest::gpu());
  StageBatch b;
  b.labels = Tensor::from_vector(std::vector<int64_t>{0, 2, 1}, {3}, DType::i64, gputest::gpu());
  auto run = [&](bool graphs) {
    ::setenv("IRIS_CUDA_GRAPHS", graphs ? "1" : "0", 1);
    SampleSettings s = stage.default_sample_settings();
    s.sampler = "ddim";
    s.steps = 6;
    s.guidance = 2.5;  // the guided path: the network sees the doubled batch (labels and the null label)
    Generator gen(12);
    const Tensor out = stage.sample(b, 3, gen, s).cpu();
    ::unsetenv("IRIS_CUDA_GRAPHS");
    return out;
  };
  const Tensor eager = run(false);
  const Tensor graphed = run(true);
  INFO("last capture failure: " << stage.sample_graph_failure());
  CHECK(stage.sample_graph_stats().captures == 1);
  CHECK(stage.sample_graph_stats().replays >= 1);
  CHECK(test::max_abs_diff(graphed, eager) == 0.0);
}
