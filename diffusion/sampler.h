// Reverse-process samplers that work with any model through a denoiser callable, and classifier-free
// guidance as a denoiser wrapper.
//
// A sampler walks a path of levels p_0 < p_1 < ... < p_K (noisiest first, see schedule.h): it starts from
// x ~ N(0, I) at p_0 (or from a given x at p_0), calls the denoiser once at each of p_0..p_{K−1} and
// returns x at p_K (x_0 when p_K = 1; a truncated chain stopped at p_K = γ_s returns x_s, as CDM's
// truncated conditioning augmentation needs). All noise comes from one Generator, so a sample is
// reproducible from its seed; a per-sample generator (one stream per batch element) makes each sample's
// chain independent of the batch it is drawn in. Samplers run without autograd.
//
// Update rules, with x̂_0 and ε̂ from the denoiser at level γ = p_i and the next level γ' = p_{i+1}:
// - DDPM ancestral (SR3 §2.3 generalised to arbitrary consecutive levels, α = γ/γ', β = 1 − α):
//     x' = posterior mean(x, x̂_0) + σ·z, σ² = β̃ = (1−γ')/(1−γ)·β or σ² = β (SR3's choice). No noise is added
//     on a final step to γ' = 1 (the posterior there is the point x̂_0).
// - DDIM (Song et al.): x' = √γ'·x̂_0 + √(1−γ'−σ²)·ε̂ + σ·z, σ = η·√((1−γ')/(1−γ))·√(1−γ/γ'), η ∈ [0, 1].
//   η = 0 is deterministic (draws nothing); η = 1 has σ² = β̃, the DDPM posterior.
// - DPM-Solver++(2M) (Lu et al.), data prediction, λ = log(α/σ), h = λ' − λ:
//     x' = (σ'/σ)·x − α'·(e^{−h} − 1)·D,  D = x̂_0 on the first and the last step (first order, which is
//     DDIM with η = 0), else D = (1 + 1/(2r))·x̂_0 − (1/(2r))·x̂_0(previous level), r = h_prev/h.
//     Deterministic; a step to γ' = 1 gives x' = D.
#pragma once

#include <functional>
#include <vector>

#include "diffusion/process.h"
#include "framework/core/generator.h"

namespace iris::diffusion {

// The model's raw prediction (ε or v, see Parameterization) for x_t [N, ...] at levels gamma [N].
using Denoiser = std::function<Tensor(const Tensor& x_t, const Tensor& gamma)>;

// Called after every step (for progress bars and previews).
struct SamplerStep {
  int64_t index = 0;  // 1..count
  int64_t count = 0;  // number of steps, K = path.size() − 1
  double gamma = 0;   // the level just reached (p_index)
  Tensor x;           // the state at that level
  Tensor x0_hat;      // the denoiser's estimate of x_0 used for the step
};
using StepCallback = std::function<void(const SamplerStep&)>;

struct SamplerOptions {
  Parameterization parameterization = Parameterization::eps;  // what the denoiser returns
  bool clip_x0 = false;           // clamp x̂_0 to [−1, 1] (ε̂ is then recomputed from the clamped x̂_0)
  Tensor x_start;                 // x at path.front(); when undefined, x ~ N(0, I) drawn from the generator
  DType dtype = DType::f32;       // of the drawn start (ignored with x_start)
  Device device = Device::cpu();  // of the drawn start (ignored with x_start)
  DType gamma_dtype = DType::f32;  // of the level tensor given to the denoiser
  StepCallback on_step;
};

enum class DdpmVariance {
  posterior,  // β̃ = (1−γ')/(1−γ)·β, the variance of q(x' | x, x_0)
  beta,       // β = 1 − γ/γ', SR3's update (§2.3)
};

// `shape` is that of x ([N, ...], N = shape[0]); it must equal x_start's shape when one is given.
Tensor ddpm_sample(const Denoiser& model, const std::vector<double>& path, const Shape& shape, Generator& gen,
                   DdpmVariance variance = DdpmVariance::beta, const SamplerOptions& options = {});
Tensor ddim_sample(const Denoiser& model, const std::vector<double>& path, const Shape& shape, Generator& gen,
                   double eta = 0.0, const SamplerOptions& options = {});
Tensor dpm_solver_pp_2m_sample(const Denoiser& model, const std::vector<double>& path, const Shape& shape,
                               Generator& gen, const SamplerOptions& options = {});

// ---- classifier-free guidance -----------------------------------------------------------------------------
// A conditional model: the prediction for x_t [B, ...] at levels gamma [B] under conditions cond [B, ...]
// (class labels, an upsampled low-resolution image, an embedding: anything batched along axis 0).
using ConditionalDenoiser = std::function<Tensor(const Tensor& x_t, const Tensor& gamma, const Tensor& cond)>;

// ε̃ = ε_u + s·(ε_c − ε_u) with ε_c = model(x, γ, cond) and ε_u = model(x, γ, null_cond), computed in ONE
// call of `model` on the batch [x; x] with conditions [cond; null_cond] (2N rows). cond is [N, ...] and
// null_cond is either [N, ...] or broadcastable to it (e.g. [1, ...] for a single null token). Guidance is
// linear, and for a fixed x_t both ε and v are affine in each other, so guiding a v-predicting model's
// output is the same as guiding its ε. scale = 1 gives the conditional prediction, 0 the unconditional.
Denoiser classifier_free_guidance(ConditionalDenoiser model, Tensor cond, Tensor null_cond, double scale);

// The rows of a [Na, ...] then those of b [Nb, ...] (same trailing shape) along axis 0, in a's dtype and
// on a's device. Not differentiable (it is for sampling-time batching).
Tensor concat_batch(const Tensor& a, const Tensor& b);

}  // namespace iris::diffusion
