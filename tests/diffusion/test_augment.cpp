// Gaussian-noise conditioning augmentation: the level distribution, γ_s from the schedule, the statistics of
// z_s given z and γ_s, the fixed-level form, per-sample streams and errors.
#include <cmath>

#include "diffusion/augment.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;

TEST_CASE("noise augmentation statistics match the forward process") {
  const NoiseSchedule schedule = NoiseSchedule::linear(1e-3, 0.05, 200);
  const int64_t N = 20000, D = 8;
  const double s_min = 20, s_max = 80;
  const Tensor z = randn({N, D}, 1, DType::f64);  // the clean conditioning image, any values
  Generator gen(2);
  const AugmentedCondition aug = noise_augment(z, schedule, s_min, s_max, gen);
  REQUIRE(aug.z.shape() == z.shape());
  REQUIRE(aug.gamma.shape() == Shape{N});
  REQUIRE(aug.s.shape() == Shape{N});
  CHECK(aug.gamma.dtype() == DType::f64);
  const auto s = aug.s.to_vector<double>(), g = aug.gamma.to_vector<double>();
  const auto zv = z.to_vector<double>(), zs = aug.z.to_vector<double>();

  // s ~ U[20, 80): mean 50 (standard error 60/√(12N) ≈ 0.12) and variance 60²/12 = 300 (standard error
  // 300·√(0.8/N) ≈ 1.9 for a uniform law); γ_s is the schedule's level at s.
  double sum = 0, sum2 = 0;
  bool in_range = true, level_ok = true;
  for (int64_t n = 0; n < N; ++n) {
    in_range = in_range && s[n] >= s_min && s[n] < s_max;
    level_ok = level_ok && std::abs(g[n] - schedule.gamma_at(s[n])) <= 1e-14;
    sum += s[n];
    sum2 += s[n] * s[n];
  }
  CHECK(in_range);
  CHECK(level_ok);
  const double mean = sum / N, var = sum2 / N - mean * mean;
  CHECK(std::abs(mean - 50) < 5 * 0.12);
  CHECK(std::abs(var - 300) < 5 * 1.9);

  // Given z and γ_s, r = (z_s − √γ_s·z)/√(1−γ_s) must be N(0, 1) (n = 160000: 5 standard errors are 0.0125
  // for the mean and 0.0177 for the variance), and uncorrelated with z. A wrong mixing (e.g. γ·z + (1−γ)·ε)
  // fails these: its r has mean (γ − √γ)/√(1−γ)·z ≠ 0 correlated with z, and variance (1−γ) ≠ 1.
  double r1 = 0, r2 = 0, rz = 0, zz = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < D; ++j) {
      const size_t i = static_cast<size_t>(n * D + j);
      const double r = (zs[i] - std::sqrt(g[n]) * zv[i]) / std::sqrt(1 - g[n]);
      r1 += r;
      r2 += r * r;
      rz += r * zv[i];
      zz += zv[i] * zv[i];
    }
  const double M = static_cast<double>(N * D), rm = r1 / M, rv = r2 / M - rm * rm;
  CHECK(std::abs(rm) < 5 / std::sqrt(M));
  CHECK(std::abs(rv - 1) < 5 * std::sqrt(2 / M));
  CHECK(std::abs(rz / std::sqrt(zz * M)) < 5 / std::sqrt(M));  // correlation of r with z
}

TEST_CASE("noise augmentation at a fixed level, s = 0 and per-sample streams") {
  const NoiseSchedule schedule = NoiseSchedule::cosine(1000);
  const Tensor z = randn({4, 2, 2, 3}, 3, DType::f32);
  Generator gen(4);
  const AugmentedCondition none = noise_augment_at(z, schedule, 0.0, gen);
  CHECK(none.gamma.to_vector<float>() == std::vector<float>(4, 1.0f));
  CHECK(none.z.to_vector<float>() == z.to_vector<float>());  // γ = 1: z_s = z exactly
  const AugmentedCondition at = noise_augment_at(z, schedule, 250.0, gen);
  CHECK(at.gamma.dtype() == DType::f32);
  for (float v : at.s.to_vector<float>()) CHECK(v == 250.0f);
  for (float v : at.gamma.to_vector<float>()) CHECK(v == doctest::Approx(schedule.gamma(250)).epsilon(1e-6));
  CHECK(max_abs_diff(at.z, z) > 0.01);

  // Sample 2 of a per-sample batch equals sample 2 drawn alone (its s and its noise).
  Generator batch = Generator::per_sample(8, {20, 21, 22, 23});
  const AugmentedCondition b = noise_augment(z, schedule, 10, 900, batch);
  Generator alone = Generator::per_sample(8, {22});
  const AugmentedCondition a = noise_augment(z.slice(0, 2, 3), schedule, 10, 900, alone);
  CHECK(b.s.to_vector<float>()[2] == a.s.to_vector<float>()[0]);
  CHECK(b.z.slice(0, 2, 3).to_vector<float>() == a.z.to_vector<float>());

  check_throws_with([&] { (void)noise_augment(z, schedule, 10, 1001, gen); },
                    {"noise_augment", "T = 1000", "s_max = 1001"});
  check_throws_with([&] { (void)noise_augment(z, schedule, 50, 10, gen); }, {"noise_augment", "s_min = 50"});
  check_throws_with([&] { (void)noise_augment_at(Tensor(), schedule, 1, gen); }, {"noise_augment_at", "z"});
}
