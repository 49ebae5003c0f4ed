// Conditioning ops: the tensor resize equals the data pipeline's resize, blur kernels sum to one and keep
// constants, per-sample blur augmentation, gradients.
#include "data/resize.h"
#include "diffusion/condition.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::diffusion;
using namespace iris::test;

TEST_CASE("resize_tensor equals data::resize (bicubic and area, up and down)") {
  const Tensor x = randn({2, 7, 5, 3}, 1);
  for (auto f : {data::Filter::bicubic, data::Filter::area}) {
    check_close(resize_tensor(x, 28, 20, f), data::resize(x, 28, 20, f), 1e-12, 1e-12);
    check_close(resize_tensor(x, 3, 2, f), data::resize(x, 3, 2, f), 1e-12, 1e-12);
  }
  Tensor xg = randn({1, 3, 4, 2}, 2).set_requires_grad();
  gradcheck([](const std::vector<Tensor>& in) { return resize_tensor(in[0], 6, 8); }, {xg});
}

TEST_CASE("blur matrices: rows sum to one, constants stay constant, reflect padding, identity at sigma 0") {
  for (int64_t n : {1, 2, 5, 9}) {
    for (double sigma : {0.0, 0.4, 0.6, 2.0, 10.0}) {
      const auto m = blur_matrix(n, sigma);
      for (int64_t i = 0; i < n; ++i) {
        double s = 0;
        for (int64_t j = 0; j < n; ++j) {
          s += m[i * n + j];
          CHECK(m[i * n + j] >= 0);
        }
        CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
      }
    }
  }
  // sigma 0.5 at n = 5: row 0 reads pixel 1 twice (reflection of -1) and pixel 2 twice (of -2).
  const auto m = blur_matrix(5, 0.5);
  const double k1 = std::exp(-0.5 / 0.25), k2 = std::exp(-2.0 / 0.25), z = 1 + 2 * k1 + 2 * k2;
  CHECK(m[0] == doctest::Approx(1 / z));
  CHECK(m[1] == doctest::Approx(2 * k1 / z));
  CHECK(m[2] == doctest::Approx(2 * k2 / z));
  const Tensor c = Tensor::full({2, 6, 7, 3}, 0.37, DType::f64);
  check_close(gaussian_blur(c, {0.5, 1.7}), c, 1e-12, 0);
  const Tensor x = randn({2, 6, 7, 3}, 3);
  check_close(gaussian_blur(x, {0.0, 0.0}), x, 1e-12, 0);
}

TEST_CASE("blur augmentation: per-sample decisions from the sample's own stream") {
  const Tensor x = randn({6, 8, 8, 1}, 4);
  BlurAugment a;
  a.prob = 0.5;
  a.sigma_lo = 0.4;
  a.sigma_hi = 0.6;
  Generator g = Generator::per_sample(7, {10, 11, 12, 13, 14, 15});
  const Tensor y = blur_augment(x, a, g);
  int blurred = 0;
  for (int64_t i = 0; i < 6; ++i)
    if (max_abs_diff(y.slice(0, i, i + 1), x.slice(0, i, i + 1)) > 1e-9) ++blurred;
  CHECK(blurred > 0);
  CHECK(blurred < 6);
  // Sample 3 alone, from its own stream, gets the same treatment.
  Generator g3 = Generator::per_sample(7, {13});
  check_close(blur_augment(x.slice(0, 3, 4), a, g3), y.slice(0, 3, 4), 1e-12, 0);
  Generator none(1);
  BlurAugment off;
  CHECK(blur_augment(x, off, none).same(x));
  check_throws_with([&] { BlurAugment bad; bad.prob = 2; (void)blur_augment(x, bad, none); }, {"blur", "[0, 1]"});
}
