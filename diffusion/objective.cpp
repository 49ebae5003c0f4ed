// The diffusion training loss (objective.h).
#include "diffusion/objective.h"

#include <cmath>
#include <vector>

#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"

namespace iris::diffusion {

Tensor min_snr_weights(const Tensor& gamma, Parameterization target, double gamma_w) {
  check_defined(gamma, "min_snr_weights", "gamma");
  check_floating(gamma, "min_snr_weights");
  IRIS_CHECK(gamma.dim() == 1, "min_snr_weights: expected levels gamma [N], got ", gamma.summary());
  IRIS_CHECK(gamma_w > 0.0 && std::isfinite(gamma_w), "min_snr_weights: gamma_w must be finite and > 0, got ",
             gamma_w);
  const Tensor g = gamma.detach();
  const Tensor s = snr(g);  // +inf at γ = 1, where both weights below are 0
  const Tensor clipped = clamp(s, 0.0, gamma_w);
  return target == Parameterization::eps ? div(clipped, s) : div(clipped, add(s, 1.0));
}

Tensor per_sample_loss(const Tensor& pred, const Tensor& target, LossNorm norm) {
  check_defined(pred, "per_sample_loss", "prediction");
  check_defined(target, "per_sample_loss", "target");
  IRIS_CHECK(pred.shape() == target.shape() && pred.dim() >= 1,
             "per_sample_loss: prediction and target must have the same [N, ...] shape, got ", pred.summary(),
             " and ", target.summary());
  const Tensor d = sub(pred, target);
  const Tensor e = norm == LossNorm::l1 ? abs(d) : square(d);
  if (e.dim() == 1) return e;  // one element per sample
  std::vector<int64_t> axes;
  for (int64_t a = 1; a < e.dim(); ++a) axes.push_back(a);
  return mean(e, axes);
}

Tensor diffusion_loss(const Tensor& pred, const Tensor& x0, const Tensor& eps, const Tensor& gamma,
                      const ObjectiveConfig& config) {
  check_defined(pred, "diffusion_loss", "prediction");
  IRIS_CHECK(x0.defined() && eps.defined() && pred.shape() == x0.shape() && pred.shape() == eps.shape(),
             "diffusion_loss: prediction, x0 and eps must have the same [N, ...] shape, got ", pred.summary(),
             ", ", x0.defined() ? x0.summary() : "undefined", " and ",
             eps.defined() ? eps.summary() : "undefined");
  (void)per_sample(gamma, pred, "diffusion_loss");  // checks gamma is [N]
  const Tensor target = target_for(config.target, x0.detach(), eps.detach(), gamma.detach());
  Tensor losses = per_sample_loss(pred, target, config.norm);  // [N]
  IRIS_CHECK(config.min_snr_gamma >= 0.0, "diffusion_loss: min_snr_gamma must be >= 0 (0 = off), got ",
             config.min_snr_gamma);
  if (config.min_snr_gamma > 0.0)
    losses = mul(losses, min_snr_weights(gamma, config.target, config.min_snr_gamma));
  return mean(losses);
}

}  // namespace iris::diffusion
