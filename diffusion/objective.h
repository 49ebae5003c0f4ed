// The diffusion training loss: a network output for (x_t, γ) against its target (ε, as SR3, or v), with
// an L1 (SR3's best) or L2 norm and optional min-SNR-γ weighting (Hang et al. 2023).
//
//   loss = mean_n  w_n · mean_{elements of sample n} |pred − target|^p,     p = 1 or 2,
//
// w_n = 1 without weighting; with min-SNR-γ, w = min(SNR, γ_w)/SNR for the ε target and
// min(SNR, γ_w)/(SNR + 1) for the v target (SNR = γ/(1−γ) of sample n): both equal min(SNR, γ_w) times the
// x_0-space loss, since ‖ε − ε̂‖² = SNR·‖x_0 − x̂_0‖² and ‖v − v̂‖² = (1 + SNR)·‖x_0 − x̂_0‖². The weights are
// constants (no gradient flows into γ). Written with iris ops: it runs on the prediction's device and is
// differentiable in the prediction.
#pragma once

#include "diffusion/process.h"

namespace iris::diffusion {

enum class LossNorm { l1, l2 };

struct ObjectiveConfig {
  Parameterization target = Parameterization::eps;
  LossNorm norm = LossNorm::l1;
  double min_snr_gamma = 0.0;  // γ_w > 0 turns min-SNR-γ weighting on (the paper's default is 5); 0 = off
};

// Per-sample min-SNR-γ weights [N] for levels γ [N] (see above); γ = 1 gives weight 0.
Tensor min_snr_weights(const Tensor& gamma, Parameterization target, double gamma_w);

// mean over the non-batch axes of |pred − target| or (pred − target)²: [N].
Tensor per_sample_loss(const Tensor& pred, const Tensor& target, LossNorm norm);

// The scalar loss for a network output `pred` [N, ...] given the clean data x0, the noise eps that made
// x_t = q_sample(x0, gamma, eps), and the levels gamma [N].
Tensor diffusion_loss(const Tensor& pred, const Tensor& x0, const Tensor& eps, const Tensor& gamma,
                      const ObjectiveConfig& config);

}  // namespace iris::diffusion
