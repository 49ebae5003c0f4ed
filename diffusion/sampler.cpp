// DDPM, DDIM and DPM-Solver++(2M) samplers and classifier-free guidance (sampler.h).
//
// The levels of a path are host doubles, so every coefficient of an update is computed in double on the host
// and the tensor work is scalar-times-tensor ops on the state's device.
#include "diffusion/sampler.h"

#include <algorithm>
#include <cmath>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/random.h"

namespace iris::diffusion {

namespace {

Tensor initial_state(const std::vector<double>& path, const Shape& shape, Generator& gen,
                     const SamplerOptions& opt, const char* who) {
  check_path(path, who);
  IRIS_CHECK(!shape.empty() && shape[0] >= 1, who, ": the sample shape must be [N, ...] with N >= 1, got ",
             shape_str(shape));
  if (opt.x_start.defined()) {
    IRIS_CHECK(opt.x_start.shape() == shape, who, ": x_start ", opt.x_start.summary(),
               " does not have the sample shape ", shape_str(shape));
    check_floating(opt.x_start, who);
    return opt.x_start.detach();
  }
  return randn(shape, gen, opt.dtype, opt.device);
}

struct Estimate {
  Tensor x0;   // x̂_0 (clamped to [−1, 1] when asked)
  Tensor eps;  // ε̂ consistent with x̂_0 (only when asked for)
};

// One denoiser call at level g for the whole batch x [N, ...].
Estimate estimate(const Denoiser& model, const Tensor& x, double g, const SamplerOptions& opt, bool need_eps,
                  const char* who) {
  const Tensor gamma = Tensor::full({x.size(0)}, g, opt.gamma_dtype, x.device());
  const Tensor pred = model(x, gamma);
  IRIS_CHECK(pred.defined() && pred.shape() == x.shape(), who, ": the denoiser returned ",
             pred.defined() ? pred.summary() : "an undefined tensor", " for x ", x.summary(), " at gamma ",
             g);
  const double a = std::sqrt(g), s = std::sqrt(1.0 - g);
  Estimate e;
  if (opt.parameterization == Parameterization::eps) {
    e.x0 = div(sub(x, mul(pred, s)), a);
    if (need_eps) e.eps = pred;
  } else {
    e.x0 = sub(mul(x, a), mul(pred, s));
    if (need_eps) e.eps = add(mul(x, s), mul(pred, a));
  }
  if (opt.clip_x0) {
    e.x0 = clamp(e.x0, -1.0, 1.0);
    if (need_eps) e.eps = div(sub(x, mul(e.x0, a)), s);
  }
  return e;
}

void report(const SamplerOptions& opt, int64_t i, int64_t K, double g, const Tensor& x, const Tensor& x0) {
  if (opt.on_step) opt.on_step(SamplerStep{i, K, g, x, x0});
}

Tensor noise_like(const Tensor& x, Generator& gen) {
  return randn(x.shape(), gen, x.dtype(), x.device());
}

}  // namespace

Tensor ddpm_sample(const Denoiser& model, const std::vector<double>& path, const Shape& shape, Generator& gen,
                   DdpmVariance variance, const SamplerOptions& opt) {
  IRIS_CHECK(static_cast<bool>(model), "ddpm_sample: no denoiser given");
  NoGradGuard no_grad;
  Tensor x = initial_state(path, shape, gen, opt, "ddpm_sample");
  const int64_t K = static_cast<int64_t>(path.size()) - 1;
  for (int64_t i = 1; i <= K; ++i) {
    const double g = path[i - 1], g_next = path[i];
    const Estimate e = estimate(model, x, g, opt, false, "ddpm_sample");
    if (g_next == 1.0) {
      x = e.x0;  // the posterior at the clean end is the point x̂_0
    } else {
      const PosteriorCoefficients c = posterior_coefficients(g_next, g);
      const double var = variance == DdpmVariance::posterior ? c.variance : c.beta;
      x = add(add(mul(e.x0, c.x0), mul(x, c.xt)), mul(noise_like(x, gen), std::sqrt(var)));
    }
    report(opt, i, K, g_next, x, e.x0);
  }
  return x;
}

Tensor ddim_sample(const Denoiser& model, const std::vector<double>& path, const Shape& shape, Generator& gen,
                   double eta, const SamplerOptions& opt) {
  IRIS_CHECK(static_cast<bool>(model), "ddim_sample: no denoiser given");
  IRIS_CHECK(eta >= 0.0 && eta <= 1.0, "ddim_sample: eta must be in [0, 1], got ", eta);
  NoGradGuard no_grad;
  Tensor x = initial_state(path, shape, gen, opt, "ddim_sample");
  const int64_t K = static_cast<int64_t>(path.size()) - 1;
  for (int64_t i = 1; i <= K; ++i) {
    const double g = path[i - 1], g_next = path[i];
    const Estimate e = estimate(model, x, g, opt, true, "ddim_sample");
    if (g_next == 1.0) {
      x = e.x0;  // σ = 0 and √(1 − γ') = 0 at the clean end
    } else {
      const double sigma = eta * std::sqrt((1.0 - g_next) / (1.0 - g)) * std::sqrt(1.0 - g / g_next);
      const double c_eps = std::sqrt(std::max(1.0 - g_next - sigma * sigma, 0.0));
      x = add(mul(e.x0, std::sqrt(g_next)), mul(e.eps, c_eps));
      if (sigma > 0.0) x = add(x, mul(noise_like(x, gen), sigma));
    }
    report(opt, i, K, g_next, x, e.x0);
  }
  return x;
}

Tensor dpm_solver_pp_2m_sample(const Denoiser& model, const std::vector<double>& path, const Shape& shape,
                               Generator& gen, const SamplerOptions& opt) {
  IRIS_CHECK(static_cast<bool>(model), "dpm_solver_pp_2m_sample: no denoiser given");
  NoGradGuard no_grad;
  Tensor x = initial_state(path, shape, gen, opt, "dpm_solver_pp_2m_sample");
  const int64_t K = static_cast<int64_t>(path.size()) - 1;
  Tensor prev_x0;     // x̂_0 at the previous level
  double h_prev = 0;  // the previous step's h
  for (int64_t i = 1; i <= K; ++i) {
    const double g = path[i - 1], g_next = path[i];
    const Estimate e = estimate(model, x, g, opt, false, "dpm_solver_pp_2m_sample");
    const bool first_order = i == 1 || i == K;
    if (g_next == 1.0) {
      x = e.x0;  // λ' = +inf: the first-order step lands on x̂_0 (a step to 1 is always the last)
    } else {
      const double h = half_log_snr(g_next) - half_log_snr(g);
      Tensor D = e.x0;
      if (!first_order) {
        const double r = h_prev / h;
        D = sub(mul(e.x0, 1.0 + 0.5 / r), mul(prev_x0, 0.5 / r));
      }
      const double ratio = std::sqrt((1.0 - g_next) / (1.0 - g));  // σ'/σ
      const double c_d = -std::sqrt(g_next) * std::expm1(-h);      // −α'·(e^{−h} − 1)
      x = add(mul(x, ratio), mul(D, c_d));
      h_prev = h;
    }
    prev_x0 = e.x0;
    report(opt, i, K, g_next, x, e.x0);
  }
  return x;
}

Tensor concat_batch(const Tensor& a, const Tensor& b) {
  check_defined(a, "concat_batch", "a");
  check_defined(b, "concat_batch", "b");
  IRIS_CHECK(a.dim() >= 1 && a.dim() == b.dim() &&
                 std::equal(a.shape().begin() + 1, a.shape().end(), b.shape().begin() + 1),
             "concat_batch: a and b must be [Na, ...] and [Nb, ...] with the same trailing shape, got ",
             a.summary(), " and ", b.summary());
  Shape shape = a.shape();
  shape[0] = a.size(0) + b.size(0);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  out.slice(0, 0, a.size(0)).copy_(a);
  out.slice(0, a.size(0), shape[0]).copy_(b);
  return out;
}

Denoiser classifier_free_guidance(ConditionalDenoiser model, Tensor cond, Tensor null_cond, double scale) {
  IRIS_CHECK(static_cast<bool>(model), "classifier_free_guidance: no conditional denoiser given");
  check_defined(cond, "classifier_free_guidance", "cond");
  check_defined(null_cond, "classifier_free_guidance", "null_cond");
  IRIS_CHECK(std::isfinite(scale), "classifier_free_guidance: the scale must be finite, got ", scale);
  bool broadcastable = cond.dim() >= 1 && null_cond.dim() == cond.dim();
  for (int64_t d = 0; broadcastable && d < cond.dim(); ++d)
    broadcastable = null_cond.size(d) == cond.size(d) || null_cond.size(d) == 1;
  IRIS_CHECK(broadcastable, "classifier_free_guidance: null_cond ", null_cond.summary(),
             " must have cond's shape or broadcast to it, cond ", cond.summary());
  const Tensor conds = concat_batch(cond, null_cond.expand(cond.shape()));  // [2N, ...]
  const int64_t N = cond.size(0);
  return [model = std::move(model), conds, N, scale](const Tensor& x, const Tensor& gamma) -> Tensor {
    IRIS_CHECK(x.defined() && x.dim() >= 1 && x.size(0) == N && gamma.defined() && gamma.dim() == 1 &&
                   gamma.size(0) == N,
               "classifier_free_guidance: the guided denoiser was built for a batch of ", N, " but got x ",
               x.defined() ? x.summary() : "undefined", " and gamma ",
               gamma.defined() ? gamma.summary() : "undefined");
    const Tensor out = model(concat_batch(x, x), concat_batch(gamma, gamma), conds);
    IRIS_CHECK(out.defined() && out.dim() == x.dim() && out.size(0) == 2 * N,
               "classifier_free_guidance: the conditional denoiser returned ",
               out.defined() ? out.summary() : "an undefined tensor", " for a doubled batch of ", 2 * N);
    const Tensor c = out.slice(0, 0, N), u = out.slice(0, N, 2 * N);
    return add(u, mul(sub(c, u), scale));
  };
}

}  // namespace iris::diffusion
