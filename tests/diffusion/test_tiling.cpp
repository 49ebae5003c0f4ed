// Any-size and tiled inference (diffusion/tiling.h): reflection padding and cropping, window layouts, blend
// weights, option errors, the tiled denoiser against the whole-image network (bit for bit with one window;
// close for a network whose receptive field fits inside the overlap), and SR stages and cascades sampling
// inputs of any size.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "diffusion/cascade.h"
#include "diffusion/stage.h"
#include "diffusion/tiling.h"
#include "framework/ops/pool.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::diffusion;
using iris::test::check_throws_with;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.cpu().contiguous(), cb = b.cpu().contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

double max_diff(const Tensor& a, const Tensor& b) {
  return max(abs(sub(a, b))).item();
}

// A network with a 3x3 receptive field (radius 1): the mean of x_t's 3x3 neighbourhood (zeros outside the
// window it is given) plus a tenth of the condition.
Tensor local_net(const Tensor& x, const Tensor&, const Tensor& cond) {
  const Tensor blur = avg_pool2d(x, {3, 3}, {1, 1}, {1, 1});
  return cond.defined() ? add(blur, mul(cond, 0.1)) : blur;
}

Config tiny_sr(int64_t lowres, int64_t res) {
  Config c;
  for (const std::string s :
       {"model.task=sr3", "model.in_channels=2", "model.out_channels=1", "model.base_channels=8",
        "model.channel_mults=1,2,2", "model.num_res_blocks=1", "model.attention_resolutions=4",
        "model.norm_groups=4", "data.channels=1", "diffusion.timesteps=200", "diffusion.sampler=ddpm",
        "diffusion.sample_steps=4", "diffusion.sample_schedule=cosine"})
    c.set(s);
  c.set("model.resolution=" + std::to_string(res));
  c.set("data.image_size=" + std::to_string(res));
  c.set("data.lowres_size=" + std::to_string(lowres));
  return c;
}

}  // namespace

TEST_CASE("pad_reflect mirrors the last rows and columns, folding when needed, and crop takes them back") {
  CHECK(round_up(10, 4) == 12);
  CHECK(round_up(12, 4) == 12);
  CHECK(round_up(0, 8) == 0);
  // Rows 0 1 2 (values 0..5, two columns): padded to 8 rows they continue 1 0 1 2 1 (mirrored about row 2,
  // then folded back), the columns 0 1 continue 0 1 0.
  const Tensor x = Tensor::arange(6, DType::f32).reshape({1, 3, 2, 1});
  const Tensor p = pad_reflect(x, 8, 5);
  REQUIRE(p.shape() == Shape{1, 8, 5, 1});
  const std::vector<int> rows{0, 1, 2, 1, 0, 1, 2, 1}, cols{0, 1, 0, 1, 0};
  const auto v = p.contiguous().to_vector<float>();
  for (int y = 0; y < 8; ++y)
    for (int c = 0; c < 5; ++c) CHECK(v[y * 5 + c] == static_cast<float>(rows[y] * 2 + cols[c]));
  CHECK(same_bits(crop(p, 3, 2), x));
  CHECK(pad_reflect(x, 3, 2).same(x));  // nothing to pad: the tensor itself
  CHECK(crop(x, 3, 2).same(x));
  // A one-pixel image repeats its pixel.
  const Tensor one = Tensor::full({2, 1, 1, 3}, 0.25, DType::f32);
  CHECK(max_diff(pad_reflect(one, 4, 4), Tensor::full({2, 4, 4, 3}, 0.25, DType::f32)) == 0.0);
  check_throws_with([&] { pad_reflect(x, 2, 2); }, {"pad_reflect", "no larger than 2x2"});
  check_throws_with([&] { crop(x, 4, 2); }, {"crop: cannot take 4x2"});
}

TEST_CASE("a tile layout covers the axis with windows on multiples of the downsampling, overlapping enough") {
  int layouts = 0;
  for (int64_t m : {1, 2, 4, 8})
    for (int64_t size = m; size <= 160; size += m)
      for (int64_t tile = m; tile <= 64; tile += m)
        for (int64_t overlap = 0; overlap < tile; overlap += m) {
          CAPTURE(m);
          CAPTURE(size);
          CAPTURE(tile);
          CAPTURE(overlap);
          const TileAxis a = tile_axis(size, tile, overlap, m);
          ++layouts;
          REQUIRE(a.count() >= 1);
          REQUIRE(a.weights.size() == a.count());
          CHECK(a.starts.front() == 0);
          CHECK(a.starts.back() + a.tile == size);
          if (tile >= size) {
            CHECK(a.count() == 1);
            CHECK(a.tile == size);
            continue;
          }
          CHECK(a.tile == tile);
          // As few windows as the overlap allows: ceil((size - tile) / (tile - overlap)) + 1.
          CHECK(static_cast<int64_t>(a.count()) ==
                (size - tile + (tile - overlap) - 1) / (tile - overlap) + 1);
          for (size_t k = 0; k < a.count(); ++k) {
            CHECK(a.starts[k] % m == 0);
            if (k + 1 < a.count()) {
              CHECK(a.starts[k + 1] > a.starts[k]);
              CHECK(a.starts[k] + a.tile - a.starts[k + 1] >= overlap);  // also: no gap
            }
          }
        }
  CHECK(layouts > 1000);
  const TileAxis whole = tile_axis(24, 0, 0, 4);
  CHECK(whole.count() == 1);
  CHECK(whole.tile == 24);
}

TEST_CASE("blend weights are positive, taper towards inner window edges and sum to one at every pixel") {
  for (auto [size, tile, overlap] : std::vector<std::array<int64_t, 3>>{
           {40, 16, 8}, {100, 24, 8}, {64, 32, 0}, {36, 16, 12}, {200, 64, 16}, {20, 8, 4}}) {
    CAPTURE(size);
    CAPTURE(tile);
    CAPTURE(overlap);
    const TileAxis a = tile_axis(size, tile, overlap, 4);
    std::vector<double> total(static_cast<size_t>(size), 0.0);
    for (size_t k = 0; k < a.count(); ++k)
      for (int64_t p = 0; p < a.tile; ++p) {
        CHECK(a.weights[k][p] > 0.0);
        total[a.starts[k] + p] += a.weights[k][p];
      }
    for (double t : total) CHECK(t == doctest::Approx(1.0).epsilon(1e-12));
    // The image's own edges are not inner edges: the first pixel belongs to the first window alone.
    CHECK(a.weights.front().front() == 1.0);
    CHECK(a.weights.back().back() == 1.0);
    if (overlap > 0) {
      // Inside an overlap the later window rises from its edge on (and the earlier one falls).
      const auto& second = a.weights[1];
      CHECK(second[0] < second[overlap / 2]);
      CHECK(a.weights[0][a.tile - 1] < a.weights[0][a.tile - 1 - overlap / 2]);
    }
  }
  // In 2-D the weights are products: a network that predicts ones gives ones everywhere, whatever the tiling.
  const TilePlan plan = plan_tiles(37, 50, 4, 16, 8);
  CHECK(plan.rows.size == 40);
  CHECK(plan.cols.size == 52);
  const Denoiser ones = tiled_denoiser(
      [](const Tensor& x, const Tensor&, const Tensor&) { return Tensor::ones(x.shape(), DType::f32); },
      Tensor(), plan);
  const Tensor out = ones(Tensor::zeros({2, 37, 50, 3}, DType::f32), Tensor::ones({2}, DType::f32));
  CHECK(out.shape() == Shape{2, 37, 50, 3});
  CHECK(max_diff(out, Tensor::ones({2, 37, 50, 3}, DType::f32)) < 1e-6);
  // The coverage map counts the windows over each pixel of the image: 1 inside a window, more in the bands
  // where windows overlap (here up to 3 x 2: 13 units of 4 columns take windows of 4 units spaced 1 or 2).
  const Tensor coverage = tile_coverage(plan);
  REQUIRE(coverage.shape() == Shape{37, 50});
  const auto cover = coverage.to_vector<int32_t>();
  std::vector<int32_t> counted(cover.size(), 0);
  for (int64_t y0 : plan.rows.starts)
    for (int64_t x0 : plan.cols.starts)
      for (int64_t y = y0; y < std::min<int64_t>(y0 + plan.rows.tile, 37); ++y)
        for (int64_t x = x0; x < std::min<int64_t>(x0 + plan.cols.tile, 50); ++x) ++counted[y * 50 + x];
  CHECK(cover == counted);
  CHECK(cover[0] == 1);
  CHECK(*std::max_element(cover.begin(), cover.end()) == 6);
}

TEST_CASE("tiling options that cannot tile the network are refused with a clear message") {
  check_throws_with([] { check_tiling(16, 32, 4); }, {"--tile 16 must be larger than --tile-overlap 32"});
  check_throws_with([] { check_tiling(16, 16, 4); }, {"--tile 16 must be larger than --tile-overlap 16"});
  check_throws_with([] { check_tiling(30, 8, 4); },
                    {"--tile 30 must be a multiple of 4", "halves its input 2 times"});
  check_throws_with([] { check_tiling(32, 6, 4); }, {"--tile-overlap 6 must be a multiple of 4"});
  check_throws_with([] { check_tiling(-8, 0, 4); }, {"--tile must be positive"});
  check_throws_with([] { check_tiling(32, -4, 4); }, {"--tile-overlap must not be negative"});
  check_throws_with([] { check_tiling(0, 8, 4); }, {"--tile-overlap 8 needs --tile"});
  check_throws_with([] { plan_tiles(40, 40, 8, 20, 0); }, {"--tile 20 must be a multiple of 8"});
  CHECK_NOTHROW(check_tiling(0, 0, 8));
  CHECK_NOTHROW(check_tiling(64, 56, 8));
}

TEST_CASE("the tiled denoiser with one window is the network on the (padded) image, bit for bit") {
  const Tensor x = iris::test::randn({2, 24, 16, 1}, 1, DType::f32);
  const Tensor cond = iris::test::randn({2, 24, 16, 1}, 2, DType::f32);
  const Tensor gamma = Tensor::full({2}, 0.5, DType::f32);
  const Tensor whole = local_net(x, gamma, cond);
  for (int64_t tile : {0, 24, 32, 64}) {
    CAPTURE(tile);
    const Denoiser d = tiled_denoiser(local_net, cond, plan_tiles(24, 16, 4, tile, 0));
    CHECK(same_bits(d(x, gamma), whole));
  }
  // 22x14 is not a multiple of 4: the network runs on the reflection-padded 24x16 image, cropped back.
  const Tensor xs = x.slice(1, 0, 22).slice(2, 0, 14).contiguous();
  const Tensor cs = cond.slice(1, 0, 22).slice(2, 0, 14).contiguous();
  const Tensor padded = local_net(pad_reflect(xs, 24, 16), gamma, pad_reflect(cs, 24, 16));
  const Denoiser d = tiled_denoiser(local_net, cs, plan_tiles(22, 14, 4, 0, 0));
  CHECK(same_bits(d(xs, gamma), crop(padded, 22, 14)));
  check_throws_with([&] { d(x, gamma); }, {"built for 22x14 images"});
}

TEST_CASE(
    "tilings of a network whose receptive field fits in the overlap agree closely with the whole image") {
  const Tensor x = iris::test::randn({2, 40, 40, 1}, 3, DType::f32);
  const Tensor cond = iris::test::randn({2, 40, 40, 1}, 4, DType::f32);
  const Tensor gamma = Tensor::full({2}, 0.5, DType::f32);
  const Tensor whole = local_net(x, gamma, cond);
  auto tiled = [&](int64_t tile, int64_t overlap) {
    return tiled_denoiser(local_net, cond, plan_tiles(40, 40, 4, tile, overlap))(x, gamma);
  };
  // Pixels that one window covers lie at least the overlap (>= the receptive field) inside it: exact.
  for (auto [tile, overlap] : std::vector<std::pair<int64_t, int64_t>>{{16, 8}, {24, 8}, {12, 4}}) {
    CAPTURE(tile);
    CAPTURE(overlap);
    const TilePlan plan = plan_tiles(40, 40, 4, tile, overlap);
    const Tensor t = tiled(tile, overlap);
    const auto cover = tile_coverage(plan).to_vector<int32_t>();
    const auto tv = t.contiguous().to_vector<float>(), wv = whole.contiguous().to_vector<float>();
    int exact = 0, interior = 0;
    for (size_t i = 0; i < tv.size(); ++i)
      if (cover[i % cover.size()] == 1) {
        ++interior;
        exact += tv[i] == wv[i];
      }
    CHECK(interior > 0);
    CHECK(exact == interior);
    // In the seams only a window's outermost pixel is wrong (its zero padding), at a small weight.
    CHECK(max_diff(t, whole) < 0.12);
  }
  const double blended = max_diff(tiled(16, 8), tiled(24, 8));
  CHECK(blended < 0.05);
  // Without overlap the windows meet edge to edge (here exactly: 40 = 5 x 8) and their edge pixels are
  // wrong at full weight: the seams the blending removes.
  const double seams = max_diff(tiled(8, 0), whole);
  CHECK(seams > 0.3);
  CHECK(max_diff(tiled(16, 8), whole) < seams / 4);
}

TEST_CASE("sampling draws the same noise whatever the tiling: one window is bit-identical, others close") {
  const Tensor cond = iris::test::randn({2, 40, 40, 1}, 5, DType::f32);
  const std::vector<double> path{0.01, 0.2, 0.6, 0.9, 1.0};
  auto run = [&](const Denoiser& d, uint64_t seed) {
    Generator g = Generator::per_sample(seed, {7, 8});
    SamplerOptions opt;
    opt.clip_x0 = true;
    return ddpm_sample(d, path, {2, 40, 40, 1}, g, DdpmVariance::beta, opt);
  };
  const Denoiser plain = [&](const Tensor& x, const Tensor& g) { return local_net(x, g, cond); };
  const Tensor untiled = run(plain, 1);
  CHECK(same_bits(run(tiled_denoiser(local_net, cond, plan_tiles(40, 40, 4, 40, 0)), 1), untiled));
  const Tensor a = run(tiled_denoiser(local_net, cond, plan_tiles(40, 40, 4, 16, 8)), 1);
  const Tensor b = run(tiled_denoiser(local_net, cond, plan_tiles(40, 40, 4, 24, 12)), 1);
  const Tensor other_seed = run(plain, 2);
  const double ab = max_diff(a, b), a_whole = max_diff(a, untiled);
  CHECK(ab < 0.15);
  CHECK(a_whole < 0.15);
  // The same noise: the tilings are far closer to each other than two seeds are.
  CHECK(mean(abs(sub(a, b))).item() < mean(abs(sub(untiled, other_seed))).item() / 20);
}

TEST_CASE("the U-Net takes any multiple of its downsampling and names the size otherwise") {
  Generator init(0);
  Stage stage(tiny_sr(8, 16), init);
  CHECK(stage.net().config().downsampling() == 4);
  const Tensor x = iris::test::randn({1, 12, 20, 2}, 6, DType::f32);
  const Tensor out = stage.net().forward(x, Tensor::full({1}, 0.5, DType::f32));
  CHECK(out.shape() == Shape{1, 12, 20, 1});
  check_throws_with(
      [&] {
        stage.net().forward(iris::test::randn({1, 10, 12, 2}, 7, DType::f32),
                            Tensor::full({1}, 0.5, DType::f32));
      },
      {"multiples of 4", "built for 16x16"});
}

TEST_CASE("an SR stage super-resolves inputs of any size by its factor, tiled or not") {
  Generator init(0);
  auto stage = std::make_shared<Stage>(tiny_sr(8, 16), init);
  CHECK(stage->output_size(8, 8) == std::pair<int64_t, int64_t>{16, 16});
  CHECK(stage->output_size(5, 3) == std::pair<int64_t, int64_t>{10, 6});
  Generator init2(0);
  const Stage odd(tiny_sr(6, 16), init2);
  CHECK(odd.output_size(3, 9) == std::pair<int64_t, int64_t>{8, 24});
  check_throws_with([&] { odd.output_size(4, 6); }, {"4x6 input", "6->16", "multiples of 3"});

  SampleSettings s = stage->default_sample_settings();
  auto sample = [&](const Tensor& lowres, const SampleSettings& settings) {
    Generator g = Generator::per_sample(3, {0, 1});
    StageBatch b;
    b.lowres = lowres;
    return stage->sample(b, 0, g, settings);
  };
  // 5x3 -> 10x6, not a multiple of the downsampling 4: padded to 12x8 at every step.
  const Tensor small = sample(iris::test::uniform({2, 5, 3, 1}, 8, -1, 1, DType::f32), s);
  CHECK(small.shape() == Shape{2, 10, 6, 1});
  CHECK(std::isfinite(sum(small).item()));
  CHECK(max(abs(small)).item() <= 1.0);
  // At the trained size, one window (any tile at least the image) is the untiled path bit for bit.
  const Tensor lowres = iris::test::uniform({2, 8, 8, 1}, 9, -1, 1, DType::f32);
  const Tensor untiled = sample(lowres, s);
  for (int64_t tile : {16, 64}) {
    SampleSettings t = s;
    t.tile = tile;
    CHECK(same_bits(sample(lowres, t), untiled));
  }
  // Several windows: the same shape and a finite result (how close it is depends on the model; the
  // experiment tools/experiments/tiled_sr measures a trained one).
  SampleSettings t = s;
  t.tile = 16;
  t.tile_overlap = 8;
  const Tensor big = sample(iris::test::uniform({2, 12, 14, 1}, 10, -1, 1, DType::f32), t);
  CHECK(big.shape() == Shape{2, 24, 28, 1});
  CHECK(std::isfinite(sum(big).item()));

  // A regression stage the same way; a base stage refuses tiles.
  Config rc = tiny_sr(8, 16);
  rc.set("model.task=regression");
  rc.set("model.in_channels=1");
  Generator init3(0);
  const Stage reg(rc, init3);
  SampleSettings rs = reg.default_sample_settings();
  rs.tile = 8;
  rs.tile_overlap = 4;
  Generator g = Generator::per_sample(3, {0});
  StageBatch rb;
  rb.lowres = iris::test::uniform({1, 7, 9, 1}, 11, -1, 1, DType::f32);
  CHECK(reg.sample(rb, 0, g, rs).shape() == Shape{1, 14, 18, 1});
  Config bc = tiny_sr(8, 16);
  bc.set("model.task=base");
  bc.set("model.in_channels=1");
  Generator init4(0);
  const Stage base(bc, init4);
  SampleSettings bs = base.default_sample_settings();
  bs.tile = 8;
  check_throws_with([&] { base.sample({}, 1, g, bs); }, {"tiling (--tile) is for super-resolution stages"});
}

TEST_CASE("a cascade of any-size SR stages multiplies the input's size by each stage's factor") {
  Generator init(0);
  auto sr = std::make_shared<Stage>(tiny_sr(8, 16), init);
  Cascade fixed;
  fixed.add({sr, sr->default_sample_settings(), false});
  check_throws_with(
      [&] {
        fixed.add({sr, sr->default_sample_settings(), false});
      },
      {"expects 8x8 inputs but stage 0 produces 16x16", "--native-size"});
  Cascade any;
  any.add({sr, sr->default_sample_settings(), false, false});
  SampleSettings tiled = sr->default_sample_settings();
  tiled.tile = 16;
  tiled.tile_overlap = 8;
  any.add({sr, tiled, false, true});
  StageBatch in;
  in.lowres = iris::test::uniform({1, 6, 10, 1}, 12, -1, 1, DType::f32);
  Generator g = Generator::per_sample(1, {0});
  const auto outs = any.run(in, 0, g);
  REQUIRE(outs.size() == 2);
  CHECK(outs[0].shape() == Shape{1, 12, 20, 1});
  CHECK(outs[1].shape() == Shape{1, 24, 40, 1});
  CHECK(std::isfinite(sum(outs[1]).item()));
}
