// The key sampler check: data x_0 ~ N(μ = 0.3, s = 0.5) per element has the optimal denoiser
// E[x_0 | x_t] (gaussian_model.h), and every sampler driven by it must reproduce the data law.
//
// How the tolerance is set. With this denoiser each sampler is a linear-Gaussian chain, so its output is
// exactly Gaussian with a mean and sd that a float64 recursion computes (chain_law, written from the
// papers' equations independently of the sampler code). A finite number of steps leaves a discretisation
// bias: the chain law differs from (μ, s) by up to ~2% of s for first-order samplers at 100–200 steps and
// under 1.5% for DPM-Solver++(2M) at 15–25 steps, and the bias vanishes as the steps grow (checked below). So
// each sampler run is checked twice:
//   1. its sample of n values matches the exact chain law within 5 standard errors (sd/√n for the mean,
//      sd/√(2n) for the sd; see kShape), and
//   2. the chain law is within the stated bias allowance of (μ, s).
// Together: every sampler reproduces μ within 0.002 + 0.01 and s within its allowance + 0.007. Check 1 is
// what a wrong update rule fails (shown below by running the samplers with an off-by-one denoiser).
#include "tests/diffusion/gaussian_model.h"

using namespace iris;
using namespace iris::test;
using namespace iris::test::gaussian;
using namespace iris::diffusion;

namespace {
// n = 262144 values (65536 "samples" of 4 elements) for the short DPM-Solver++ chains, n = 65536 for the
// 100–200-step chains (to keep each test to seconds): 5 standard errors are then ±0.0049 / ±0.0035 (mean /
// sd) and ±0.0098 / ±0.0069.
const Shape kShape{65536, 4};
const Shape kSmall{16384, 4};

std::vector<double> cosine_path(int64_t K) {
  return NoiseSchedule::cosine(K).sampling_path();
}
std::vector<double> linear_path(int64_t K) {
  return NoiseSchedule::linear(1e-4, 0.02, 1000).respaced(K).sampling_path();
}

// Checks 1 and 2 of the header comment for one sampler output.
void check_sampler(const Tensor& x, Law chain, Law target, double sd_allowance) {
  const Stats st = stats(x);
  CHECK_MESSAGE(law_matches(st, chain), describe(st, chain));
  CHECK_MESSAGE(std::abs(chain.mean - target.mean) <= 0.002, "chain mean ", chain.mean, " vs ", target.mean);
  CHECK_MESSAGE(std::abs(chain.sd - target.sd) <= sd_allowance, "chain sd ", chain.sd, " vs ", target.sd,
                " (allowance ", sd_allowance, ")");
}
const Law kData{kMu, kSd};
}  // namespace

TEST_CASE("the Gaussian reference chain converges to the data law as steps grow") {
  // The bias of every method shrinks with the step count and is tiny at 2000 steps: the reference
  // equations are consistent discretisations of the reverse process, not just self-consistent.
  const std::vector<double> fine = cosine_path(2000), coarse = cosine_path(200);
  for (Method m : {Method::ddpm_posterior, Method::ddpm_beta, Method::ddim, Method::dpm_solver_pp_2m}) {
    CAPTURE(static_cast<int>(m));
    const Law f = chain_law(m, fine), c = chain_law(m, coarse);
    CHECK(std::abs(f.mean - kMu) < 5e-4);
    CHECK(std::abs(f.sd - kSd) < 2e-3);
    // First-order methods: the bias at 2000 steps is below that at 200 (DPM-Solver++'s is ~1e-5 at both).
    if (m != Method::dpm_solver_pp_2m) CHECK(std::abs(f.sd - kSd) < std::abs(c.sd - kSd));
  }
  const Law eta1 = chain_law(Method::ddim, fine, {0, 1}, 1.0);
  CHECK(std::abs(eta1.sd - kSd) < 2e-3);
  // DDIM with η = 1 has DDPM's posterior variance: the same law.
  const Law post = chain_law(Method::ddpm_posterior, coarse),
            d1 = chain_law(Method::ddim, coarse, {0, 1}, 1.0);
  CHECK(d1.mean == doctest::Approx(post.mean).epsilon(1e-12));
  CHECK(d1.sd == doctest::Approx(post.sd).epsilon(1e-12));
}

TEST_CASE("DDPM ancestral sampling reproduces the data law") {
  const std::vector<double> cos200 = cosine_path(200), lin100 = linear_path(100);
  Generator g1(1);
  check_sampler(ddpm_sample(optimal_denoiser(), cos200, kSmall, g1, DdpmVariance::posterior),
                chain_law(Method::ddpm_posterior, cos200), kData, 0.012);
  Generator g2(2);
  check_sampler(ddpm_sample(optimal_denoiser(), lin100, kSmall, g2, DdpmVariance::beta),
                chain_law(Method::ddpm_beta, lin100), kData, 0.012);
}

TEST_CASE("DDIM reproduces the data law with eta 0 and eta 1") {
  const std::vector<double> cos100 = cosine_path(100), cos200 = cosine_path(200);
  Generator g1(3);
  check_sampler(ddim_sample(optimal_denoiser(), cos100, kSmall, g1, 0.0), chain_law(Method::ddim, cos100),
                kData, 0.012);
  Generator g2(4);
  check_sampler(ddim_sample(optimal_denoiser(), cos200, kSmall, g2, 1.0),
                chain_law(Method::ddim, cos200, {0, 1}, 1.0), kData, 0.012);
}

TEST_CASE("DPM-Solver++ 2M reproduces the data law in 15 to 25 steps") {
  for (int64_t K : {15, 25}) {
    CAPTURE(K);
    const std::vector<double> path = cosine_path(K);
    Generator g(5 + K);
    check_sampler(dpm_solver_pp_2m_sample(optimal_denoiser(), path, kShape, g),
                  chain_law(Method::dpm_solver_pp_2m, path), kData, 0.008);
  }
  // The linear schedule's levels respaced to 25 steps (its γ_T = 4e-5 starts the chain less noisy).
  const std::vector<double> lin25 = linear_path(25);
  Generator g(40);
  check_sampler(dpm_solver_pp_2m_sample(optimal_denoiser(), lin25, kShape, g),
                chain_law(Method::dpm_solver_pp_2m, lin25), kData, 0.015);
}

TEST_CASE("a v-parameterised denoiser gives the same statistics") {
  SamplerOptions opt;
  opt.parameterization = Parameterization::v;
  const std::vector<double> cos20 = cosine_path(20), cos200 = cosine_path(200);
  Generator g1(6);
  check_sampler(dpm_solver_pp_2m_sample(optimal_denoiser(Parameterization::v), cos20, kShape, g1, opt),
                chain_law(Method::dpm_solver_pp_2m, cos20), kData, 0.008);
  Generator g2(7);
  check_sampler(
      ddpm_sample(optimal_denoiser(Parameterization::v), cos200, kSmall, g2, DdpmVariance::posterior, opt),
      chain_law(Method::ddpm_posterior, cos200), kData, 0.012);
}

TEST_CASE("a wrong denoiser or variant fails the law check") {
  // An off-by-one in the levels: the optimal ε-denoiser told the next (cleaner) level of the path instead of
  // the current one. Its effect shrinks like the discretisation error, O(1/K) (at 200 DDPM steps it moves sd
  // by only ~0.007), so it is shown where it is well above the check's resolution: DDPM at 50 steps (where
  // the correct sampler passes the same check), DDIM at 100 and DPM-Solver++ at 20.
  const std::vector<double> cos50 = cosine_path(50), cos100 = cosine_path(100), cos20 = cosine_path(20);
  Generator g0(8);
  const Stats s0 = stats(ddpm_sample(optimal_denoiser(), cos50, kSmall, g0, DdpmVariance::posterior));
  CHECK_MESSAGE(law_matches(s0, chain_law(Method::ddpm_posterior, cos50)), describe(s0, {}));
  Generator g1(8);
  const Stats s1 = stats(ddpm_sample(shifted_denoiser(cos50), cos50, kSmall, g1, DdpmVariance::posterior));
  CHECK_FALSE_MESSAGE(law_matches(s1, chain_law(Method::ddpm_posterior, cos50)), describe(s1, {}));
  Generator g2(9);
  const Stats s2 = stats(ddim_sample(shifted_denoiser(cos100), cos100, kSmall, g2, 0.0));
  CHECK_FALSE_MESSAGE(law_matches(s2, chain_law(Method::ddim, cos100)), describe(s2, {}));
  Generator g3(10);
  const Stats s3 = stats(dpm_solver_pp_2m_sample(shifted_denoiser(cos20), cos20, kShape, g3));
  CHECK_FALSE_MESSAGE(law_matches(s3, chain_law(Method::dpm_solver_pp_2m, cos20)), describe(s3, {}));
  // The check also tells DDPM's two variance choices apart (sd 0.502 vs 0.491 at 200 cosine steps).
  const std::vector<double> cos200 = cosine_path(200);
  Generator g4(11);
  const Stats s4 = stats(ddpm_sample(optimal_denoiser(), cos200, kSmall, g4, DdpmVariance::beta));
  CHECK_FALSE_MESSAGE(law_matches(s4, chain_law(Method::ddpm_posterior, cos200)), describe(s4, {}));
  CHECK_MESSAGE(law_matches(s4, chain_law(Method::ddpm_beta, cos200)), describe(s4, {}));
}

TEST_CASE("truncated sampling stops at level s with the closed-form marginal of x_s") {
  // CDM's truncated conditioning augmentation: stop the chain at γ_s and return x_s, whose law for this
  // data is N(√γ_s·μ, γ_s·s² + 1 − γ_s).
  const double gamma_s = 0.4;
  const Law target = marginal(gamma_s);
  const std::vector<double> full = cosine_path(200);
  const std::vector<double> path = sub_path(full, full.front(), gamma_s);
  REQUIRE(path.back() == gamma_s);
  int64_t steps = 0;
  SamplerOptions opt;
  opt.on_step = [&](const SamplerStep&) { ++steps; };
  Generator g1(12);
  check_sampler(ddpm_sample(optimal_denoiser(), path, kSmall, g1, DdpmVariance::posterior, opt),
                chain_law(Method::ddpm_posterior, path), target, 0.012);
  CHECK(steps == static_cast<int64_t>(path.size()) - 1);
  Generator g2(13);
  check_sampler(ddim_sample(optimal_denoiser(), path, kSmall, g2, 0.0), chain_law(Method::ddim, path), target,
                0.012);
  const std::vector<double> short_path = sub_path(cosine_path(25), full.front(), gamma_s);
  Generator g3(14);
  check_sampler(dpm_solver_pp_2m_sample(optimal_denoiser(), short_path, kShape, g3),
                chain_law(Method::dpm_solver_pp_2m, short_path), target, 0.008);
}

TEST_CASE("sampling from a given x at a given level reaches the data law") {
  // Start from the exact marginal at γ_a = 0.02 (x = √γ_a·x_0 + √(1−γ_a)·ε with x_0 from the data law).
  const double gamma_a = 0.02;
  Generator data(15);
  const Tensor x0 = randn(kSmall, data, DType::f32, Device::cpu(), kMu, kSd);
  const Tensor gamma = Tensor::full({kSmall[0]}, gamma_a, DType::f32);
  SamplerOptions opt;
  opt.x_start = q_sample(x0, gamma, randn(kSmall, data));
  const std::vector<double> path = sub_path(cosine_path(20), gamma_a, 1.0);
  const Law start = marginal(gamma_a);
  Generator unused(16);
  check_sampler(dpm_solver_pp_2m_sample(optimal_denoiser(), path, kSmall, unused, opt),
                chain_law(Method::dpm_solver_pp_2m, path, start), kData, 0.008);
  CHECK(unused.offset() == 0);  // a deterministic sampler with a given start draws nothing
  const std::vector<double> long_path = sub_path(cosine_path(200), gamma_a, 1.0);
  Generator g(17);
  check_sampler(ddpm_sample(optimal_denoiser(), long_path, kSmall, g, DdpmVariance::posterior, opt),
                chain_law(Method::ddpm_posterior, long_path, start), kData, 0.012);
}
