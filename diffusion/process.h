// The forward (noising) process and its algebra, per sample: SR3's training noise levels, q(x_t | x_0),
// conversions between the three things a network may predict (ε, x_0, v), and the posterior
// q(x_{t−1} | x_t, x_0) between any two consecutive levels.
//
// Shapes: x_0, x_t, ε, v are [N, ...] (e.g. [N, H, W, C]); a level tensor γ is [N] and is broadcast over the
// non-batch axes. Everything is written with iris ops, so it runs on the tensors' device and is
// differentiable where its inputs are. Floating dtypes combine as the ops do (the wider one wins).
#pragma once

#include "diffusion/schedule.h"
#include "framework/core/generator.h"

namespace iris::diffusion {

// What the network predicts from (x_t, γ): the noise ε, or v = √γ·ε − √(1−γ)·x_0 (Salimans & Ho).
enum class Parameterization { eps, v };
const char* parameterization_name(Parameterization p);

// ---- SR3 training levels -------------------------------------------------------------------------------
// t ~ U{1..T} and γ ~ U(γ_t, γ_{t−1}) per sample (WaveGrad/SR3: the mixture Σ_t (1/T)·U(γ_t, γ_{t−1})).
// Draws one [N, 2] uniform tensor from `gen` (so a per-sample generator gives each sample its own stream).
// γ lies in [γ_t, γ_{t−1}): the position in the interval is 1 − u with u ∈ [0, 1) (γ_{t−1} itself only
// when rounding swallows a position within an ulp of it). γ < 1 always: it is clamped below 1 in its dtype,
// where rounding near γ_0 = 1 could otherwise reach it.
struct TrainingLevels {
  Tensor t;      // [N] i64, in 1..T
  Tensor gamma;  // [N] `dtype`
};
TrainingLevels sample_training_levels(const NoiseSchedule& schedule, int64_t N, Generator& gen,
                                      Device device = Device::cpu(), DType dtype = DType::f32);

// ---- q(x_t | x_0) --------------------------------------------------------------------------------------
// √γ·x_0 + √(1−γ)·ε, γ [N] broadcast over the non-batch axes of x_0 [N, ...]; ε has x_0's shape.
Tensor q_sample(const Tensor& x0, const Tensor& gamma, const Tensor& eps);

// γ [N] viewed as [N, 1, ..., 1] with as many axes as `like` [N, ...], to broadcast against it. Throws
// naming `who` and both shapes unless γ is [N] with like's N.
Tensor per_sample(const Tensor& gamma, const Tensor& like, const char* who);

// ---- conversions given x_t and γ [N] ---------------------------------------------------------------------
Tensor x0_from_eps(const Tensor& x_t, const Tensor& gamma, const Tensor& eps);  // (x_t − √(1−γ)·ε)/√γ
Tensor eps_from_x0(const Tensor& x_t, const Tensor& gamma, const Tensor& x0);  // (x_t − √γ·x_0)/√(1−γ)
Tensor x0_from_v(const Tensor& x_t, const Tensor& gamma, const Tensor& v);   // √γ·x_t − √(1−γ)·v
Tensor eps_from_v(const Tensor& x_t, const Tensor& gamma, const Tensor& v);  // √(1−γ)·x_t + √γ·v
Tensor v_from_x0_eps(const Tensor& x0, const Tensor& eps, const Tensor& gamma);  // √γ·ε − √(1−γ)·x_0
Tensor v_from_eps(const Tensor& x_t, const Tensor& gamma, const Tensor& eps);  // (ε − √(1−γ)·x_t)/√γ
// The training target of a parameterisation: ε itself, or v.
Tensor target_for(Parameterization p, const Tensor& x0, const Tensor& eps, const Tensor& gamma);
// x̂_0 and ε̂ from a raw network output of parameterisation p.
Tensor x0_from_prediction(Parameterization p, const Tensor& x_t, const Tensor& gamma, const Tensor& pred);
Tensor eps_from_prediction(Parameterization p, const Tensor& x_t, const Tensor& gamma, const Tensor& pred);

// ---- posterior q(x_prev | x_cur, x_0) between consecutive levels γ_prev > γ_cur ---------------------------
// With α = γ_cur/γ_prev and β = 1 − α (the one-step forward noise from x_prev to x_cur):
//   mean = √γ_prev·β/(1−γ_cur)·x_0 + √α·(1−γ_prev)/(1−γ_cur)·x_cur,   variance β̃ = (1−γ_prev)/(1−γ_cur)·β.
// γ_prev = 1 (the clean end) gives mean x_0 and variance 0.
struct PosteriorCoefficients {
  double x0 = 0;        // coefficient of x_0 in the mean
  double xt = 0;        // coefficient of x_cur in the mean
  double variance = 0;  // β̃
  double beta = 0;      // β = 1 − γ_cur/γ_prev
};
// Host version for scalar levels; throws unless 0 < γ_cur < γ_prev <= 1.
PosteriorCoefficients posterior_coefficients(double gamma_prev, double gamma_cur);

struct Posterior {
  Tensor mean;      // [N, ...]
  Tensor variance;  // [N]
};
// Per-sample levels γ_prev, γ_cur [N] (not validated: they may live on a device).
Posterior q_posterior(const Tensor& x_cur, const Tensor& x0, const Tensor& gamma_prev,
                      const Tensor& gamma_cur);

}  // namespace iris::diffusion
