// The U-Net: exact parameter counts of the benchmark configurations, output shapes for odd configurations,
// conditioning inputs, gradients reaching every parameter, and misuse errors.
#include "diffusion/unet.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::diffusion;
using iris::test::check_throws_with;

namespace {
UNet build(const std::string& config_path, uint64_t seed = 0, const std::vector<std::string>& sets = {}) {
  Generator g(seed);
  Config c = Config::load(config_path);
  for (const auto& s : sets) c.set(s);
  return UNet(UNetConfig::from_config(c), g);
}
}  // namespace

TEST_CASE("parameter counts match SR3_BENCH.md") {
  CHECK(build("configs/sr3_bench_128.toml").num_parameters() == 97807491);
  CHECK(build("configs/sr3_cpu_bench_32.toml").num_parameters() == 2113283);
  CHECK(build("configs/fmnist_sr3_7to28.toml").num_parameters() == 1520833);
}

TEST_CASE("checkpoint names are dotted paths through the blocks") {
  const UNet net = build("configs/fmnist_sr3_7to28.toml");
  const auto named = net.named_parameters();
  CHECK(named.front().first == "emb1.weight");
  bool has_attn = false, has_skip = false;
  for (const auto& [name, t] : named) {
    has_attn = has_attn || name == "down.6.attn.qkv.weight";
    has_skip = has_skip || name == "down.3.skip.weight";
  }
  CHECK(has_attn);  // level 2 (7x7) blocks are down.6 and down.7
  CHECK(has_skip);  // the first block of level 1 widens 32 -> 64
}

TEST_CASE("odd configurations give the right output shapes and every parameter a gradient") {
  struct Case {
    const char* name;
    std::vector<std::string> sets;
    int64_t size;
  };
  const std::vector<Case> cases = {
      {"plain", {}, 12},
      {"biggan resampling, skip rescale, scale-shift norm, 2 heads",
       {"model.resblock_updown=true", "model.skip_rescale=true", "model.scale_shift_norm=true",
        "model.attention_heads=2", "model.attention_resolutions=6,3"},
       12},
      {"class and augmentation embeddings, log-snr, dropout",
       {"model.num_classes=3", "model.aug_embedding=true", "model.noise_embedding=log_snr", "model.dropout=0.1"},
       12},
      {"one level, no attention", {"model.channel_mults=2", "model.attention_resolutions=", "model.resolution=5"}, 5},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Config cfg;
    for (const char* s : {"model.resolution=12", "model.in_channels=3", "model.out_channels=2",
                          "model.base_channels=8", "model.channel_mults=1,2,2", "model.num_res_blocks=1",
                          "model.attention_resolutions=3", "model.norm_groups=4"})
      cfg.set(s);
    for (const auto& s : c.sets) cfg.set(s);
    Generator init(1);
    UNet net(UNetConfig::from_config(cfg), init);
    Generator data(2);
    const Tensor x = randn({2, c.size, c.size, 3}, data);
    const Tensor gamma = Tensor::from_vector(std::vector<float>{0.3f, 0.9f}, {2});
    Tensor labels, aug;
    if (net.config().num_classes > 0) labels = Tensor::from_vector(std::vector<int64_t>{0, 3}, {2});
    if (net.config().aug_embedding) aug = Tensor::from_vector(std::vector<float>{0.1f, 0.0f}, {2});
    Generator rng(3);
    const Tensor y = net.forward(x, gamma, labels, aug, &rng);
    CHECK(y.shape() == Shape{2, c.size, c.size, 2});
    sum(mul(y, y)).backward();
    for (const auto& [name, p] : net.named_parameters()) {
      CAPTURE(name);
      REQUIRE(p.grad().defined());
    }
  }
}

TEST_CASE("eval mode is deterministic and the embedding sees the noise level") {
  // Without zero_init: a zero-initialised network outputs 0 whatever the level.
  UNet net = build("configs/fmnist_sr3_7to28.toml", 0, {"model.zero_init=false"});
  net.eval();
  Generator g(5);
  const Tensor x = randn({2, 28, 28, 2}, g);
  const Tensor g1 = Tensor::from_vector(std::vector<float>{0.5f, 0.5f}, {2});
  const Tensor g2 = Tensor::from_vector(std::vector<float>{0.5f, 0.6f}, {2});
  NoGradGuard ng;
  const Tensor a = net.forward(x, g1), b = net.forward(x, g1), c = net.forward(x, g2);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(iris::test::max_abs_diff(a.slice(0, 0, 1), c.slice(0, 0, 1)) == 0.0);  // sample 0 unchanged
  CHECK(iris::test::max_abs_diff(a.slice(0, 1, 2), c.slice(0, 1, 2)) > 1e-6);   // sample 1 sees its level
}

TEST_CASE("sinusoidal embedding matches its formula") {
  const Tensor v = Tensor::from_vector(std::vector<float>{0.0f, 3.0f}, {2});
  const auto e = sinusoidal_embedding(v, 8).to_vector<double>();
  for (int k = 0; k < 4; ++k) {
    const double f = std::exp(-std::log(10000.0) * k / 4.0);
    CHECK(e[8 + k] == doctest::Approx(std::sin(3.0 * f)).epsilon(1e-6));  // row 1: sin half, then cos half
    CHECK(e[8 + 4 + k] == doctest::Approx(std::cos(3.0 * f)).epsilon(1e-6));
    CHECK(e[k] == 0.0);  // row 0 (level 0): sin 0, cos 1
    CHECK(e[4 + k] == 1.0);
  }
}

TEST_CASE("U-Net misuse errors") {
  Config cfg;
  cfg.set("model.norm_groups=5");
  check_throws_with([&] { (void)UNetConfig::from_config(cfg); }, {"norm_groups", "divisible"});
  Config odd;
  odd.set("model.resolution=14");
  odd.set("model.channel_mults=1,2,2");
  check_throws_with([&] { (void)UNetConfig::from_config(odd); }, {"model.resolution 14", "halved"});
  UNet net = build("configs/fmnist_sr3_7to28.toml");
  Generator g(1);
  check_throws_with(
      [&] {
        (void)net.forward(randn({1, 28, 28, 3}, g), Tensor::ones({1}));
      },
      {"UNet", "[N, H, W, 2]", "f32[1, 28, 28, 3]"});
  // Any size the downsampling divides (any-size inference, diffusion/tiling.h); others are named.
  CHECK(net.forward(randn({1, 12, 36, 2}, g), Tensor::ones({1})).shape() == Shape{1, 12, 36, 1});
  check_throws_with(
      [&] {
        (void)net.forward(randn({1, 30, 28, 2}, g), Tensor::ones({1}));
      },
      {"UNet", "multiples of 4", "built for 28x28", "f32[1, 30, 28, 2]"});
}

TEST_CASE("the summary covers every parameter and counts the benchmark's FLOPs") {
  const UNet net = build("configs/sr3_bench_128.toml");
  int64_t params = 0;
  for (const auto& b : net.summary()) params += b.params;
  CHECK(params == net.num_parameters());
  // tools/bench/SR3_BENCH.md: 8.862e12 FLOPs per training step at batch 32 (277 GFLOP per image).
  CHECK(net.train_flops_per_sample() * 32 == doctest::Approx(8.862e12).epsilon(2e-4));
  const UNet small = build("configs/fmnist_sr3_7to28.toml");
  int64_t small_params = 0;
  for (const auto& b : small.summary()) small_params += b.params;
  CHECK(small_params == small.num_parameters());
}

TEST_CASE("zero_init starts every residual branch, attention projection and the head at zero") {
  Config c = Config::load("configs/fmnist_sr3_7to28.toml");
  c.set("model.zero_init=false");
  Generator g0(3), g1(3);
  const UNet plain(UNetConfig::from_config(c), g0);
  c.set("model.zero_init=true");
  const UNet zeroed(UNetConfig::from_config(c), g1);
  const auto a = plain.named_parameters(), b = zeroed.named_parameters();
  REQUIRE(a.size() == b.size());
  const auto is_zeroed_name = [](const std::string& n) {
    return n.find(".conv2.") != std::string::npos || n.find(".attn.proj.") != std::string::npos ||
           n.rfind("out_conv.", 0) == 0;
  };
  int zeroed_count = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].first);
    const double abs_sum = sum(abs(b[i].second)).item();
    if (is_zeroed_name(a[i].first)) {
      ++zeroed_count;
      CHECK(abs_sum == 0.0);
      if (a[i].first.find(".bias") == std::string::npos) CHECK(sum(abs(a[i].second)).item() > 0.0);
    } else {
      // Every other tensor is drawn exactly as without zero_init (the generator is consumed the same way).
      CHECK(max(abs(sub(a[i].second, b[i].second))).item() == 0.0);
    }
  }
  // Weight and bias of: 17 res blocks' conv2 (6 down, 2 mid, 9 up), 6 attention projections (the 7x7 level's 2
  // down and 3 up blocks, mid1) and the head.
  CHECK(zeroed_count == 2 * 17 + 2 * 6 + 2);
  // The network's first output is exactly zero.
  Generator data(5);
  const Tensor x = rand({2, 28, 28, 2}, data, DType::f32, Device::cpu(), -1, 1);
  const Tensor level = Tensor::full({2}, 0.5, DType::f32, Device::cpu());
  CHECK(max(abs(zeroed.forward(x, level))).item() == 0.0);
}
