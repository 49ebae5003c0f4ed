// PSNR, SSIM and consistency against values worked out by hand and against a direct double loop over every
// 11x11 window (the definition of Wang et al. 2004, written independently of the separable implementation).
#include <cmath>
#include <limits>

#include "data/metrics.h"
#include "data/resize.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;

namespace {

// Pseudo-random pixels (a fixed LCG), so the images have texture at every scale.
Image noise_image(int h, int w, int c, uint32_t seed) {
  Image im(h, w, c);
  uint32_t s = seed * 2654435761u + 12345u;
  for (auto& p : im.pixels) {
    s = s * 1664525u + 1013904223u;
    p = static_cast<uint8_t>(s >> 24);
  }
  return im;
}

// A blend of `a` with noise: a distorted version of it.
Image distort(const Image& a, uint32_t seed, double amount) {
  const Image n = noise_image(a.height, a.width, a.channels, seed);
  Image out = a;
  for (size_t i = 0; i < out.pixels.size(); ++i)
    out.pixels[i] = static_cast<uint8_t>(std::lround((1 - amount) * a.pixels[i] + amount * n.pixels[i]));
  return out;
}

// SSIM by definition: for every valid window position, the weighted moments with w(i, j) = g_i g_j summed
// directly over the 11x11 window, on 0..255 values with L = 255; the map mean per channel, then the channel
// mean.
double ssim_reference(const Image& a, const Image& b) {
  std::vector<double> g(11);
  double gs = 0;
  for (int k = 0; k < 11; ++k) gs += g[k] = std::exp(-(k - 5.0) * (k - 5.0) / (2 * 1.5 * 1.5));
  for (double& e : g) e /= gs;
  const double c1 = std::pow(0.01 * 255, 2), c2 = std::pow(0.03 * 255, 2);
  double total = 0;
  for (int ch = 0; ch < a.channels; ++ch) {
    double sum = 0;
    int count = 0;
    for (int y = 0; y + 11 <= a.height; ++y) {
      for (int x = 0; x + 11 <= a.width; ++x) {
        double ma = 0, mb = 0, maa = 0, mbb = 0, mab = 0;
        for (int i = 0; i < 11; ++i) {
          for (int j = 0; j < 11; ++j) {
            const double w = g[i] * g[j];
            const double va = a.at(y + i, x + j, ch), vb = b.at(y + i, x + j, ch);
            ma += w * va;
            mb += w * vb;
            maa += w * va * va;
            mbb += w * vb * vb;
            mab += w * va * vb;
          }
        }
        const double va = maa - ma * ma, vb = mbb - mb * mb, cov = mab - ma * mb;
        sum += (2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        ++count;
      }
    }
    total += sum / count;
  }
  return total / a.channels;
}

Image constant_image(int h, int w, int c, uint8_t v) {
  return Image(h, w, c, v);
}

}  // namespace

TEST_CASE("metrics: identical images have infinite PSNR and SSIM 1") {
  for (int c : {1, 3}) {
    const Image a = noise_image(17, 13, c, 1);
    CHECK(std::isinf(psnr(a, a)));
    CHECK(psnr(a, a) > 0);
    CHECK(ssim(a, a) == doctest::Approx(1.0).epsilon(1e-13));
    // The same through float tensors in [-1, 1].
    const Tensor x = images_to_tensor({a, a});
    for (double p : psnr(x, x)) CHECK(std::isinf(p));
    for (double s : ssim(x, x)) CHECK(s == doctest::Approx(1.0).epsilon(1e-13));
  }
}

TEST_CASE("metrics: PSNR of a constant offset") {
  // Every pixel off by 10 grey levels: MSE = 100, PSNR = 10 log10(255^2 / 100).
  Image truth = noise_image(9, 11, 3, 2);
  for (auto& p : truth.pixels) p = static_cast<uint8_t>(20 + p % 150);
  Image pred = truth;
  for (auto& p : pred.pixels) p = static_cast<uint8_t>(p + 10);
  const double want = 10 * std::log10(255.0 * 255.0 / 100.0);  // 28.1308...
  CHECK(psnr(pred, truth) == doctest::Approx(want).epsilon(1e-12));
  CHECK(psnr(truth, pred) == doctest::Approx(want).epsilon(1e-12));
  CHECK(mse01(pred, truth) == doctest::Approx(100.0 / (255.0 * 255.0)).epsilon(1e-12));

  // Floats in [-1, 1], MAX = 2: an offset of 0.1 gives MSE 0.01 and PSNR 10 log10(4 / 0.01).
  const Tensor x = uniform({2, 6, 5, 3}, 7, -0.8, 0.8);
  const Tensor y = add(x, 0.1);
  for (double p : psnr(y, x)) CHECK(p == doctest::Approx(10 * std::log10(400.0)).epsilon(1e-10));

  // Half the pixels exact, half off by 51: MSE = 51^2 / 2.
  Image half = truth;
  for (size_t i = 0; i < half.pixels.size(); i += 2)
    half.pixels[i] = static_cast<uint8_t>(half.pixels[i] + 51);
  const double n = static_cast<double>(half.pixels.size()), off = std::ceil(n / 2);
  CHECK(psnr(half, truth) ==
        doctest::Approx(10 * std::log10(255.0 * 255.0 / (51.0 * 51.0 * off / n))).epsilon(1e-12));
}

TEST_CASE("metrics: PSNR over a mask counts only the pixels it selects") {
  // Left half of every row off by 10 grey levels, right half off by 40 (all 3 channels).
  const Image truth = noise_image(6, 8, 3, 4);
  Image pred = truth;
  std::vector<uint8_t> left(6 * 8, 0), right(6 * 8, 0), all(6 * 8, 1), none(6 * 8, 0);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) {
      (x < 4 ? left : right)[y * 8 + x] = 1;
      for (int c = 0; c < 3; ++c) {
        const int v = truth.pixels[(y * 8 + x) * 3 + c];
        pred.pixels[(y * 8 + x) * 3 + c] =
            static_cast<uint8_t>(v > 127 ? v - (x < 4 ? 10 : 40) : v + (x < 4 ? 10 : 40));
      }
    }
  CHECK(psnr_where(pred, truth, left) ==
        doctest::Approx(10 * std::log10(255.0 * 255.0 / 100.0)).epsilon(1e-12));
  CHECK(psnr_where(pred, truth, right) ==
        doctest::Approx(10 * std::log10(255.0 * 255.0 / 1600.0)).epsilon(1e-12));
  CHECK(psnr_where(pred, truth, all) == doctest::Approx(psnr(pred, truth)).epsilon(1e-12));
  CHECK(std::isnan(psnr_where(pred, truth, none)));
  check_throws_with([&] { psnr_where(pred, truth, std::vector<uint8_t>(5, 1)); },
                    {"psnr_where", "5 entries for a 6x8 image"});
}

TEST_CASE("metrics: SSIM of two constant images is the luminance term") {
  // No variance anywhere: SSIM = (2 p q + C1) / (p^2 + q^2 + C1) with C1 = (0.01 * 255)^2.
  const double c1 = std::pow(0.01 * 255, 2);
  for (auto [p, q] : {std::pair<int, int>{100, 110}, {0, 255}, {30, 31}, {200, 120}}) {
    const Image a = constant_image(12, 14, 3, static_cast<uint8_t>(p)),
                b = constant_image(12, 14, 3, static_cast<uint8_t>(q));
    const double want = (2.0 * p * q + c1) / (1.0 * p * p + 1.0 * q * q + c1);
    CHECK(ssim(a, b) == doctest::Approx(want).epsilon(1e-12));
  }
  // A textured image shifted by a constant: the structure and contrast terms stay 1, so SSIM is the mean
  // luminance term, which is below 1 and above the worst case.
  Image a = noise_image(20, 20, 1, 5);
  for (auto& v : a.pixels) v = static_cast<uint8_t>(50 + v % 100);
  Image b = a;
  for (auto& v : b.pixels) v = static_cast<uint8_t>(v + 40);
  const double s = ssim(a, b);
  CHECK(s < 1.0);
  CHECK(s > 0.9);
  CHECK(s == doctest::Approx(ssim_reference(a, b)).epsilon(1e-12));
}

TEST_CASE("metrics: SSIM equals the windowed definition computed by a double loop") {
  // Odd sizes, grey and RGB, the smallest legal image (11x11: one window) and mild to strong distortions.
  struct Case {
    int h, w, c;
    double amount;
  };
  for (const Case& k :
       {Case{11, 11, 1, 0.3}, Case{13, 17, 3, 0.1}, Case{23, 12, 3, 0.6}, Case{16, 16, 1, 1.0}}) {
    CAPTURE(k.h);
    CAPTURE(k.w);
    CAPTURE(k.c);
    const Image a = noise_image(k.h, k.w, k.c, 11);
    const Image b = distort(a, 12, k.amount);
    const double want = ssim_reference(a, b);
    CHECK(ssim(a, b) == doctest::Approx(want).epsilon(1e-12));
    CHECK(ssim(b, a) == doctest::Approx(want).epsilon(1e-12));  // symmetric
    // Float tensors in [-1, 1] give the same value (computed on (x + 1) / 2 with L = 1); f64, so that the
    // conversion itself is exact to rounding.
    const Tensor ta = u8_to_float(stack_images({a}), DType::f64),
                 tb = u8_to_float(stack_images({b}), DType::f64);
    CHECK(ssim(ta, tb)[0] == doctest::Approx(want).epsilon(1e-11));
    CHECK(ssim(stack_images({a}), tb)[0] == doctest::Approx(want).epsilon(1e-11));  // mixed kinds
  }
  // More distortion, lower SSIM.
  const Image a = noise_image(32, 32, 3, 3);
  const double s1 = ssim(a, distort(a, 4, 0.1)), s2 = ssim(a, distort(a, 4, 0.4)),
               s3 = ssim(a, distort(a, 4, 0.8));
  CHECK(s1 < 1.0);
  CHECK(s2 < s1);
  CHECK(s3 < s2);
}

TEST_CASE("metrics: the SSIM window is the normalised 11-tap Gaussian with sigma 1.5") {
  const std::vector<double> g = ssim_gaussian_window();
  REQUIRE(g.size() == 11);
  double sum = 0;
  for (double e : g) sum += e;
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(g[5] / g[4] == doctest::Approx(std::exp(1.0 / (2 * 1.5 * 1.5))).epsilon(1e-14));
  CHECK(g[0] / g[5] == doctest::Approx(std::exp(-25.0 / (2 * 1.5 * 1.5))).epsilon(1e-14));
  CHECK(g[0] == g[10]);
}

TEST_CASE("metrics: batches give one value per image and match the single-image forms") {
  std::vector<Image> preds, truths;
  for (int i = 0; i < 3; ++i) {
    truths.push_back(noise_image(14, 12, 3, 20 + i));
    preds.push_back(distort(truths.back(), 30 + i, 0.2 * (i + 1)));
  }
  const Tensor p8 = stack_images(preds), t8 = stack_images(truths);
  const std::vector<double> ps = psnr(p8, t8), ss = ssim(p8, t8);
  REQUIRE(ps.size() == 3);
  REQUIRE(ss.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(ps[i] == doctest::Approx(psnr(preds[i], truths[i])).epsilon(1e-14));
    CHECK(ss[i] == doctest::Approx(ssim_reference(preds[i], truths[i])).epsilon(1e-12));
  }
  // [H, W, C] is one image; non-contiguous tensors are read correctly.
  CHECK(psnr(p8.select(0, 1), t8.select(0, 1))[0] == doctest::Approx(ps[1]).epsilon(1e-14));
  const Tensor pf = u8_to_float(p8, DType::f64), tf = u8_to_float(t8, DType::f64);
  const std::vector<double> ss_nc = ssim(noncontiguous(pf), noncontiguous(tf));
  for (size_t i = 0; i < 3; ++i) CHECK(ss_nc[i] == doctest::Approx(ss[i]).epsilon(1e-11));
  // f32 tensors (images_to_tensor) agree to f32 rounding.
  const std::vector<double> ss32 = ssim(images_to_tensor(preds), images_to_tensor(truths));
  for (size_t i = 0; i < 3; ++i) CHECK(ss32[i] == doctest::Approx(ss[i]).epsilon(1e-6));
}

TEST_CASE("metrics: consistency is the MSE of the downsampled output against the low-res input") {
  // A prediction whose bicubic downsampling is the low-res input exactly (in floats): consistency 0.
  const Tensor hr = uniform({2, 16, 16, 3}, 3, -1, 1);
  const Tensor lr = resize(hr, 4, 4, Filter::bicubic);
  for (double c : consistency(hr, lr)) CHECK(c < 1e-28);
  // Constant images: the downsampled prediction is the same constant; 8-bit levels 100 and 120 differ by
  // 20 / 255 in [0, 1] units.
  const Image pred = constant_image(28, 28, 1, 100), low = constant_image(7, 7, 1, 120);
  CHECK(consistency(pred, low) == doctest::Approx(std::pow(20.0 / 255.0, 2)).epsilon(1e-12));
  // Adding d to the low-res input of a float pair adds exactly (d / 2)^2 in [0, 1] units.
  const std::vector<double> shifted = consistency(hr, add(lr, 0.2));
  for (double c : shifted) CHECK(c == doctest::Approx(0.01).epsilon(1e-10));
  // 8-bit inputs: the rounding of the stored low-res image is all that remains (at most (0.5/255)^2).
  const Tensor hr8 = float_to_u8(hr),
               lr8 = float_to_u8(resize(u8_to_float(hr8, DType::f64), 4, 4, Filter::bicubic));
  for (double c : consistency(hr8, lr8)) {
    CHECK(c > 0);
    CHECK(c <= std::pow(0.5 / 255.0, 2) + 1e-18);
  }
}

TEST_CASE("metrics: results do not depend on the thread count") {
  const Image a = noise_image(64, 48, 3, 8), b = distort(a, 9, 0.3);
  const int threads = num_threads();
  set_num_threads(1);
  const double s1 = ssim(a, b), c1 = consistency(a, resize(b, 16, 12));
  set_num_threads(2);
  const double s2 = ssim(a, b), c2 = consistency(a, resize(b, 16, 12));
  set_num_threads(threads);
  CHECK(s1 == s2);
  CHECK(c1 == c2);
}

TEST_CASE("metrics: misuse names the metric and the shapes") {
  const Image a = noise_image(12, 12, 3, 1);
  check_throws_with([&] { (void)psnr(a, noise_image(12, 13, 3, 1)); },
                    {"psnr", "[1, 12, 12, 3]", "[1, 12, 13, 3]"});
  check_throws_with([&] { (void)ssim(a, noise_image(12, 12, 1, 1)); }, {"ssim", "differ"});
  check_throws_with([&] { (void)ssim(noise_image(7, 7, 1, 1), noise_image(7, 7, 1, 2)); },
                    {"ssim", "7x7", "11x11"});
  check_throws_with([&] { (void)consistency(noise_image(8, 8, 1, 1), noise_image(16, 16, 1, 1)); },
                    {"consistency", "larger"});
  check_throws_with(
      [&] {
        (void)psnr(Tensor::zeros({4, 4}), Tensor::zeros({4, 4}));
      },
      {"psnr", "[N, H, W, C]"});
  check_throws_with(
      [&] {
        (void)psnr(Tensor::zeros({1, 4, 4, 1}, DType::i32), Tensor::zeros({1, 4, 4, 1}));
      },
      {"psnr", "uint8"});
}
