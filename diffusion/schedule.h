// Noise schedules of the variance-preserving diffusion process, in SR3's notation.
//
// A schedule of T steps is the list of noise levels γ_0 = 1 > γ_1 > ... > γ_T > 0, where γ_t = ᾱ_t is the
// cumulative product of α_s = 1 − β_s for s <= t, and x_t = √γ_t·x_0 + √(1−γ_t)·ε. The network is conditioned
// on the continuous level γ (not on t), so training and sampling may use different schedules: a sampling run
// is just a list of levels (a "path", see below), built from any schedule.
//
// Everything here is host-side double arithmetic except the tensor forms of gamma_at / step_of / interpolate
// (piecewise-linear lookups in the table, written with iris ops so that they run on any device without a
// host round trip) and the tensor snr / log_snr.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::diffusion {

class NoiseSchedule {
 public:
  // β_t = β_start + (β_end − β_start)·(t−1)/(T−1) for t = 1..T (β_start when T = 1); every β in (0, 1).
  static NoiseSchedule linear(double beta_start, double beta_end, int64_t T);
  // Nichol & Dhariwal: f(t) = cos²(((t/T) + s)/(1 + s)·π/2), β_t = min(1 − f(t)/f(t−1), max_beta) and
  // γ_t = Π (1 − β). Without clipping γ_t = f(t)/f(0); the clip only acts near t = T (f(T) = 0).
  static NoiseSchedule cosine(int64_t T, double s = 0.008, double max_beta = 0.999);
  // An explicit list γ_1..γ_T (γ_0 = 1 is implicit): strictly decreasing, each in (0, 1).
  static NoiseSchedule from_gammas(const std::vector<double>& gammas_1_to_T);

  int64_t T() const { return static_cast<int64_t>(gammas_.size()) - 1; }
  double gamma(int64_t t) const;  // t = 0..T, γ_0 = 1
  double alpha(int64_t t) const;  // t = 1..T, γ_t / γ_{t−1}
  double beta(int64_t t) const;  // t = 1..T, 1 − α_t (as given for linear/cosine, else 1 − γ_t/γ_{t−1})
  const std::vector<double>& gammas() const { return gammas_; }  // γ_0..γ_T (T + 1 values)

  // Piecewise-linear interpolation in the continuous step s ∈ [0, T]: γ(s) = (1−f)·γ_{t−1} + f·γ_t with
  // f = s − (t−1), for s ∈ [t−1, t]; integer steps give the table values exactly. The mixture Σ_t
  // (1/T)·U(γ_t, γ_{t−1}) that SR3 trains on is γ(U[0, T]).
  double gamma_at(double s) const;
  // The same, elementwise, for a tensor of steps s [N] (any floating dtype and device; values outside
  // [0, T] are clamped). The result has s's dtype and device. Cost: O(N·T) elementwise work (a one-hot
  // lookup, exact in any precision), which is negligible next to a network evaluation.
  Tensor gamma_at(const Tensor& s) const;
  // The building blocks of gamma_at, for callers that draw the step and the position within it separately
  // (SR3's training levels): the step t = 1 + #{k ∈ 1..T−1 : s >= k} ∈ 1..T of continuous steps s [N] (as
  // integer values in s's dtype), and (1−frac)·γ_{t−1} + frac·γ_t for integer steps t [N] and fractions
  // frac [N] in [0, 1] (same dtype and device).
  Tensor step_of(const Tensor& s) const;
  Tensor interpolate(const Tensor& t, const Tensor& frac) const;

  // K levels from this schedule, evenly spaced in t: γ'_k = γ_{round(k·T/K)} for k = 1..K (so γ'_K = γ_T).
  // K = T gives this schedule back.
  NoiseSchedule respaced(int64_t K) const;

  // The sampling path of this schedule: {γ_T, γ_{T−1}, ..., γ_1, 1}, noisiest first (see below).
  std::vector<double> sampling_path() const;

 private:
  NoiseSchedule(std::vector<double> gammas, std::vector<double> betas, const char* who);
  std::vector<double> gammas_;  // γ_0 = 1, γ_1, ..., γ_T
  std::vector<double> betas_;   // β_0 = 0 (unused), β_1, ..., β_T
};

// ---- paths ---------------------------------------------------------------------------------------------
// A sampling path is the list of levels a reverse chain visits, noisiest first: p_0 < p_1 < ... < p_K with
// p_0 > 0 and p_K <= 1. The chain starts at p_0 (pure noise, or a given x at that level), calls the
// denoiser at p_0..p_{K−1} and returns x at p_K: x_0 when p_K = 1, or x_s for a truncated chain that
// stops at p_K = γ_s. Throws naming `who`, the index and the value when the path is malformed.
void check_path(const std::vector<double>& path, const char* who);

// The part of `path` strictly between start_gamma and stop_gamma, with start_gamma prepended and
// stop_gamma appended: e.g. to start a chain from a given x at level start_gamma, or to stop at level
// γ_s (CDM's truncated conditioning augmentation). Needs 0 < start_gamma < stop_gamma <= 1.
std::vector<double> sub_path(const std::vector<double>& path, double start_gamma, double stop_gamma);

// ---- level helpers -------------------------------------------------------------------------------------
// With α = √γ (signal scale) and σ = √(1 − γ) (noise scale): SNR = α²/σ² = γ / (1 − γ), its log
// log γ − log(1 − γ), and DPM-Solver's λ = log(α/σ), half the log-SNR. All are +inf at γ = 1.
double snr(double gamma);
double log_snr(double gamma);
double half_log_snr(double gamma);          // DPM-Solver's λ
double gamma_from_log_snr(double log_snr);  // the sigmoid, inverse of log_snr
double signal_scale(double gamma);          // α = √γ
double noise_scale(double gamma);           // σ = √(1 − γ)
// Elementwise on tensors of levels (any floating dtype and device).
Tensor snr(const Tensor& gamma);
Tensor log_snr(const Tensor& gamma);

}  // namespace iris::diffusion
