// The forward process: SR3 training levels, q_sample, ε/x0/v conversions and the posterior (process.h).
#include "diffusion/process.h"

#include <cmath>

#include "framework/ops/elementwise.h"
#include "framework/ops/random.h"

namespace iris::diffusion {

const char* parameterization_name(Parameterization p) {
  switch (p) {
    case Parameterization::eps:
      return "eps";
    case Parameterization::v:
      return "v";
  }
  return "?";
}

TrainingLevels sample_training_levels(const NoiseSchedule& schedule, int64_t N, Generator& gen, Device device,
                                      DType dtype) {
  IRIS_CHECK(N >= 1, "sample_training_levels: N must be >= 1, got ", N);
  IRIS_CHECK(dtype == DType::f32 || dtype == DType::f64,
             "sample_training_levels: levels must be f32 or f64 (bf16 cannot resolve gamma near 1), got ",
             dtype_name(dtype));
  // Column 0 picks the step, column 1 the position inside it: one draw, so each sample's stream holds both.
  const Tensor u = rand({N, 2}, gen, dtype, device);
  const Tensor tau = mul(u.select(1, 0), static_cast<double>(schedule.T()));  // [0, T)
  const Tensor t = schedule.step_of(tau);                                     // 1..T
  const Tensor frac = rsub(1.0, u.select(1, 1)).contiguous();                 // (0, 1]
  Tensor gamma = schedule.interpolate(t, frac);
  const double below_one = dtype == DType::f32 ? 1.0 - std::ldexp(1.0, -24) : 1.0 - std::ldexp(1.0, -53);
  gamma = clamp(gamma, 0.0, below_one);
  return {t.to(DType::i64), gamma};
}

Tensor per_sample(const Tensor& gamma, const Tensor& like, const char* who) {
  check_defined(gamma, who, "gamma");
  check_defined(like, who);
  IRIS_CHECK(like.dim() >= 1 && gamma.dim() == 1 && gamma.size(0) == like.size(0), who,
             ": expected levels gamma [N] for a batch [N, ...], got gamma ", gamma.summary(), " and ",
             like.summary());
  Shape shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = like.size(0);
  return gamma.reshape(shape);
}

namespace {
// √γ and √(1−γ) of γ [N], shaped to broadcast against `like`.
struct Scales {
  Tensor a, s;
};
Scales scales(const Tensor& gamma, const Tensor& like, const char* who) {
  const Tensor g = per_sample(gamma, like, who);
  return {sqrt(g), sqrt(rsub(1.0, g))};
}
void check_same_shape(const Tensor& a, const Tensor& b, const char* who, const char* what) {
  check_defined(a, who);
  check_defined(b, who, what);
  IRIS_CHECK(a.shape() == b.shape(), who, ": ", what, " must have the shape of the batch, got ", b.summary(),
             " for ", a.summary());
}
}  // namespace

Tensor q_sample(const Tensor& x0, const Tensor& gamma, const Tensor& eps) {
  check_same_shape(x0, eps, "q_sample", "eps");
  const Scales k = scales(gamma, x0, "q_sample");
  return add(mul(k.a, x0), mul(k.s, eps));
}

Tensor x0_from_eps(const Tensor& x_t, const Tensor& gamma, const Tensor& eps) {
  check_same_shape(x_t, eps, "x0_from_eps", "eps");
  const Scales k = scales(gamma, x_t, "x0_from_eps");
  return div(sub(x_t, mul(k.s, eps)), k.a);
}

Tensor eps_from_x0(const Tensor& x_t, const Tensor& gamma, const Tensor& x0) {
  check_same_shape(x_t, x0, "eps_from_x0", "x0");
  const Scales k = scales(gamma, x_t, "eps_from_x0");
  return div(sub(x_t, mul(k.a, x0)), k.s);
}

Tensor x0_from_v(const Tensor& x_t, const Tensor& gamma, const Tensor& v) {
  check_same_shape(x_t, v, "x0_from_v", "v");
  const Scales k = scales(gamma, x_t, "x0_from_v");
  return sub(mul(k.a, x_t), mul(k.s, v));
}

Tensor eps_from_v(const Tensor& x_t, const Tensor& gamma, const Tensor& v) {
  check_same_shape(x_t, v, "eps_from_v", "v");
  const Scales k = scales(gamma, x_t, "eps_from_v");
  return add(mul(k.s, x_t), mul(k.a, v));
}

Tensor v_from_x0_eps(const Tensor& x0, const Tensor& eps, const Tensor& gamma) {
  check_same_shape(x0, eps, "v_from_x0_eps", "eps");
  const Scales k = scales(gamma, x0, "v_from_x0_eps");
  return sub(mul(k.a, eps), mul(k.s, x0));
}

Tensor v_from_eps(const Tensor& x_t, const Tensor& gamma, const Tensor& eps) {
  check_same_shape(x_t, eps, "v_from_eps", "eps");
  const Scales k = scales(gamma, x_t, "v_from_eps");
  return div(sub(eps, mul(k.s, x_t)), k.a);
}

Tensor target_for(Parameterization p, const Tensor& x0, const Tensor& eps, const Tensor& gamma) {
  return p == Parameterization::eps ? eps : v_from_x0_eps(x0, eps, gamma);
}

Tensor x0_from_prediction(Parameterization p, const Tensor& x_t, const Tensor& gamma, const Tensor& pred) {
  return p == Parameterization::eps ? x0_from_eps(x_t, gamma, pred) : x0_from_v(x_t, gamma, pred);
}

Tensor eps_from_prediction(Parameterization p, const Tensor& x_t, const Tensor& gamma, const Tensor& pred) {
  if (p == Parameterization::eps) {
    check_same_shape(x_t, pred, "eps_from_prediction", "prediction");
    return pred;
  }
  return eps_from_v(x_t, gamma, pred);
}

PosteriorCoefficients posterior_coefficients(double gamma_prev, double gamma_cur) {
  IRIS_CHECK(gamma_cur > 0.0 && gamma_cur < gamma_prev && gamma_prev <= 1.0,
             "posterior_coefficients: need 0 < gamma_cur < gamma_prev <= 1, got gamma_prev = ", gamma_prev,
             " and gamma_cur = ", gamma_cur);
  PosteriorCoefficients c;
  c.beta = (gamma_prev - gamma_cur) / gamma_prev;  // 1 − α without cancellation
  const double alpha = gamma_cur / gamma_prev;
  c.x0 = std::sqrt(gamma_prev) * c.beta / (1.0 - gamma_cur);
  c.xt = std::sqrt(alpha) * (1.0 - gamma_prev) / (1.0 - gamma_cur);
  c.variance = (1.0 - gamma_prev) / (1.0 - gamma_cur) * c.beta;
  return c;
}

Posterior q_posterior(const Tensor& x_cur, const Tensor& x0, const Tensor& gamma_prev,
                      const Tensor& gamma_cur) {
  check_same_shape(x_cur, x0, "q_posterior", "x0");
  IRIS_CHECK(gamma_prev.defined() && gamma_cur.defined() && gamma_prev.shape() == gamma_cur.shape(),
             "q_posterior: gamma_prev and gamma_cur must both be [N]");
  const Tensor beta = div(sub(gamma_prev, gamma_cur), gamma_prev);  // [N]
  const Tensor one_minus_cur = rsub(1.0, gamma_cur);
  const Tensor ratio = div(rsub(1.0, gamma_prev), one_minus_cur);  // (1−γ_prev)/(1−γ_cur)
  const Tensor c_x0 = div(mul(sqrt(gamma_prev), beta), one_minus_cur);
  const Tensor c_xt = mul(sqrt(div(gamma_cur, gamma_prev)), ratio);
  Posterior p;
  p.mean =
      add(mul(per_sample(c_x0, x0, "q_posterior"), x0), mul(per_sample(c_xt, x_cur, "q_posterior"), x_cur));
  p.variance = mul(ratio, beta);
  return p;
}

}  // namespace iris::diffusion
