// max_pool2d, avg_pool2d and resize_bilinear: float64 reference loops written from PyTorch's definitions
// (independent of the kernels' code), gradcheck, non-contiguous inputs, the FID Inception geometries
// (3x3 stride 2; 3x3 stride 1 pad 1 with and without counting the padding; resizing to 299), and misuse.
#include <cmath>

#include "framework/ops/pool.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

struct Geometry {
  int64_t kh, kw, sh, sw, ph, pw;
};

// Pools x [N, H, W, C] (f64); `avg`: the mean, dividing by kh*kw (include_pad) or the count inside.
Tensor reference_pool(const Tensor& x, const Geometry& g, bool avg, bool include_pad) {
  const Shape& s = x.shape();
  const auto v = x.to_vector<double>();
  const int64_t N = s[0], H = s[1], W = s[2], C = s[3];
  const int64_t Ho = (H + 2 * g.ph - g.kh) / g.sh + 1, Wo = (W + 2 * g.pw - g.kw) / g.sw + 1;
  std::vector<double> out;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ho = 0; ho < Ho; ++ho)
      for (int64_t wo = 0; wo < Wo; ++wo)
        for (int64_t c = 0; c < C; ++c) {
          double acc = avg ? 0.0 : -INFINITY;
          int64_t inside = 0;
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t y = ho * g.sh - g.ph + i, xx = wo * g.sw - g.pw + j;
              if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
              const double e = v[((n * H + y) * W + xx) * C + c];
              acc = avg ? acc + e : std::max(acc, e);
              ++inside;
            }
          out.push_back(avg ? acc / static_cast<double>(include_pad ? g.kh * g.kw : inside) : acc);
        }
  return Tensor::from_vector(out, {N, Ho, Wo, C});
}

// PyTorch's bilinear interpolation (align_corners = False) as a formula per output pixel.
Tensor reference_resize(const Tensor& x, int64_t Ho, int64_t Wo) {
  const Shape& s = x.shape();
  const auto v = x.to_vector<double>();
  const int64_t N = s[0], H = s[1], W = s[2], C = s[3];
  auto taps = [](int64_t o, int64_t in, int64_t out, int64_t& i0, int64_t& i1, double& l) {
    const double src = std::max(0.0, (o + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5);
    i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
    i1 = std::min<int64_t>(i0 + 1, in - 1);
    l = std::min(src - static_cast<double>(i0), 1.0);
  };
  std::vector<double> out;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < Ho; ++o)
      for (int64_t q = 0; q < Wo; ++q)
        for (int64_t c = 0; c < C; ++c) {
          int64_t y0, y1, x0, x1;
          double ly, lx;
          taps(o, H, Ho, y0, y1, ly);
          taps(q, W, Wo, x0, x1, lx);
          auto at = [&](int64_t y, int64_t xx) { return v[((n * H + y) * W + xx) * C + c]; };
          out.push_back((1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
                        ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)));
        }
  return Tensor::from_vector(out, {N, Ho, Wo, C});
}

const Geometry kGeometries[] = {
    {3, 3, 2, 2, 0, 0},  // Inception's max pools
    {3, 3, 1, 1, 1, 1},  // its branch pools
    {2, 3, 1, 2, 1, 1},  // asymmetric window and stride
    {1, 1, 1, 1, 0, 0},
};

}  // namespace

TEST_CASE("max_pool2d: reference (ties and padding) and gradcheck, contiguous and strided") {
  for (const Geometry& g : kGeometries)
    for (bool strided : {false, true}) {
      INFO(g.kh, "x", g.kw, " stride ", g.sh, ",", g.sw, " pad ", g.ph, ",", g.pw, " strided ", strided);
      Tensor x = randn({2, 9, 8, 3}, 11);
      if (strided) x = noncontiguous(x);
      check_close(max_pool2d(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}), reference_pool(x, g, false, false),
                  0, 0);
      x.set_requires_grad();  // random values: no ties, so the maximum is differentiable
      gradcheck(
          [&](const std::vector<Tensor>& in) {
            return max_pool2d(in[0], {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw});
          },
          {x});
    }
  // Ties: the gradient goes to the first maximum of each window only (PyTorch's rule) ...
  Tensor ones = Tensor::full({1, 3, 3, 1}, 1.0, DType::f64);
  ones.set_requires_grad();
  sum(max_pool2d(ones, {2, 2}, {1, 1})).backward();
  CHECK(ones.grad().to_vector<double>() == std::vector<double>{1, 1, 0, 1, 1, 0, 0, 0, 0});
  // ... and sums over the windows that chose the same element.
  Tensor peak = Tensor::from_vector<double>({0, 0, 0, 0, 1, 0, 0, 0, 0}, {1, 3, 3, 1});
  peak.set_requires_grad();
  sum(max_pool2d(peak, {2, 2}, {1, 1})).backward();
  CHECK(peak.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 0, 4, 0, 0, 0, 0});
}

TEST_CASE("avg_pool2d: reference with and without counting the padding, and gradcheck") {
  for (const Geometry& g : kGeometries)
    for (bool include_pad : {true, false})
      for (bool strided : {false, true}) {
        INFO(g.kh, "x", g.kw, " stride ", g.sh, ",", g.sw, " pad ", g.ph, ",", g.pw, " include_pad ",
             include_pad, " strided ", strided);
        Tensor x = randn({2, 7, 10, 3}, 12);
        if (strided) x = noncontiguous(x);
        auto f = [&](const Tensor& t) {
          return avg_pool2d(t, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, include_pad);
        };
        check_close(f(x), reference_pool(x, g, true, include_pad), 1e-15, 1e-14);
        x.set_requires_grad();
        gradcheck([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
      }
}

TEST_CASE("resize_bilinear: reference up and down, non-square, and gradcheck") {
  const std::vector<std::array<int64_t, 4>> cases = {
      {5, 7, 11, 9}, {21, 17, 299, 299}, {12, 10, 5, 7}, {1, 1, 3, 2}, {6, 6, 6, 6}};
  for (const auto& [H, W, Ho, Wo] : cases) {
    INFO(H, "x", W, " -> ", Ho, "x", Wo);
    Tensor x = randn({2, H, W, 3}, 13);
    check_close(resize_bilinear(x, Ho, Wo), reference_resize(x, Ho, Wo), 1e-13, 1e-12);
    check_close(resize_bilinear(noncontiguous(x), Ho, Wo), reference_resize(x, Ho, Wo), 1e-13, 1e-12);
    if (Ho * Wo < 1000) {
      x.set_requires_grad();
      gradcheck([&](const std::vector<Tensor>& in) { return resize_bilinear(in[0], Ho, Wo); }, {x});
    }
  }
  // The same size is the identity.
  const Tensor x = randn({1, 4, 5, 2}, 14);
  check_close(resize_bilinear(x, 4, 5), x, 0, 0);
}

TEST_CASE("pooling and resizing: f32 and bf16 against f64, and misuse named") {
  const Tensor x = randn({2, 13, 11, 5}, 15);
  for (DType dt : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dt));
    const double tol = dt == DType::f32 ? 1e-6 : 1e-2;
    const Tensor xd = x.to(dt);
    CHECK(rel_l2(max_pool2d(xd, {3, 3}, {2, 2}).to(DType::f64),
                 max_pool2d(xd.to(DType::f64), {3, 3}, {2, 2})) == 0);
    CHECK(rel_l2(avg_pool2d(xd, {3, 3}, {1, 1}, {1, 1}, false).to(DType::f64),
                 avg_pool2d(xd.to(DType::f64), {3, 3}, {1, 1}, {1, 1}, false)) < tol);
    CHECK(rel_l2(resize_bilinear(xd, 29, 23).to(DType::f64), resize_bilinear(xd.to(DType::f64), 29, 23)) <
          tol);
  }
  CHECK_THROWS_WITH(max_pool2d(randn({2, 3, 3}, 1), {3, 3}, {2, 2}),
                    doctest::Contains("max_pool2d: expected a 4-D"));
  CHECK_THROWS_WITH(avg_pool2d(x, {3, 3}, {1, 1}, {2, 2}), doctest::Contains("more than half the window"));
  CHECK_THROWS_WITH(max_pool2d(x, {15, 3}, {1, 1}), doctest::Contains("larger than the padded input"));
  CHECK_THROWS_WITH(resize_bilinear(x, 0, 4),
                    doctest::Contains("resize_bilinear: the output size must be positive"));
}
