// Test support for the samplers: data x_0 ~ N(μ, s²) per element has a known optimal denoiser, and every
// sampler driven by it is a linear-Gaussian chain whose exact output law this header computes by a float64
// scalar recursion written from the papers' update equations (independently of diffusion/sampler.cpp:
// DDPM in SR3's ε form, DDIM in its paper form, DPM-Solver++ in λ).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "diffusion/process.h"
#include "diffusion/sampler.h"
#include "tests/common/test_util.h"

namespace iris::test::gaussian {

constexpr double kMu = 0.3, kSd = 0.5;

// E[x_0 | x_t] = μ + k·(x_t − √γ·μ) with k = √γ·s²/(γ·s² + 1 − γ): the coefficients of x̂_0 = k·x + q.
struct Affine {
  double a = 0, b = 0;  // a·x + b
};
inline Affine x0_hat(double g, double mu = kMu, double sd = kSd) {
  const double k = std::sqrt(g) * sd * sd / (g * sd * sd + 1 - g);
  return {k, mu - k * std::sqrt(g) * mu};
}

// The optimal denoiser on tensors (any dtype, any device): x̂_0 as above, then ε̂ = (x − √γ·x̂_0)/√(1−γ), or
// v̂ = √γ·ε̂ − √(1−γ)·x̂_0. `mu` may be a tensor [N, 1...] (per-sample means) or undefined (kMu).
inline Tensor optimal_prediction(const Tensor& x, const Tensor& gamma, diffusion::Parameterization p,
                                 const Tensor& mu = Tensor()) {
  const Tensor g = diffusion::per_sample(gamma, x, "optimal_prediction");
  const Tensor a = sqrt(g), s = sqrt(rsub(1.0, g));
  const Tensor k = div(mul(a, kSd * kSd), add(mul(g, kSd * kSd), rsub(1.0, g)));
  const Tensor m = mu.defined() ? mu : Tensor::full({1}, kMu, x.dtype(), x.device());
  const Tensor x0 = add(m, mul(k, sub(x, mul(a, m))));
  const Tensor eps = div(sub(x, mul(a, x0)), s);
  return p == diffusion::Parameterization::eps ? eps : sub(mul(a, eps), mul(s, x0));
}
// The same for a batch at one level (as the samplers call it), with the coefficients computed on the host:
// two scalar ops per call instead of a dozen broadcast ones, which keeps the long chains fast.
inline diffusion::Denoiser optimal_denoiser(
    diffusion::Parameterization p = diffusion::Parameterization::eps) {
  return [p](const Tensor& x, const Tensor& gamma) {
    const auto levels = gamma.to_vector<double>();
    const double g = levels.at(0);
    bool uniform = true;
    for (double l : levels) uniform = uniform && l == g;
    REQUIRE_MESSAGE(uniform, "optimal_denoiser expects one level per call");
    const Affine e = x0_hat(g);
    const double a = std::sqrt(g), s = std::sqrt(1 - g);
    // ε̂ = (x − a·x̂_0)/s and v̂ = a·ε̂ − s·x̂_0, both affine in x.
    const double e1 = (1 - a * e.a) / s, e0 = -a * e.b / s;
    if (p == diffusion::Parameterization::eps) return add(mul(x, e1), e0);
    return add(mul(x, a * e1 - s * e.a), a * e0 - s * e.b);
  };
}

// An off-by-one bug: the optimal denoiser told the next (cleaner) level of the path instead of the current
// one (the current one on the last step, where the next level is 1).
inline diffusion::Denoiser shifted_denoiser(std::vector<double> path) {
  const diffusion::Denoiser optimal = optimal_denoiser();
  return [path, optimal](const Tensor& x, const Tensor& gamma) {
    const double g = gamma.slice(0, 0, 1).item();
    size_t i = 0;
    while (i + 1 < path.size() && std::abs(path[i] - g) > 1e-6 * path[i]) ++i;
    const double wrong = i + 2 < path.size() ? path[i + 1] : path[i];
    return optimal(x, Tensor::full(gamma.shape(), wrong, gamma.dtype(), gamma.device()));
  };
}

// ---- the exact law of a chain -----------------------------------------------------------------------------
struct Law {
  double mean = 0, sd = 1;
};
// The law of x at level g for data N(μ, s²): N(√γ·μ, γ·s² + 1 − γ).
inline Law marginal(double g) {
  return {std::sqrt(g) * kMu, std::sqrt(g * kSd * kSd + 1 - g)};
}

enum class Method { ddpm_posterior, ddpm_beta, ddim, dpm_solver_pp_2m };

// Mean and sd of the sampler's output when the start is N(start.mean, start.sd²) at path[0].
inline Law chain_law(Method method, const std::vector<double>& path, Law start = {0, 1}, double eta = 0) {
  const size_t K = path.size() - 1;
  if (method == Method::dpm_solver_pp_2m) {
    // Deterministic: track x = A·x_start + B and the previous x̂_0 the same way.
    double A = 1, B = 0, pA = 0, pB = 0, h_prev = 0;
    for (size_t i = 1; i <= K; ++i) {
      const double g = path[i - 1], gn = path[i];
      const Affine e = x0_hat(g);
      const double xA = e.a * A, xB = e.a * B + e.b;  // x̂_0 = xA·x_start + xB
      double dA = xA, dB = xB;
      const double lam = 0.5 * std::log(g / (1 - g));
      const double h = gn < 1 ? 0.5 * std::log(gn / (1 - gn)) - lam : INFINITY;
      if (i > 1 && i < K) {
        const double r = h_prev / h;
        dA = (1 + 1 / (2 * r)) * xA - 1 / (2 * r) * pA;
        dB = (1 + 1 / (2 * r)) * xB - 1 / (2 * r) * pB;
      }
      if (gn == 1) {
        A = dA;
        B = dB;
      } else {
        const double ratio = std::sqrt(1 - gn) / std::sqrt(1 - g), cd = -std::sqrt(gn) * (std::exp(-h) - 1);
        A = ratio * A + cd * dA;
        B = ratio * B + cd * dB;
      }
      pA = xA;
      pB = xB;
      h_prev = h;
    }
    return {A * start.mean + B, std::abs(A) * start.sd};
  }
  double m = start.mean, v = start.sd * start.sd;
  for (size_t i = 1; i <= K; ++i) {
    const double g = path[i - 1], gn = path[i];
    const Affine e = x0_hat(g);
    // ε̂ = e1·x + e0
    const double e1 = (1 - std::sqrt(g) * e.a) / std::sqrt(1 - g),
                 e0 = -std::sqrt(g) * e.b / std::sqrt(1 - g);
    double A, B, noise_var;
    if (method == Method::ddim) {
      const double sig2 = gn < 1 ? eta * eta * (1 - gn) / (1 - g) * (1 - g / gn) : 0.0;
      const double ce = std::sqrt(1 - gn - sig2);
      A = std::sqrt(gn) * e.a + ce * e1;
      B = std::sqrt(gn) * e.b + ce * e0;
      noise_var = sig2;
    } else {
      // SR3 §2.3 with α = γ/γ', β = 1 − α: x' = (x − β/√(1−γ)·ε̂)/√α + √(var)·z.
      const double alpha = g / gn, beta = 1 - alpha, c = beta / std::sqrt(1 - g);
      A = (1 - c * e1) / std::sqrt(alpha);
      B = -c * e0 / std::sqrt(alpha);
      noise_var = gn == 1 ? 0.0 : method == Method::ddpm_beta ? beta : (1 - gn) / (1 - g) * beta;
    }
    m = A * m + B;
    v = A * A * v + noise_var;
  }
  return {m, std::sqrt(v)};
}

// ---- Monte Carlo statistics -------------------------------------------------------------------------------
struct Stats {
  double mean = 0, sd = 0;
  int64_t n = 0;
};
inline Stats stats(const Tensor& x) {
  const auto v = x.to_vector<double>();
  double s = 0, s2 = 0;
  for (double a : v) s += a;
  const double n = static_cast<double>(v.size()), m = s / n;
  for (double a : v) s2 += (a - m) * (a - m);
  return {m, std::sqrt(s2 / (n - 1)), static_cast<int64_t>(v.size())};
}

// Whether n iid draws with sample mean and sd `st` are consistent with `law`: the output of these chains is
// exactly Gaussian, so the sample mean has standard error sd/√n and the sample sd ≈ sd/√(2n); both must lie
// within `z` standard errors (z = 5: a false alarm has probability < 1e-6 per check).
inline bool law_matches(const Stats& st, Law law, double z = 5) {
  const double n = static_cast<double>(st.n);
  return std::abs(st.mean - law.mean) <= z * law.sd / std::sqrt(n) &&
         std::abs(st.sd - law.sd) <= z * law.sd / std::sqrt(2 * n);
}
inline std::string describe(const Stats& st, Law law) {
  return "sample mean " + std::to_string(st.mean) + " sd " + std::to_string(st.sd) + " vs law mean " +
         std::to_string(law.mean) + " sd " + std::to_string(law.sd) + " (n = " + std::to_string(st.n) + ")";
}

}  // namespace iris::test::gaussian
