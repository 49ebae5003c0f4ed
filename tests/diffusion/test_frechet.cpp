// The Fréchet distance behind FID and Iris's classifier-feature distance: the eigensolver reconstructs its
// matrix, the distance matches closed forms (diagonal, commuting and 2x2 covariances), and the classifier-
// feature pipeline ranks a faithful sample set far closer to the real images than a collapsed or a noise one.
#include <doctest/doctest.h>

#include <cmath>

#include "diffusion/cas.h"
#include "diffusion/frechet.h"
#include "framework/core/philox.h"
#include "framework/iris.h"
#include "tests/common/test_util.h"
#include "tests/diffusion/cas_test_util.h"

using namespace iris;
using namespace iris::diffusion;
using namespace iris::test;

namespace {

double unit(uint64_t i) {
  return (philox::block(11, i, 0).v[0] / 4294967296.0) * 2 - 1;
}

// A random symmetric positive definite n x n matrix: B B^T + n I / 4.
std::vector<double> random_spd(int64_t n, uint64_t seed) {
  std::vector<double> b(static_cast<size_t>(n * n)), a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n * n; ++i) b[i] = unit(seed * 1000 + static_cast<uint64_t>(i));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < n; ++k) a[i * n + j] += b[i * n + k] * b[j * n + k];
      if (i == j) a[i * n + j] += static_cast<double>(n) / 4;
    }
  return a;
}

Gaussian gaussian(std::vector<double> mean, std::vector<double> cov) {
  Gaussian g;
  g.dim = static_cast<int64_t>(mean.size());
  g.mean = std::move(mean);
  g.cov = std::move(cov);
  return g;
}

}  // namespace

TEST_CASE("symmetric_eigen reconstructs the matrix with orthonormal vectors and ascending values") {
  const int64_t n = 7;
  const std::vector<double> a = random_spd(n, 1);
  std::vector<double> l, v;
  symmetric_eigen(a, n, l, v);
  for (int64_t i = 1; i < n; ++i) CHECK(l[i - 1] <= l[i]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double rec = 0, dot = 0;
      for (int64_t e = 0; e < n; ++e) {
        rec += v[i * n + e] * l[e] * v[j * n + e];
        dot += v[e * n + i] * v[e * n + j];
      }
      CHECK(rec == doctest::Approx(a[i * n + j]).epsilon(1e-12).scale(10));
      CHECK(dot == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-12).scale(1));
    }
}

TEST_CASE("symmetric_eigen above Jacobi's size (LAPACK's dsyevd, Inception's 2048 features) does the same") {
  const int64_t n = 300;
  const std::vector<double> a = random_spd(n, 3);
  std::vector<double> l, v;
  symmetric_eigen(a, n, l, v);
  for (int64_t i = 1; i < n; ++i) CHECK(l[i - 1] <= l[i]);
  // A V = V diag(l), column by column, and V^T V = I.
  double worst_res = 0, worst_orth = 0;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < n; ++i) {
      double av = 0, dot = 0;
      for (int64_t e = 0; e < n; ++e) {
        av += a[i * n + e] * v[e * n + j];
        dot += v[e * n + i] * v[e * n + j];
      }
      worst_res = std::max(worst_res, std::abs(av - l[j] * v[i * n + j]));
      worst_orth = std::max(worst_orth, std::abs(dot - (i == j ? 1.0 : 0.0)));
    }
  }
  CHECK(worst_res <= 1e-10 * l.back());
  CHECK(worst_orth <= 1e-12);
  // The distance of commuting (diagonal) covariances has a closed form at this size too.
  std::vector<double> ca(static_cast<size_t>(n * n), 0.0), cb = ca;
  double want = 0;
  for (int64_t i = 0; i < n; ++i) {
    ca[i * n + i] = 1.0 + 0.01 * static_cast<double>(i);
    cb[i * n + i] = 2.0 + 0.02 * static_cast<double>(i % 7);
    want += std::pow(std::sqrt(ca[i * n + i]) - std::sqrt(cb[i * n + i]), 2);
  }
  CHECK(frechet_distance(gaussian(std::vector<double>(n, 0.0), ca),
                         gaussian(std::vector<double>(n, 0.0), cb)) == doctest::Approx(want).epsilon(1e-10));
}

TEST_CASE("frechet_distance matches closed forms") {
  // Diagonal covariances: |dmu|^2 + sum (a + b - 2 sqrt(a b)).
  const Gaussian a = gaussian({1, 2, 3}, {4, 0, 0, 0, 1, 0, 0, 0, 9}),
                 b = gaussian({0, 2, 5}, {1, 0, 0, 0, 1, 0, 0, 0, 4});
  CHECK(frechet_distance(a, b) ==
        doctest::Approx(1 + 4 + (4 + 1 - 4) + (1 + 1 - 2) + (9 + 4 - 12)).epsilon(1e-12));
  CHECK(frechet_distance(a, a) == doctest::Approx(0).scale(1e-9));
  // 2x2, not commuting: tr sqrt(Sa Sb) = sqrt(tr(Sa Sb) + 2 sqrt(det Sa det Sb)) for a 2x2 product with
  // non-negative eigenvalues.
  const std::vector<double> sa = {2, 0.7, 0.7, 1}, sb = {1.5, -0.4, -0.4, 0.6};
  const double tr_ab = sa[0] * sb[0] + sa[1] * sb[2] + sa[2] * sb[1] + sa[3] * sb[3];
  const double det_a = sa[0] * sa[3] - sa[1] * sa[2], det_b = sb[0] * sb[3] - sb[1] * sb[2];
  const double expect =
      (0.3 * 0.3 + 0.5 * 0.5) + (2 + 1) + (1.5 + 0.6) - 2 * std::sqrt(tr_ab + 2 * std::sqrt(det_a * det_b));
  CHECK(frechet_distance(gaussian({0.3, 0}, sa), gaussian({0, -0.5}, sb)) ==
        doctest::Approx(expect).epsilon(1e-12));
  // Larger, commuting: Sa = Q diag(x) Q^T, Sb = Q diag(y) Q^T gives sum (x + y - 2 sqrt(x y)).
  const int64_t n = 6;
  std::vector<double> l, q;
  symmetric_eigen(random_spd(n, 2), n, l, q);
  std::vector<double> ca(static_cast<size_t>(n * n), 0.0), cb(static_cast<size_t>(n * n), 0.0);
  double closed = 0;
  for (int64_t e = 0; e < n; ++e) {
    const double x = 0.5 + e, y = 3.0 / (1 + e);
    closed += x + y - 2 * std::sqrt(x * y);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        ca[i * n + j] += x * q[i * n + e] * q[j * n + e];
        cb[i * n + j] += y * q[i * n + e] * q[j * n + e];
      }
  }
  CHECK(frechet_distance(gaussian(std::vector<double>(n, 0.0), ca),
                         gaussian(std::vector<double>(n, 0.0), cb)) ==
        doctest::Approx(closed).epsilon(1e-10));
  check_throws_with(
      [&] {
        (void)frechet_distance(a, gaussian({0, 0}, {1, 0, 0, 1}));
      },
      {"dimensions differ", "3", "2"});
}

TEST_CASE("fit_gaussian gives the sample mean and the unbiased covariance") {
  const Tensor x = Tensor::from_vector<double>({1, 2, 3, 6, 5, 1}, {3, 2});
  const Gaussian g = fit_gaussian(x);
  CHECK(g.mean == std::vector<double>{3, 3});
  // Deviations (-2, -1), (0, 3), (2, -2): sums of their products over N - 1 = 2.
  CHECK(g.cov == std::vector<double>{4, -1, -1, 7});
  check_throws_with(
      [&] {
        (void)fit_gaussian(Tensor::from_vector<double>({1, 2}, {1, 2}));
      },
      {"N >= 2", "[1, 2]"});
}

TEST_CASE("classifier Frechet distance: faithful samples are close to the real images, collapsed ones far") {
  const LabeledImages train = band_images(240, 8, 3, 1), real = band_images(150, 8, 3, 2);
  CasOptions o;
  o.steps = 80;
  o.batch_size = 32;
  o.width = 8;
  o.warmup_steps = 10;
  const FrechetResult good = classifier_frechet_distance(train, band_images(150, 8, 3, 3).images, real, o);
  // One class only (mode collapse), and uniform noise.
  LabeledImages one = band_images(450, 8, 3, 4);
  const Tensor collapsed = one.images.slice(0, 0, 450, 3).contiguous();
  const FrechetResult bad = classifier_frechet_distance(train, collapsed, real, o);
  const FrechetResult noise = classifier_frechet_distance(train, band_images(150, 8, 1, 5).images, real, o);
  MESSAGE("FD: faithful " << good.fd << " (floor " << good.reference_fd << "), one class " << bad.fd
                          << ", no bands " << noise.fd);
  CHECK(good.classifier_top1 >= 0.9);
  CHECK(good.feature_dim == 16);  // stages at 8x8 (width 8) and 4x4 (width 16)
  CHECK(good.reference_count == 150);
  CHECK(good.fd < 2 * good.reference_fd + 1e-3);
  CHECK(bad.fd > 5 * good.fd);
  CHECK(noise.fd > 5 * good.fd);
  // Reproducible.
  CHECK(classifier_frechet_distance(train, band_images(150, 8, 3, 3).images, real, o).fd == good.fd);
}
