// Samplers beyond the data law: exact agreement with the float64 reference chain, DDIM(η = 1) = DDPM(β̃),
// ε and v parameterisations, determinism and seeds, per-sample streams, classifier-free guidance,
// callbacks, clipping, and misuse errors.
#include "tests/diffusion/gaussian_model.h"

using namespace iris;
using namespace iris::test;
using namespace iris::test::gaussian;
using namespace iris::diffusion;

namespace {
SamplerOptions f64_options() {
  SamplerOptions o;
  o.dtype = DType::f64;
  o.gamma_dtype = DType::f64;
  return o;
}
// An uneven path (steps of varying size in λ), so that DPM-Solver++'s r = h_prev/h is not 1.
std::vector<double> uneven_path() {
  return {0.002, 0.01, 0.03, 0.05, 0.15, 0.2, 0.45, 0.5, 0.8, 0.97, 0.99, 1.0};
}
}  // namespace

TEST_CASE("deterministic samplers are exactly the reference chain") {
  // DDIM(η = 0) and DPM-Solver++(2M) with the optimal denoiser are affine maps x_start -> output; the
  // reference recursion gives that map (A, B) as chain_law({0, 1}) (mean B, sd |A|) and chain_law({1, 0})
  // (mean A + B), so every output element must equal A·x_start + B to float64 rounding.
  const Tensor start = randn({64, 3}, 31);
  for (const std::vector<double>& path : {uneven_path(), NoiseSchedule::cosine(20).sampling_path(),
                                          sub_path(NoiseSchedule::cosine(30).sampling_path(), 0.01, 0.6)}) {
    CAPTURE(path.size());
    SamplerOptions opt = f64_options();
    opt.x_start = start;
    Generator gen(1);
    for (Method m : {Method::ddim, Method::dpm_solver_pp_2m}) {
      const Tensor out = m == Method::ddim
                             ? ddim_sample(optimal_denoiser(), path, {64, 3}, gen, 0.0, opt)
                             : dpm_solver_pp_2m_sample(optimal_denoiser(), path, {64, 3}, gen, opt);
      const double B = chain_law(m, path, {0, 0}).mean, A = chain_law(m, path, {1, 0}).mean - B;
      const auto o = out.to_vector<double>(), s = start.to_vector<double>();
      double worst = 0;
      for (size_t i = 0; i < o.size(); ++i) worst = std::max(worst, std::abs(o[i] - (A * s[i] + B)));
      CHECK_MESSAGE(worst < 1e-12, "method ", static_cast<int>(m), " worst error ", worst);
    }
    CHECK(gen.offset() == 0);
  }
  // 2M differs from first order on an uneven path (so the multistep correction is really exercised).
  const double b2 = chain_law(Method::dpm_solver_pp_2m, uneven_path(), {0, 0}).mean;
  const double b1 = chain_law(Method::ddim, uneven_path(), {0, 0}).mean;
  CHECK(std::abs(b2 - b1) > 1e-3);
}

TEST_CASE("DDIM with eta 1 is DDPM with the posterior variance, draw for draw") {
  const std::vector<double> path = NoiseSchedule::cosine(30).sampling_path();
  Generator a(77), b(77);
  const Tensor x1 = ddim_sample(optimal_denoiser(), path, {32, 5}, a, 1.0, f64_options());
  const Tensor x2 = ddpm_sample(optimal_denoiser(), path, {32, 5}, b, DdpmVariance::posterior, f64_options());
  check_close(x1, x2, 1e-10, 1e-10);
  CHECK(a.offset() == b.offset());
  // ... and differs from DDPM with SR3's β variance (same draws, different noise scale).
  Generator c(77);
  const Tensor x3 = ddpm_sample(optimal_denoiser(), path, {32, 5}, c, DdpmVariance::beta, f64_options());
  CHECK(max_abs_diff(x2, x3) > 1e-3);
}

TEST_CASE("a v-parameterised denoiser gives the same samples as the eps one") {
  SamplerOptions ov = f64_options();
  ov.parameterization = Parameterization::v;
  const std::vector<double> path = NoiseSchedule::cosine(25).sampling_path();
  for (int method = 0; method < 3; ++method) {
    CAPTURE(method);
    Generator ga(5), gb(5);
    auto run = [&](Generator& g, Parameterization p, const SamplerOptions& o) {
      const Denoiser d = optimal_denoiser(p);
      if (method == 0) return ddpm_sample(d, path, {16, 4}, g, DdpmVariance::posterior, o);
      if (method == 1) return ddim_sample(d, path, {16, 4}, g, 0.5, o);
      return dpm_solver_pp_2m_sample(d, path, {16, 4}, g, o);
    };
    check_close(run(ga, Parameterization::v, ov), run(gb, Parameterization::eps, f64_options()), 1e-9, 1e-9);
  }
  // The tensor form of the optimal denoiser (per-sample levels) agrees with the host-coefficient one.
  const Tensor x = randn({6, 2}, 3);
  const Tensor gamma = Tensor::full({6}, 0.37, DType::f64);
  for (Parameterization p : {Parameterization::eps, Parameterization::v})
    check_close(optimal_prediction(x, gamma, p), optimal_denoiser(p)(x, gamma), 1e-13, 1e-13);
}

TEST_CASE("samples are reproducible from their seed, and DDIM with eta 0 ignores the generator") {
  const std::vector<double> path = NoiseSchedule::cosine(40).sampling_path();
  const Shape shape{8, 6};
  Generator a(123), b(123), c(124);
  const auto xa = ddpm_sample(optimal_denoiser(), path, shape, a).to_vector<float>();
  const auto xb = ddpm_sample(optimal_denoiser(), path, shape, b).to_vector<float>();
  const auto xc = ddpm_sample(optimal_denoiser(), path, shape, c).to_vector<float>();
  CHECK(xa == xb);  // bit for bit
  CHECK(xa != xc);
  // The start plus one draw per step except the last (which lands on x̂_0 without noise).
  CHECK(a.offset() == static_cast<uint64_t>(path.size() - 1) * ((48 + 3) / 4));

  SamplerOptions opt;
  opt.x_start = randn(shape, 9, DType::f32);
  Generator d(1), e(2);
  const auto xd = ddim_sample(optimal_denoiser(), path, shape, d, 0.0, opt).to_vector<float>();
  const auto xe = ddim_sample(optimal_denoiser(), path, shape, e, 0.0, opt).to_vector<float>();
  CHECK(xd == xe);
  CHECK(d.offset() == 0);
  CHECK(e.offset() == 0);

  // The same seed gives the same bits with 1 and 2 CPU threads (a batch large enough to be split).
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  std::vector<std::vector<float>> by_threads;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Generator t(55);
    by_threads.push_back(ddpm_sample(optimal_denoiser(), path, {4096, 16}, t).to_vector<float>());
  }
  CHECK(by_threads[0] == by_threads[1]);
}

TEST_CASE("per-sample generators make a sample independent of its batch") {
  const std::vector<double> path = NoiseSchedule::cosine(20).sampling_path();
  Generator batch = Generator::per_sample(42, {1000, 1001, 1002, 1003});
  const Tensor all = ddpm_sample(optimal_denoiser(), path, {4, 5}, batch, DdpmVariance::posterior);
  Generator alone = Generator::per_sample(42, {1002});
  const Tensor one = ddpm_sample(optimal_denoiser(), path, {1, 5}, alone, DdpmVariance::posterior);
  CHECK(all.slice(0, 2, 3).to_vector<float>() == one.to_vector<float>());
  check_throws_with(
      [&] {
        (void)ddpm_sample(optimal_denoiser(), path, {3, 5}, batch);
      },
      {"per-sample", "4 streams"});
}

TEST_CASE("classifier-free guidance combines one batched call") {
  // A conditional model whose output depends on the condition: x·γ + c (c [B, 1] broadcast over [B, D]).
  int calls = 0;
  int64_t last_rows = 0;
  const ConditionalDenoiser model = [&](const Tensor& x, const Tensor& gamma, const Tensor& c) {
    ++calls;
    last_rows = x.size(0);
    REQUIRE(gamma.size(0) == x.size(0));
    REQUIRE(c.size(0) == x.size(0));
    return add(mul(x, per_sample(gamma, x, "model")), c);
  };
  const int64_t N = 3;
  const Tensor x = randn({N, 4}, 1), gamma = uniform({N}, 2, 0.1, 0.9);
  const Tensor cond = Tensor::from_vector(std::vector<double>{1.0, -2.0, 0.5}, {N, 1});
  const Tensor null_one =
      Tensor::from_vector(std::vector<double>{10.0}, {1, 1});  // one null token, broadcast
  const Tensor null_full = null_one.expand({N, 1}).contiguous();
  const Tensor ec = model(x, gamma, cond), eu = model(x, gamma, null_full);
  calls = 0;
  check_close(classifier_free_guidance(model, cond, null_one, 1.0)(x, gamma), ec, 1e-14, 1e-14);
  CHECK(calls == 1);
  CHECK(last_rows == 2 * N);
  check_close(classifier_free_guidance(model, cond, null_full, 0.0)(x, gamma), eu, 1e-14, 1e-14);
  check_close(classifier_free_guidance(model, cond, null_one, 2.5)(x, gamma), add(eu, mul(sub(ec, eu), 2.5)),
              1e-13, 1e-13);
  check_throws_with(
      [&] {
        (void)classifier_free_guidance(model, cond, null_one, 1.0)(randn({2, 4}, 3), gamma);
      },
      {"classifier_free_guidance", "batch of 3"});
  check_throws_with(
      [&] {
        (void)classifier_free_guidance(model, cond, Tensor::ones({2, 1}, DType::f64), 1.0);
      },
      {"classifier_free_guidance", "null_cond", "[2, 1]"});

  // In a sampler: the guided model at scale 1 samples like the conditional one, at scale 0 like the
  // unconditional one. The condition is the data mean of each sample (data N(c, s²) has optimal denoiser
  // optimal_prediction with mu = c).
  const ConditionalDenoiser gaussian = [](const Tensor& xt, const Tensor& g, const Tensor& mu) {
    return optimal_prediction(xt, g, Parameterization::eps, mu);
  };
  const Tensor mus = Tensor::from_vector(std::vector<double>{0.3, -0.7}, {2, 1});
  const Tensor null_mu = Tensor::zeros({1, 1}, DType::f64);
  const std::vector<double> path = NoiseSchedule::cosine(20).sampling_path();
  SamplerOptions opt = f64_options();
  opt.x_start = randn({2, 8}, 4);
  Generator g(1);
  auto fixed = [&](const Tensor& mu) {
    return [&gaussian, mu](const Tensor& xt, const Tensor& gm) { return gaussian(xt, gm, mu); };
  };
  const Tensor cond_run = dpm_solver_pp_2m_sample(fixed(mus), path, {2, 8}, g, opt);
  const Tensor uncond_run = dpm_solver_pp_2m_sample(fixed(null_mu.expand({2, 1})), path, {2, 8}, g, opt);
  check_close(
      dpm_solver_pp_2m_sample(classifier_free_guidance(gaussian, mus, null_mu, 1.0), path, {2, 8}, g, opt),
      cond_run, 1e-10, 1e-10);
  check_close(
      dpm_solver_pp_2m_sample(classifier_free_guidance(gaussian, mus, null_mu, 0.0), path, {2, 8}, g, opt),
      uncond_run, 1e-10, 1e-10);
  CHECK(max_abs_diff(cond_run, uncond_run) > 0.1);
}

TEST_CASE("the step callback reports every step") {
  const std::vector<double> path = sub_path(NoiseSchedule::cosine(12).sampling_path(), 0.05, 0.7);
  std::vector<SamplerStep> seen;
  SamplerOptions opt;
  opt.on_step = [&](const SamplerStep& s) { seen.push_back(s); };
  Generator g(3);
  const Tensor out = ddpm_sample(optimal_denoiser(), path, {4, 2}, g, DdpmVariance::posterior, opt);
  REQUIRE(seen.size() == path.size() - 1);
  for (size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].index == static_cast<int64_t>(i + 1));
    CHECK(seen[i].count == static_cast<int64_t>(path.size() - 1));
    CHECK(seen[i].gamma == path[i + 1]);
    CHECK(seen[i].x0_hat.shape() == Shape{4, 2});
  }
  CHECK(seen.back().x.to_vector<float>() == out.to_vector<float>());
}

TEST_CASE("clip_x0 clamps the estimate of x0 to [-1, 1]") {
  // A model that predicts zero noise makes x̂_0 = x/√γ, far outside [−1, 1] at γ = 0.01.
  const Denoiser zero = [](const Tensor& x, const Tensor&) { return Tensor::zeros_like(x); };
  const std::vector<double> path = {0.01, 1.0};
  SamplerOptions opt;
  opt.x_start = Tensor::full({2, 3}, 0.5);
  Generator g(1);
  const auto raw = ddim_sample(zero, path, {2, 3}, g, 0.0, opt).to_vector<float>();
  CHECK(raw[0] == doctest::Approx(5.0));
  opt.clip_x0 = true;
  for (int method = 0; method < 3; ++method) {
    const Tensor out = method == 0   ? ddim_sample(zero, path, {2, 3}, g, 0.0, opt)
                       : method == 1 ? ddpm_sample(zero, path, {2, 3}, g, DdpmVariance::beta, opt)
                                     : dpm_solver_pp_2m_sample(zero, path, {2, 3}, g, opt);
    for (float v : out.to_vector<float>()) CHECK(v == 1.0f);
  }
}

TEST_CASE("sampler misuse names the sampler and the problem") {
  const Denoiser d = optimal_denoiser();
  Generator g(1);
  check_throws_with(
      [&] {
        (void)ddpm_sample(d, {0.5, 0.2, 1.0}, {2, 2}, g);
      },
      {"ddpm_sample", "level 1 = 0.2"});
  check_throws_with([&] { (void)ddim_sample(d, {0.5, 1.0}, {2, 2}, g, 1.5); }, {"ddim_sample", "eta", "1.5"});
  check_throws_with(
      [&] {
        (void)dpm_solver_pp_2m_sample(d, {0.5}, {2, 2}, g);
      },
      {"dpm_solver_pp_2m_sample", "at least 2"});
  SamplerOptions opt;
  opt.x_start = Tensor::zeros({3, 2});
  check_throws_with(
      [&] {
        (void)ddim_sample(d, {0.5, 1.0}, {2, 2}, g, 0.0, opt);
      },
      {"ddim_sample", "x_start", "[2, 2]"});
  const Denoiser bad = [](const Tensor& x, const Tensor&) { return Tensor::zeros({x.size(0)}); };
  check_throws_with(
      [&] {
        (void)ddpm_sample(bad, {0.5, 1.0}, {2, 2}, g);
      },
      {"ddpm_sample", "denoiser returned", "[2]", "[2, 2]"});
  check_throws_with(
      [&] {
        (void)ddpm_sample(Denoiser(), {0.5, 1.0}, {2, 2}, g);
      },
      {"ddpm_sample", "no denoiser"});
  check_throws_with(
      [&] {
        (void)concat_batch(Tensor::zeros({2, 3}), Tensor::zeros({2, 4}));
      },
      {"concat_batch", "[2, 3]", "[2, 4]"});
}
