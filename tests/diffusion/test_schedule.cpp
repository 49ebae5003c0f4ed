// Noise schedules: closed forms (linear, cosine), validation errors, respacing, sampling paths, level
// helpers and the piecewise-linear interpolation on host and on tensors.
#include <cmath>
#include <numbers>

#include "diffusion/schedule.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;

TEST_CASE("linear schedule: gamma is the cumulative product of 1 - beta") {
  const double b0 = 1e-4, b1 = 0.02;
  const int64_t T = 1000;
  const NoiseSchedule s = NoiseSchedule::linear(b0, b1, T);
  REQUIRE(s.T() == T);
  REQUIRE(s.gammas().size() == static_cast<size_t>(T + 1));
  CHECK(s.gamma(0) == 1.0);
  double prod = 1.0;
  for (int64_t t = 1; t <= T; ++t) {
    const double beta = b0 + (b1 - b0) * static_cast<double>(t - 1) / static_cast<double>(T - 1);
    prod *= 1.0 - beta;
    CHECK(s.beta(t) == doctest::Approx(beta).epsilon(1e-14));
    CHECK(s.alpha(t) == doctest::Approx(1.0 - beta).epsilon(1e-14));
    CHECK(s.gamma(t) == doctest::Approx(prod).epsilon(1e-13));
    CHECK(s.gamma(t) < s.gamma(t - 1));
    CHECK(s.gamma(t) / s.gamma(t - 1) == doctest::Approx(s.alpha(t)).epsilon(1e-12));
  }
  CHECK(s.beta(1) == b0);
  CHECK(s.beta(T) == doctest::Approx(b1).epsilon(1e-15));
  // The well-known end point of DDPM's schedule: γ_T ≈ 4.04e-5.
  CHECK(s.gamma(T) == doctest::Approx(4.0358e-5).epsilon(1e-3));
  const NoiseSchedule one = NoiseSchedule::linear(0.3, 0.7, 1);
  CHECK(one.T() == 1);
  CHECK(one.gamma(1) == doctest::Approx(0.7).epsilon(1e-15));
  check_throws_with([&] { (void)s.gamma(T + 1); }, {"NoiseSchedule::gamma", "1001"});
  check_throws_with([&] { (void)s.beta(0); }, {"NoiseSchedule::beta", "step 0"});
}

TEST_CASE("cosine schedule matches the Nichol-Dhariwal formula") {
  const int64_t T = 1000;
  const double off = 0.008;
  const NoiseSchedule s = NoiseSchedule::cosine(T);
  auto f = [&](double t) {
    const double c = std::cos((t / T + off) / (1 + off) * std::numbers::pi / 2);
    return c * c;
  };
  for (int64_t t : {1, 2, 10, 250, 500, 750, 990, 999}) {
    CAPTURE(t);
    CHECK(s.gamma(t) == doctest::Approx(f(t) / f(0)).epsilon(1e-12));
    CHECK(s.beta(t) == doctest::Approx(1 - f(t) / f(t - 1)).epsilon(1e-12));
  }
  // f(T) = 0, so the last β is clipped to 0.999 and γ_T = 0.001·γ_{T−1}.
  CHECK(s.beta(T) == 0.999);
  CHECK(s.gamma(T) == doctest::Approx(0.001 * s.gamma(T - 1)).epsilon(1e-12));
  for (int64_t t = 1; t <= T; ++t) CHECK(s.gamma(t) < s.gamma(t - 1));
  // A larger clip acts on more steps: with max_beta = 0.02 every late β is clipped.
  const NoiseSchedule c = NoiseSchedule::cosine(100, off, 0.02);
  CHECK(c.beta(100) == 0.02);
  CHECK(c.beta(1) < 0.02);
  check_throws_with([] { (void)NoiseSchedule::cosine(10, 0.008, 1.0); }, {"cosine", "max_beta", "1"});
  check_throws_with([] { (void)NoiseSchedule::cosine(0); }, {"cosine", "T must be >= 1"});
}

TEST_CASE("explicit gamma lists and validation errors name the bad value") {
  const NoiseSchedule s = NoiseSchedule::from_gammas({0.9, 0.5, 0.125});
  CHECK(s.T() == 3);
  CHECK(s.gamma(0) == 1.0);
  CHECK(s.gamma(2) == 0.5);
  CHECK(s.alpha(3) == doctest::Approx(0.25).epsilon(1e-15));
  CHECK(s.beta(1) == doctest::Approx(0.1).epsilon(1e-14));
  check_throws_with(
      [] {
        (void)NoiseSchedule::from_gammas({0.9, 0.95});
      },
      {"from_gammas", "gamma_2 = 0.95", "gamma_1 = 0.9", "strictly decrease"});
  check_throws_with([] { (void)NoiseSchedule::from_gammas({1.0, 0.5}); }, {"gamma_1 = 1", "implicit"});
  check_throws_with([] { (void)NoiseSchedule::from_gammas({1.25}); }, {"gamma_1 = 1.25"});
  check_throws_with([] { (void)NoiseSchedule::from_gammas({0.5, 0.0}); }, {"gamma_2 = 0", "(0, 1)"});
  check_throws_with([] { (void)NoiseSchedule::from_gammas({0.5, -0.1}); }, {"gamma_2 = -0.1"});
  check_throws_with([] { (void)NoiseSchedule::from_gammas({0.5, std::nan("")}); }, {"gamma_2 = nan"});
  check_throws_with([] { (void)NoiseSchedule::from_gammas({}); }, {"from_gammas", "T >= 1"});
  check_throws_with([] { (void)NoiseSchedule::linear(1e-4, 1.5, 10); },
                    {"linear", "beta_7 = 1.00003", "(0, 1)"});
  check_throws_with([] { (void)NoiseSchedule::linear(0.0, 0.02, 10); }, {"linear", "beta_1 = 0"});
  // β close to 1 over many steps underflows γ to 0: reported, not silently accepted.
  check_throws_with([] { (void)NoiseSchedule::linear(0.9, 0.9, 400); }, {"linear", "= 0", "(0, 1)"});
}

TEST_CASE("respacing and sampling paths") {
  const NoiseSchedule s = NoiseSchedule::linear(1e-4, 0.02, 1000);
  const NoiseSchedule r = s.respaced(8);
  REQUIRE(r.T() == 8);
  for (int64_t k = 1; k <= 8; ++k) CHECK(r.gamma(k) == s.gamma(125 * k));
  // Respaced β are the one-step noises between the kept levels.
  CHECK(r.beta(2) == doctest::Approx(1 - s.gamma(250) / s.gamma(125)).epsilon(1e-12));
  const NoiseSchedule odd = s.respaced(3);  // t = round(1000/3) = 333, 667, 1000
  CHECK(odd.gamma(1) == s.gamma(333));
  CHECK(odd.gamma(2) == s.gamma(667));
  CHECK(odd.gamma(3) == s.gamma(1000));
  CHECK(s.respaced(1000).gammas() == s.gammas());
  check_throws_with([&] { (void)s.respaced(1001); }, {"respaced", "1..T = 1000", "1001"});

  const std::vector<double> p = r.sampling_path();
  REQUIRE(p.size() == 9);
  CHECK(p.front() == r.gamma(8));
  CHECK(p[3] == r.gamma(5));
  CHECK(p.back() == 1.0);
  CHECK_NOTHROW(check_path(p, "test"));

  const std::vector<double> sub = sub_path(p, 0.05, 0.6);
  REQUIRE(sub.front() == 0.05);
  REQUIRE(sub.back() == 0.6);
  for (size_t i = 1; i + 1 < sub.size(); ++i) {
    CHECK(sub[i] > 0.05);
    CHECK(sub[i] < 0.6);
    CHECK(std::find(p.begin(), p.end(), sub[i]) != p.end());
  }
  size_t inside = 0;
  for (double g : p) inside += g > 0.05 && g < 0.6;
  CHECK(sub.size() == inside + 2);
  check_throws_with([&] { (void)sub_path(p, 0.6, 0.05); }, {"sub_path", "start_gamma = 0.6"});
  check_throws_with([] { check_path({0.5}, "who"); }, {"who", "at least 2"});
  check_throws_with(
      [] {
        check_path({0.1, 0.3, 0.2, 1.0}, "who");
      },
      {"who", "level 2 = 0.2", "level 1 = 0.3"});
  check_throws_with([] { check_path({0.0, 1.0}, "who"); }, {"who", "level 0 = 0"});
  check_throws_with([] { check_path({0.1, 1.5}, "who"); }, {"who", "1.5", "above 1"});
}

TEST_CASE("SNR, log-SNR and noise scale helpers") {
  CHECK(snr(0.2) == doctest::Approx(0.25).epsilon(1e-15));
  CHECK(log_snr(0.5) == 0.0);
  CHECK(half_log_snr(0.8) == doctest::Approx(0.5 * std::log(4.0)).epsilon(1e-14));
  CHECK(signal_scale(0.64) == doctest::Approx(0.8).epsilon(1e-15));
  CHECK(noise_scale(0.64) == doctest::Approx(0.6).epsilon(1e-15));
  // (Above λ ≈ 15, γ = 1 − e^{−λ} is too close to 1 for a double to keep 1 − γ to 1e-9.)
  for (double l : {-40.0, -7.5, -0.3, 0.0, 2.0, 12.0}) {
    const double g = gamma_from_log_snr(l);
    CHECK(g > 0.0);
    CHECK(log_snr(g) == doctest::Approx(l).epsilon(1e-9));
  }
  CHECK(std::isinf(log_snr(1.0)));
  const Tensor g = Tensor::from_vector(std::vector<double>{1e-6, 0.1, 0.5, 0.9, 0.999999}, {5});
  const auto vs = snr(g).to_vector<double>(), vl = log_snr(g).to_vector<double>();
  const auto vg = g.to_vector<double>();
  for (size_t i = 0; i < vg.size(); ++i) {
    CHECK(vs[i] == doctest::Approx(snr(vg[i])).epsilon(1e-12));
    CHECK(vl[i] == doctest::Approx(log_snr(vg[i])).epsilon(1e-9));
  }
}

TEST_CASE("gamma_at interpolates between steps, on the host and on tensors") {
  const NoiseSchedule s = NoiseSchedule::cosine(1000);
  for (int64_t t : {0, 1, 37, 500, 999, 1000}) CHECK(s.gamma_at(static_cast<double>(t)) == s.gamma(t));
  CHECK(s.gamma_at(41.5) == doctest::Approx(0.5 * (s.gamma(41) + s.gamma(42))).epsilon(1e-14));
  CHECK(s.gamma_at(41.25) == doctest::Approx(0.75 * s.gamma(41) + 0.25 * s.gamma(42)).epsilon(1e-14));
  check_throws_with([&] { (void)s.gamma_at(1000.5); }, {"gamma_at", "1000.5"});

  // 5000 rows exceed one lookup chunk (2^22 / T = 4194 rows), so the chunked path is covered too.
  std::vector<double> steps = uniform({5000}, 5, 0.0, 1000.0).to_vector<double>();
  steps[0] = 0.0;
  steps[1] = 1000.0;
  steps[2] = 1.0;
  steps[3] = 999.0;
  steps[4] = 0.999999;
  const Tensor st = Tensor::from_vector(steps, {50, 100});
  const Tensor g64 = s.gamma_at(st);
  REQUIRE(g64.shape() == Shape{50, 100});
  const auto v = g64.to_vector<double>();
  for (size_t i = 0; i < steps.size(); ++i) {
    const double want = s.gamma_at(steps[i]);
    if (std::abs(v[i] - want) > 1e-15 * std::max(want, 1e-300) + 1e-17) {
      FAIL_CHECK("gamma_at(tensor) differs at step ", steps[i], ": ", v[i], " vs ", want);
      break;
    }
  }
  const auto s32 = s.step_of(st.to(DType::f32)).to_vector<double>();
  for (size_t i = 0; i < 5; ++i) CHECK(s32[i] == (std::array<double, 5>{1, 1000, 2, 1000, 1})[i]);
  const auto g32 = s.gamma_at(st.to(DType::f32)).to_vector<double>();
  for (size_t i = 0; i < steps.size(); ++i) {
    const double want = s.gamma_at(static_cast<double>(static_cast<float>(steps[i])));
    if (std::abs(g32[i] - want) > 1e-6 * want + 1e-9) {
      FAIL_CHECK("f32 gamma_at differs at step ", steps[i], ": ", g32[i], " vs ", want);
      break;
    }
  }
  // Out-of-range steps are clamped to [0, T].
  const auto clamped =
      s.gamma_at(Tensor::from_vector(std::vector<double>{-3.0, 2000.0}, {2})).to_vector<double>();
  CHECK(clamped[0] == 1.0);
  CHECK(clamped[1] == s.gamma(1000));
}
