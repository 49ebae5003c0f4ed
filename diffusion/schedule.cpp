// Noise schedules, sampling paths and level helpers (see schedule.h).
#include "diffusion/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"

namespace iris::diffusion {

namespace {
// γ_0 = 1 followed by γ_1..γ_T: strictly decreasing and positive; names the first bad value.
void check_gammas(const std::vector<double>& g, const char* who) {
  IRIS_CHECK(g.size() >= 2, who, ": a schedule needs at least one step (T >= 1)");
  IRIS_CHECK(g[0] == 1.0, who, ": gamma_0 must be 1, got ", g[0]);
  for (size_t t = 1; t < g.size(); ++t) {
    IRIS_CHECK(g[t] > 0.0, who, ": gamma_", t, " = ", g[t], " is not in (0, 1) (T = ", g.size() - 1, ")");
    IRIS_CHECK(
        g[t] < g[t - 1], who, ": gamma_", t, " = ", g[t], " is not below gamma_", t - 1, " = ", g[t - 1],
        t == 1 ? " (gamma_0 = 1 is implicit: list gamma_1..gamma_T)" : " (gammas must strictly decrease)");
  }
}

// Rows processed at once by the one-hot lookups: bounds the [rows, T] temporaries to ~4M elements.
int64_t rows_per_chunk(int64_t T) {
  return std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(T, 1));
}

// Applies `f` to row chunks of the flattened [M] tensors and assembles the [M] result in `out`.
template <class F>
void by_chunks(int64_t M, int64_t T, Tensor& out, F&& f) {
  const int64_t rows = rows_per_chunk(T);
  if (M <= rows) {
    out = f(0, M);
    return;
  }
  for (int64_t start = 0; start < M; start += rows) {
    const int64_t end = std::min(M, start + rows);
    out.slice(0, start, end).copy_(f(start, end));
  }
}
}  // namespace

NoiseSchedule::NoiseSchedule(std::vector<double> gammas, std::vector<double> betas, const char* who)
    : gammas_(std::move(gammas)), betas_(std::move(betas)) {
  check_gammas(gammas_, who);
}

NoiseSchedule NoiseSchedule::linear(double beta_start, double beta_end, int64_t T) {
  IRIS_CHECK(T >= 1, "NoiseSchedule::linear: T must be >= 1, got ", T);
  std::vector<double> g{1.0}, b{0.0};
  for (int64_t t = 1; t <= T; ++t) {
    const double beta = T == 1 ? beta_start
                               : beta_start + (beta_end - beta_start) * static_cast<double>(t - 1) /
                                                  static_cast<double>(T - 1);
    IRIS_CHECK(beta > 0.0 && beta < 1.0, "NoiseSchedule::linear: beta_", t, " = ", beta,
               " is not in (0, 1) (beta_start = ", beta_start, ", beta_end = ", beta_end, ", T = ", T, ")");
    b.push_back(beta);
    g.push_back(g.back() * (1.0 - beta));
  }
  return NoiseSchedule(std::move(g), std::move(b), "NoiseSchedule::linear");
}

NoiseSchedule NoiseSchedule::cosine(int64_t T, double s, double max_beta) {
  IRIS_CHECK(T >= 1, "NoiseSchedule::cosine: T must be >= 1, got ", T);
  IRIS_CHECK(s >= 0.0 && std::isfinite(s), "NoiseSchedule::cosine: offset s must be finite and >= 0, got ",
             s);
  IRIS_CHECK(max_beta > 0.0 && max_beta < 1.0, "NoiseSchedule::cosine: max_beta must be in (0, 1), got ",
             max_beta);
  auto f = [&](int64_t t) {
    const double c =
        std::cos((static_cast<double>(t) / static_cast<double>(T) + s) / (1.0 + s) * std::numbers::pi / 2.0);
    return c * c;
  };
  std::vector<double> g{1.0}, b{0.0};
  for (int64_t t = 1; t <= T; ++t) {
    const double beta = std::min(1.0 - f(t) / f(t - 1), max_beta);
    b.push_back(beta);
    g.push_back(g.back() * (1.0 - beta));
  }
  return NoiseSchedule(std::move(g), std::move(b), "NoiseSchedule::cosine");
}

NoiseSchedule NoiseSchedule::from_gammas(const std::vector<double>& gammas_1_to_T) {
  std::vector<double> g{1.0};
  g.insert(g.end(), gammas_1_to_T.begin(), gammas_1_to_T.end());
  check_gammas(g, "NoiseSchedule::from_gammas");
  std::vector<double> b{0.0};
  for (size_t t = 1; t < g.size(); ++t) b.push_back(1.0 - g[t] / g[t - 1]);
  return NoiseSchedule(std::move(g), std::move(b), "NoiseSchedule::from_gammas");
}

double NoiseSchedule::gamma(int64_t t) const {
  IRIS_CHECK(t >= 0 && t <= T(), "NoiseSchedule::gamma: step ", t, " is outside 0..", T());
  return gammas_[static_cast<size_t>(t)];
}

double NoiseSchedule::alpha(int64_t t) const {
  return 1.0 - beta(t);
}

double NoiseSchedule::beta(int64_t t) const {
  IRIS_CHECK(t >= 1 && t <= T(), "NoiseSchedule::beta: step ", t, " is outside 1..", T());
  return betas_[static_cast<size_t>(t)];
}

double NoiseSchedule::gamma_at(double s) const {
  IRIS_CHECK(s >= 0.0 && s <= static_cast<double>(T()), "NoiseSchedule::gamma_at: step ", s,
             " is outside [0, ", T(), "]");
  const int64_t t = std::clamp<int64_t>(static_cast<int64_t>(std::floor(s)) + 1, 1, T());
  const double frac = s - static_cast<double>(t - 1);
  return (1.0 - frac) * gammas_[t - 1] + frac * gammas_[t];  // exact at both ends of the step
}

Tensor NoiseSchedule::step_of(const Tensor& s) const {
  check_defined(s, "NoiseSchedule::step_of");
  check_floating(s, "NoiseSchedule::step_of");
  const int64_t M = s.numel(), T_ = T();
  if (T_ == 1) return Tensor::ones(s.shape(), s.dtype(), s.device());
  // Thresholds 1..T−1 as a [1, T−1] row; t − 1 counts those that s reaches.
  const Tensor thresholds = Tensor::arange(T_ - 1, s.dtype(), s.device(), 1.0).reshape({1, T_ - 1});
  const Tensor flat = s.reshape({M, 1});
  Tensor out = Tensor::empty({M}, s.dtype(), s.device());
  by_chunks(M, T_, out, [&](int64_t a, int64_t b) {
    return add(sum(ge(flat.slice(0, a, b), thresholds).to(s.dtype()), {1}), 1.0);
  });
  return out.reshape(s.shape());
}

Tensor NoiseSchedule::interpolate(const Tensor& t, const Tensor& frac) const {
  check_defined(t, "NoiseSchedule::interpolate", "t");
  check_defined(frac, "NoiseSchedule::interpolate", "frac");
  check_floating(t, "NoiseSchedule::interpolate");
  IRIS_CHECK(t.shape() == frac.shape() && t.dtype() == frac.dtype() && t.device() == frac.device(),
             "NoiseSchedule::interpolate: t and frac must match in shape, dtype and device, got ",
             t.summary(), " and ", frac.summary());
  const int64_t M = t.numel(), T_ = T();
  // Tables over k = 1..T as [1, T] rows: γ_{k−1} and γ_k.
  const std::vector<double> prev(gammas_.begin(), gammas_.end() - 1), cur(gammas_.begin() + 1, gammas_.end());
  const Tensor prev_row = Tensor::from_vector(prev, {1, T_}, t.dtype(), t.device());
  const Tensor cur_row = Tensor::from_vector(cur, {1, T_}, t.dtype(), t.device());
  const Tensor ks = Tensor::arange(T_, t.dtype(), t.device(), 1.0).reshape({1, T_});
  const Tensor t_col = t.reshape({M, 1});
  const Tensor f_flat = frac.reshape({M});
  Tensor out = Tensor::empty({M}, t.dtype(), t.device());
  by_chunks(M, T_, out, [&](int64_t a, int64_t b) {
    // Exactly one k matches each row, so the sums add one value to zeros: exact in any precision.
    const Tensor onehot = eq(t_col.slice(0, a, b), ks).to(t.dtype());
    const Tensor g_prev = sum(mul(onehot, prev_row), {1});
    const Tensor g_cur = sum(mul(onehot, cur_row), {1});
    const Tensor f = f_flat.slice(0, a, b);
    return add(mul(rsub(1.0, f), g_prev), mul(f, g_cur));  // exact at both ends of the step
  });
  return out.reshape(t.shape());
}

Tensor NoiseSchedule::gamma_at(const Tensor& s) const {
  check_defined(s, "NoiseSchedule::gamma_at");
  check_floating(s, "NoiseSchedule::gamma_at");
  const Tensor sc = clamp(s, 0.0, static_cast<double>(T()));
  const Tensor t = step_of(sc);
  const Tensor frac = clamp(sub(sc, sub(t, 1.0)), 0.0, 1.0);
  return interpolate(t, frac);
}

NoiseSchedule NoiseSchedule::respaced(int64_t K) const {
  IRIS_CHECK(K >= 1 && K <= T(), "NoiseSchedule::respaced: K must be in 1..T = ", T(), ", got ", K);
  std::vector<double> g;
  for (int64_t k = 1; k <= K; ++k) {
    const auto t = static_cast<int64_t>(
        std::llround(static_cast<double>(k) * static_cast<double>(T()) / static_cast<double>(K)));
    g.push_back(gammas_[static_cast<size_t>(t)]);
  }
  return from_gammas(g);
}

std::vector<double> NoiseSchedule::sampling_path() const {
  return {gammas_.rbegin(), gammas_.rend()};
}

void check_path(const std::vector<double>& path, const char* who) {
  IRIS_CHECK(path.size() >= 2, who, ": a sampling path needs at least 2 levels (start and end), got ",
             path.size());
  IRIS_CHECK(path[0] > 0.0 && path[0] < 1.0, who, ": path level 0 = ", path[0], " is not in (0, 1)");
  for (size_t i = 1; i < path.size(); ++i)
    IRIS_CHECK(path[i] > path[i - 1], who, ": path level ", i, " = ", path[i], " is not above level ", i - 1,
               " = ", path[i - 1], " (paths go from noisiest to cleanest: gamma increasing)");
  IRIS_CHECK(path.back() <= 1.0, who, ": the last path level ", path.back(), " is above 1");
}

std::vector<double> sub_path(const std::vector<double>& path, double start_gamma, double stop_gamma) {
  check_path(path, "sub_path");
  IRIS_CHECK(start_gamma > 0.0 && start_gamma < stop_gamma && stop_gamma <= 1.0,
             "sub_path: need 0 < start_gamma < stop_gamma <= 1, got start_gamma = ", start_gamma,
             " and stop_gamma = ", stop_gamma);
  std::vector<double> out{start_gamma};
  for (double g : path)
    if (g > start_gamma && g < stop_gamma) out.push_back(g);
  out.push_back(stop_gamma);
  return out;
}

double snr(double gamma) {
  return gamma / (1.0 - gamma);
}
double log_snr(double gamma) {
  return std::log(gamma) - std::log1p(-gamma);
}
double half_log_snr(double gamma) {
  return 0.5 * log_snr(gamma);
}
double gamma_from_log_snr(double l) {
  return l >= 0 ? 1.0 / (1.0 + std::exp(-l)) : std::exp(l) / (1.0 + std::exp(l));
}
double signal_scale(double gamma) {
  return std::sqrt(gamma);
}
double noise_scale(double gamma) {
  return std::sqrt(1.0 - gamma);
}

Tensor snr(const Tensor& gamma) {
  return div(gamma, rsub(1.0, gamma));
}
Tensor log_snr(const Tensor& gamma) {
  return sub(log(gamma), log(rsub(1.0, gamma)));
}

}  // namespace iris::diffusion
