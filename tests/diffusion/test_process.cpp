// The forward process: SR3 training levels, q_sample by Monte Carlo, ε/x0/v conversions, and the posterior
// against Bayes' rule.
#include <cmath>

#include "diffusion/process.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;

namespace {
struct Moments {
  double mean = 0, var = 0;
};
Moments moments(const std::vector<double>& v, size_t begin, size_t end) {
  double s = 0, s2 = 0;
  for (size_t i = begin; i < end; ++i) s += v[i];
  const double n = static_cast<double>(end - begin), m = s / n;
  for (size_t i = begin; i < end; ++i) s2 += (v[i] - m) * (v[i] - m);
  return {m, s2 / (n - 1)};
}
}  // namespace

TEST_CASE("SR3 training levels land in their step and steps are uniform") {
  const int64_t T = 20, N = 100000;
  const NoiseSchedule s = NoiseSchedule::linear(1e-3, 0.2, T);
  Generator gen(123);
  const TrainingLevels lv = sample_training_levels(s, N, gen, Device::cpu(), DType::f64);
  REQUIRE(lv.t.dtype() == DType::i64);
  REQUIRE(lv.t.shape() == Shape{N});
  REQUIRE(lv.gamma.shape() == Shape{N});
  CHECK(gen.offset() == static_cast<uint64_t>(N / 2));  // one [N, 2] draw: 2N numbers, 4 per Philox block
  const auto t = lv.t.to_vector<int64_t>();
  const auto g = lv.gamma.to_vector<double>();
  std::vector<double> count(T + 1, 0.0);
  double pos_sum = 0;
  bool inside = true;
  for (int64_t i = 0; i < N; ++i) {
    REQUIRE((t[i] >= 1 && t[i] <= T));
    count[t[i]] += 1;
    const double hi = s.gamma(t[i] - 1), lo = s.gamma(t[i]);
    inside = inside && g[i] >= lo && g[i] < hi;
    pos_sum += (hi - g[i]) / (hi - lo);  // where in [γ_t, γ_{t−1}) the level fell: U(0, 1]
  }
  CHECK(inside);
  // χ² with T − 1 = 19 degrees of freedom: mean 19, sd √38 ≈ 6.2; 60 is ~6.6 sd above (p < 1e-6).
  double chi2 = 0;
  const double expected = static_cast<double>(N) / T;
  for (int64_t k = 1; k <= T; ++k) chi2 += (count[k] - expected) * (count[k] - expected) / expected;
  CHECK(chi2 < 60.0);
  // A histogram concentrated one step off (e.g. t ∈ 0..T−1) would leave a bin empty: all bins are filled.
  for (int64_t k = 1; k <= T; ++k) CHECK(count[k] > 0.8 * expected);
  // The position within the step is uniform: mean 1/2 with sd 1/√(12N) ≈ 0.0009.
  CHECK(std::abs(pos_sum / N - 0.5) < 0.005);

  // f32 levels stay in their step (up to f32 rounding of the table) and strictly below 1, even for a
  // schedule whose γ_1 is within a few f32 ulps of 1.
  const NoiseSchedule sr3 = NoiseSchedule::linear(1e-6, 1e-2, 2000);
  Generator g32(7);
  const TrainingLevels l32 = sample_training_levels(sr3, 5000, g32);
  CHECK(l32.gamma.dtype() == DType::f32);
  const auto t32 = l32.t.to_vector<int64_t>();
  const auto v32 = l32.gamma.to_vector<double>();
  for (size_t i = 0; i < v32.size(); ++i) {
    if (!(v32[i] < 1.0 && v32[i] >= sr3.gamma(t32[i]) * (1 - 1e-6) &&
          v32[i] <= sr3.gamma(t32[i] - 1) * (1 + 1e-6))) {
      FAIL_CHECK("f32 level ", v32[i], " outside step ", t32[i]);
      break;
    }
  }

  // γ_1 = 1 − 1e-8 rounds to 1 in f32: the levels of step 1 are clamped to the largest f32 below 1.
  const NoiseSchedule near_one = NoiseSchedule::from_gammas({1 - 1e-8, 0.5});
  Generator g1(3);
  const TrainingLevels l1 = sample_training_levels(near_one, 1000, g1);
  const auto t1 = l1.t.to_vector<int64_t>();
  const auto v1 = l1.gamma.to_vector<float>();
  int64_t at_top = 0;
  for (size_t i = 0; i < v1.size(); ++i) {
    CHECK(v1[i] < 1.0f);
    at_top += t1[i] == 1 && v1[i] == std::nextafter(1.0f, 0.0f);
  }
  CHECK(at_top > 300);  // about half the samples are in step 1

  // Per-sample streams: sample n's level does not depend on the batch it is drawn in.
  Generator batch = Generator::per_sample(5, {10, 11, 12});
  const TrainingLevels lb = sample_training_levels(s, 3, batch, Device::cpu(), DType::f64);
  Generator alone = Generator::per_sample(5, {11});
  const TrainingLevels la = sample_training_levels(s, 1, alone, Device::cpu(), DType::f64);
  CHECK(lb.gamma.to_vector<double>()[1] == la.gamma.to_vector<double>()[0]);
  CHECK(lb.t.to_vector<int64_t>()[1] == la.t.to_vector<int64_t>()[0]);
  check_throws_with([&] { (void)sample_training_levels(s, 0, gen); }, {"sample_training_levels", "N"});
  check_throws_with([&] { (void)sample_training_levels(s, 2, gen, Device::cpu(), DType::bf16); },
                    {"sample_training_levels", "bf16"});
}

TEST_CASE("q_sample mean and variance by Monte Carlo") {
  // 4 samples with different clean values and levels, M = 200000 noise draws each.
  const int64_t M = 200000;
  const std::vector<double> x0v = {-1.0, 0.3, 0.8, 2.0}, gv = {0.1, 0.5, 0.9, 0.99};
  std::vector<double> x0_full;
  for (double x : x0v) x0_full.insert(x0_full.end(), M, x);
  const Tensor x0 = Tensor::from_vector(x0_full, {4, M});
  const Tensor gamma = Tensor::from_vector(gv, {4});
  Generator gen(99);
  const Tensor eps = randn({4, M}, gen, DType::f64);
  const auto xt = q_sample(x0, gamma, eps).to_vector<double>();
  const auto ev = eps.to_vector<double>();
  // Mean √γ·x0 within 5 standard errors √((1−γ)/M); variance 1 − γ within 5 standard errors (1−γ)·√(2/M).
  // A wrong formula (e.g. γ·x0 + (1−γ)·ε, or √γ·x0 + (1−γ)·ε) misses the mean or the variance of some
  // sample by far more: the bounds below are checked to reject them.
  auto within = [&](const std::vector<double>& v, size_t i, double mean, double var) {
    const Moments m = moments(v, i * M, (i + 1) * M);
    const double se_m = std::sqrt(var / M), se_v = var * std::sqrt(2.0 / M);
    return std::abs(m.mean - mean) < 5 * se_m && std::abs(m.var - var) < 5 * se_v;
  };
  std::vector<double> wrong1(xt.size()), wrong2(xt.size());
  bool all_wrong1 = true, all_wrong2 = true;
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    const double want_mean = std::sqrt(gv[i]) * x0v[i], want_var = 1 - gv[i];
    CHECK(within(xt, i, want_mean, want_var));
    for (int64_t j = 0; j < M; ++j) {
      wrong1[i * M + j] = gv[i] * x0v[i] + (1 - gv[i]) * ev[i * M + j];
      wrong2[i * M + j] = std::sqrt(gv[i]) * x0v[i] + (1 - gv[i]) * ev[i * M + j];
    }
    all_wrong1 = all_wrong1 && within(wrong1, i, want_mean, want_var);
    all_wrong2 = all_wrong2 && within(wrong2, i, want_mean, want_var);
  }
  CHECK_FALSE(all_wrong1);
  CHECK_FALSE(all_wrong2);
  // Broadcasting over [N, H, W, C] and the gradient in x0 and eps.
  const Tensor a = randn({2, 3, 2, 3}, 1).set_requires_grad(), e = randn({2, 3, 2, 3}, 2).set_requires_grad();
  const Tensor g2 = Tensor::from_vector(std::vector<double>{0.3, 0.8}, {2});
  const auto out = q_sample(a, g2, e).to_vector<double>(), av = a.to_vector<double>(),
             ee = e.to_vector<double>();
  for (size_t i = 0; i < out.size(); ++i) {
    const double g = i < 18 ? 0.3 : 0.8;
    CHECK(out[i] == doctest::Approx(std::sqrt(g) * av[i] + std::sqrt(1 - g) * ee[i]).epsilon(1e-14));
  }
  gradcheck([&](const std::vector<Tensor>& in) { return q_sample(in[0], g2, in[1]); }, {a, e});
  check_throws_with([&] { (void)q_sample(a, Tensor::ones({3}, DType::f64), e); },
                    {"q_sample", "[3]", "[2, 3, 2, 3]"});
  check_throws_with([&] { (void)q_sample(a, g2, randn({2, 3}, 1)); }, {"q_sample", "eps"});
}

TEST_CASE("eps, x0 and v conversions are inverse to each other") {
  const Shape shape{5, 3, 4, 2};
  const Tensor x0 = randn(shape, 11), eps = randn(shape, 12);
  const Tensor gamma = uniform({5}, 13, 0.01, 0.99);
  const Tensor xt = q_sample(x0, gamma, eps);
  const Tensor v = v_from_x0_eps(x0, eps, gamma);
  // v = √γ·ε − √(1−γ)·x0 element by element.
  const auto vv = v.to_vector<double>(), xv = x0.to_vector<double>(), ev = eps.to_vector<double>();
  const auto gv = gamma.to_vector<double>();
  for (size_t i = 0; i < vv.size(); ++i) {
    const double g = gv[i / 24];
    CHECK(vv[i] == doctest::Approx(std::sqrt(g) * ev[i] - std::sqrt(1 - g) * xv[i]).epsilon(1e-14));
  }
  check_close(x0_from_eps(xt, gamma, eps), x0, 1e-13, 1e-13);
  check_close(eps_from_x0(xt, gamma, x0), eps, 1e-13, 1e-13);
  check_close(x0_from_v(xt, gamma, v), x0, 1e-13, 1e-13);
  check_close(eps_from_v(xt, gamma, v), eps, 1e-13, 1e-13);
  check_close(v_from_eps(xt, gamma, eps), v, 1e-13, 1e-13);
  check_close(target_for(Parameterization::v, x0, eps, gamma), v, 0, 0);
  CHECK(target_for(Parameterization::eps, x0, eps, gamma).same(eps));
  check_close(x0_from_prediction(Parameterization::v, xt, gamma, v), x0, 1e-13, 1e-13);
  check_close(x0_from_prediction(Parameterization::eps, xt, gamma, eps), x0, 1e-13, 1e-13);
  check_close(eps_from_prediction(Parameterization::v, xt, gamma, v), eps, 1e-13, 1e-13);
  // Round trips through a non-contiguous x_t.
  const Tensor xt_nc = noncontiguous(xt);
  check_close(eps_from_x0(xt_nc, gamma, x0_from_eps(xt_nc, gamma, eps)), eps, 1e-12, 1e-12);
  gradcheck([&](const std::vector<Tensor>& in) { return x0_from_v(in[0], gamma, in[1]); },
            {xt.detach().set_requires_grad(), v.detach().set_requires_grad()});
  check_throws_with([&] { (void)x0_from_v(xt, gamma, randn({5, 3}, 1)); }, {"x0_from_v", "v", "[5, 3]"});
}

TEST_CASE("posterior mean and variance against Bayes' rule") {
  // x_prev | x0 ~ N(√γp·x0, 1−γp) and x_cur | x_prev ~ N(√α·x_prev, β): by Bayes, x_prev | x_cur, x0 is
  // Gaussian with precision 1/(1−γp) + α/β and mean var·(√γp·x0/(1−γp) + √α·x_cur/β).
  const std::vector<std::pair<double, double>> pairs = {{1.0 - 1e-4, 0.999}, {0.9, 0.8},   {0.5, 0.49},
                                                        {0.3, 0.01},         {0.05, 0.04}, {0.999, 2e-3}};
  for (auto [gp, gc] : pairs) {
    CAPTURE(gp);
    CAPTURE(gc);
    const double alpha = gc / gp, beta = 1 - alpha;
    const double prec = 1 / (1 - gp) + alpha / beta, var = 1 / prec;
    const double x0 = 0.7, xc = -0.4;
    const double mean = var * (std::sqrt(gp) * x0 / (1 - gp) + std::sqrt(alpha) * xc / beta);
    const PosteriorCoefficients c = posterior_coefficients(gp, gc);
    CHECK(c.x0 * x0 + c.xt * xc == doctest::Approx(mean).epsilon(1e-10));
    CHECK(c.variance == doctest::Approx(var).epsilon(1e-10));
    CHECK(c.beta == doctest::Approx(beta).epsilon(1e-12));
  }
  // The clean end: γ_prev = 1 gives the point x0.
  const PosteriorCoefficients end = posterior_coefficients(1.0, 0.3);
  CHECK(end.x0 == 1.0);
  CHECK(end.xt == 0.0);
  CHECK(end.variance == 0.0);
  check_throws_with([] { (void)posterior_coefficients(0.5, 0.6); },
                    {"posterior_coefficients", "gamma_prev = 0.5", "gamma_cur = 0.6"});

  // The tensor version with per-sample levels matches the host coefficients.
  const Tensor gp = Tensor::from_vector(std::vector<double>{0.9, 0.5, 0.3, 1.0}, {4});
  const Tensor gc = Tensor::from_vector(std::vector<double>{0.8, 0.49, 0.01, 0.2}, {4});
  const Tensor xc = randn({4, 3, 2}, 21), x0 = randn({4, 3, 2}, 22);
  const Posterior p = q_posterior(xc, x0, gp, gc);
  const auto mv = p.mean.to_vector<double>(), vv = p.variance.to_vector<double>();
  const auto xcv = xc.to_vector<double>(), x0v = x0.to_vector<double>();
  const auto gpv = gp.to_vector<double>(), gcv = gc.to_vector<double>();
  for (size_t n = 0; n < 4; ++n) {
    const PosteriorCoefficients c = posterior_coefficients(gpv[n], gcv[n]);
    CHECK(vv[n] == doctest::Approx(c.variance).epsilon(1e-13));
    for (size_t j = 0; j < 6; ++j)
      CHECK(mv[n * 6 + j] == doctest::Approx(c.x0 * x0v[n * 6 + j] + c.xt * xcv[n * 6 + j]).epsilon(1e-13));
  }
}
