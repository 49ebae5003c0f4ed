// CPU GroupNorm (+ fused SiLU) forward and backward.
//
// Every pass walks rows of C contiguous channels (one row per spatial position), so the inner loops run
// over channels and vectorise; per-(n, g) statistics are expanded to per-(n, c) arrays first.
// Work split (results do not depend on the thread count):
// - reductions (statistics, backward sums): tasks over (sample, chunk of kRows rows); each task sums its
//   chunk per channel (in the statistics type, in row order) and stores the partial in double; partials are
//   then added in chunk order, and channels of a group in channel order;
// - elementwise outputs (y, dx): tasks over rows;
// - dgamma / dbeta: per channel, summing the per-(n, c) sums over n in order.
#include "framework/kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "framework/cpu/parallel.h"
#include "framework/kernels/dispatch.h"

namespace iris::cpu {

namespace {

constexpr int64_t kRows = 64;  // rows per reduction chunk: bounds the error of the inner float sums

// Statistics and affine parameters: double for f64 data, float otherwise.
template <class T>
struct stat_type {
  using type = float;
};
template <>
struct stat_type<double> {
  using type = double;
};

struct Dims {
  int64_t N, S, C, G, Cg, M;  // samples, positions per sample, channels, groups, channels per group, M = S*Cg
  int64_t chunks;             // reduction chunks per sample
};

Dims dims_of(const Tensor& x, int64_t groups) {
  Dims d;
  d.N = x.shape()[0];
  d.C = x.shape().back();
  d.S = d.N * d.C > 0 ? x.numel() / (d.N * d.C) : 0;
  d.G = groups;
  d.Cg = d.C / groups;
  d.M = d.S * d.Cg;
  d.chunks = (d.S + kRows - 1) / kRows;
  return d;
}

// gamma or beta as a host array of C values; `fill` (1 or 0) when the parameter is absent, so that the
// arithmetic is the same with and without it (x * 1 and x + 0 are exact).
template <class St>
std::vector<St> param_values(const Tensor& p, int64_t C, St fill) {
  if (!p.defined()) return std::vector<St>(static_cast<size_t>(C), fill);
  const St* src = p.data<St>();
  return std::vector<St>(src, src + C);
}

// The normalised value xhat of one element (h = xhat * gamma + beta). Forward and backward both compute it
// this way from the stored statistics, so the backward's recomputed value is bit-identical to the forward's.
template <class St>
inline St normalized(St x, St mean, St rstd) {
  return (x - mean) * rstd;
}

// Per-channel sums of f(row, c) over each chunk of rows of each sample, into part[(n * chunks + k) * C + c]
// (double), then reduced over chunks into out[n * C + c]. f is called with (pointer offset of the row, c).
template <class St, class F>
void chunked_channel_sums(const Dims& d, int nsums, std::vector<double>* out, F&& f) {
  std::vector<std::vector<double>> part(static_cast<size_t>(nsums));
  for (auto& p : part) p.assign(static_cast<size_t>(d.N * d.chunks * d.C), 0.0);
  parallel_for(0, d.N * d.chunks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<St> acc(static_cast<size_t>(nsums * d.C));
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / d.chunks, k = t % d.chunks;
      std::fill(acc.begin(), acc.end(), St(0));
      const int64_t s_end = std::min(d.S, (k + 1) * kRows);
      for (int64_t s = k * kRows; s < s_end; ++s) f((n * d.S + s) * d.C, n, acc.data());
      for (int j = 0; j < nsums; ++j)
        for (int64_t c = 0; c < d.C; ++c) part[j][t * d.C + c] = static_cast<double>(acc[j * d.C + c]);
    }
  });
  for (int j = 0; j < nsums; ++j) {
    out[j].assign(static_cast<size_t>(d.N * d.C), 0.0);
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t k = 0; k < d.chunks; ++k)
        for (int64_t c = 0; c < d.C; ++c) out[j][n * d.C + c] += part[j][(n * d.chunks + k) * d.C + c];
  }
}

// Per-(n, c) copies of per-(n, g) values.
template <class St>
std::vector<St> expand_groups(const St* v, const Dims& d) {
  std::vector<St> out(static_cast<size_t>(d.N * d.C));
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t c = 0; c < d.C; ++c) out[n * d.C + c] = v[n * d.G + c / d.Cg];
  return out;
}

// Row kernels for f32 data, written as plain loops over channels with restrict pointers so that they
// vectorise (the generic lambdas below serve bf16 and f64). Same arithmetic, in the same order, as the
// generic path: results are identical.
template <bool kSilu>
void fwd_row_f32(const float* __restrict x, float* __restrict y, const float* __restrict m,
                 const float* __restrict rs, const float* __restrict gam, const float* __restrict bet, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const float h = normalized(x[c], m[c], rs[c]) * gam[c] + bet[c];
    if constexpr (kSilu)
      y[c] = fn::unary<UnaryOp::silu>(h, 0.0f, 0.0f);
    else
      y[c] = h;
  }
}

// a1 += gh, a2 += gh * xhat, and (kStash) stash = gh, for one row; gh = dL/dh.
template <bool kSilu, bool kStash>
void bwd_sums_row_f32(const float* __restrict x, const float* __restrict gy, const float* __restrict m,
                      const float* __restrict rs, const float* __restrict gam, const float* __restrict bet,
                      float* __restrict stash, float* __restrict a1, float* __restrict a2, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const float xhat = normalized(x[c], m[c], rs[c]);
    float gh = gy[c];
    if constexpr (kSilu) gh = fn::binary<BinaryOp::silu_bwd>(xhat * gam[c] + bet[c], gh, 0.0f, 0.0f);
    if constexpr (kStash) stash[c] = gh;
    a1[c] += gh;
    a2[c] += gh * xhat;
  }
}

// dx = rstd * (gamma * gh - c1 - xhat * c2) for one row, gh read from the stash (dx itself) or recomputed.
template <bool kSilu, bool kStashed>
void bwd_dx_row_f32(const float* __restrict x, const float* __restrict gy, const float* __restrict m,
                    const float* __restrict rs, const float* __restrict gam, const float* __restrict bet,
                    const float* __restrict c1, const float* __restrict c2, float* dx, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const float xhat = normalized(x[c], m[c], rs[c]);
    float gh;
    if constexpr (kStashed) {
      gh = dx[c];
    } else {
      gh = gy[c];
      if constexpr (kSilu) gh = fn::binary<BinaryOp::silu_bwd>(xhat * gam[c] + bet[c], gh, 0.0f, 0.0f);
    }
    dx[c] = rs[c] * (gam[c] * gh - c1[c] - xhat * c2[c]);
  }
}

template <class T>
void forward_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& mean_t,
                  Tensor& rstd_t, int64_t groups, double eps, bool fuse_silu) {
  using St = typename stat_type<T>::type;
  const Dims d = dims_of(x, groups);
  const T* __restrict__ xp = x.data<T>();
  T* __restrict__ yp = y.data<T>();
  St* mean = mean_t.data<St>();
  St* rstd = rstd_t.data<St>();
  const std::vector<St> gam = param_values<St>(gamma, d.C, St(1));
  const std::vector<St> bet = param_values<St>(beta, d.C, St(0));
  const int64_t C = d.C;

  // Statistics: two passes (the mean, then squared deviations from it) for accuracy.
  std::vector<double> sums[1];
  chunked_channel_sums<St>(d, 1, sums, [&](int64_t off, int64_t, St* acc) {
    for (int64_t c = 0; c < C; ++c) acc[c] += load_as<St>(xp + off + c);
  });
  std::vector<double> mu(static_cast<size_t>(d.N * d.G));
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t g = 0; g < d.G; ++g) {
      double s = 0;
      for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c) s += sums[0][n * C + c];
      mu[n * d.G + g] = d.M > 0 ? s / static_cast<double>(d.M) : 0.0;
    }
  std::vector<St> mu_c(static_cast<size_t>(d.N * C));
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t c = 0; c < C; ++c) mu_c[n * C + c] = static_cast<St>(mu[n * d.G + c / d.Cg]);
  std::vector<double> sq[1];
  chunked_channel_sums<St>(d, 1, sq, [&](int64_t off, int64_t n, St* acc) {
    const St* m = mu_c.data() + n * C;
    for (int64_t c = 0; c < C; ++c) {
      const St dev = load_as<St>(xp + off + c) - m[c];
      acc[c] += dev * dev;
    }
  });
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t g = 0; g < d.G; ++g) {
      // The squared deviations were taken from the mean rounded to St: correct the variance for it exactly.
      const double shift = static_cast<double>(static_cast<St>(mu[n * d.G + g])) - mu[n * d.G + g];
      double ss = 0;
      for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c) ss += sq[0][n * C + c];
      const double var = d.M > 0 ? std::max(0.0, ss / static_cast<double>(d.M) - shift * shift) : 0.0;
      mean[n * d.G + g] = static_cast<St>(mu[n * d.G + g]);
      rstd[n * d.G + g] = static_cast<St>(1.0 / std::sqrt(var + eps));
    }

  // Outputs, row by row of C channels, using the statistics as stored (rounded to St).
  const std::vector<St> mean_c = expand_groups(mean, d), rstd_c = expand_groups(rstd, d);
  auto rows = [&](auto silu_tag) {
    constexpr bool kSilu = decltype(silu_tag)::value;
    parallel_for(0, d.N * d.S, std::max<int64_t>(1, 32768 / C), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t n = r / d.S;
        const T* __restrict__ xr = xp + r * C;
        T* __restrict__ yr = yp + r * C;
        const St* m = mean_c.data() + n * C;
        const St* rs = rstd_c.data() + n * C;
        if constexpr (std::is_same_v<T, float>) {
          fwd_row_f32<kSilu>(xr, yr, m, rs, gam.data(), bet.data(), C);
          continue;
        }
        for (int64_t c = 0; c < C; ++c) {
          const St h = normalized(load_as<St>(xr + c), m[c], rs[c]) * gam[c] + bet[c];
          if constexpr (kSilu)
            store_as(yr + c, fn::unary<UnaryOp::silu>(h, St(0), St(0)));
          else
            store_as(yr + c, h);
        }
      }
    });
  };
  if (fuse_silu)
    rows(std::true_type{});
  else
    rows(std::false_type{});
}

template <class T, bool kSilu>
void backward_impl(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                   const Tensor& mean_t, const Tensor& rstd_t, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                   int64_t groups) {
  using St = typename stat_type<T>::type;
  const Dims d = dims_of(x, groups);
  const int64_t C = d.C;
  const T* __restrict__ xp = x.data<T>();
  const T* __restrict__ gp = gy.data<T>();
  T* __restrict__ dxp = dx.defined() ? dx.data<T>() : nullptr;
  const std::vector<St> gam = param_values<St>(gamma, C, St(1));
  const std::vector<St> bet = param_values<St>(kSilu ? beta : Tensor(), C, St(0));
  const std::vector<St> mean_c = expand_groups(mean_t.data<St>(), d), rstd_c = expand_groups(rstd_t.data<St>(), d);
  // With SiLU, dL/dh (which costs an exp) is computed once in pass 1 and parked in dx when dx holds it
  // exactly (T == St); pass 2 then reads it back and overwrites it. bf16 recomputes it instead.
  constexpr bool kStash = kSilu && std::is_same_v<T, St>;
  const bool stash = kStash && dxp != nullptr;

  // gh = dL/dh for one row: gy itself, or gy * silu'(h) with h recomputed from xhat.
  auto row_grad = [&](int64_t off, int64_t n, int64_t c) {
    const St xhat = normalized(load_as<St>(xp + off + c), mean_c[n * C + c], rstd_c[n * C + c]);
    St gh = load_as<St>(gp + off + c);
    if constexpr (kSilu) gh = fn::binary<BinaryOp::silu_bwd>(xhat * gam[c] + bet[c], gh, St(0), St(0));
    return std::pair<St, St>(gh, xhat);
  };

  // Pass 1: per-(n, c) sums P1 = sum_s gh, P2 = sum_s gh * xhat.
  std::vector<double> P[2];
  chunked_channel_sums<St>(d, 2, P, [&](int64_t off, int64_t n, St* acc) {
    St* a1 = acc;
    St* a2 = acc + C;
    if constexpr (std::is_same_v<T, float>) {
      const float* m = mean_c.data() + n * C;
      const float* rs = rstd_c.data() + n * C;
      if (stash)
        bwd_sums_row_f32<kSilu, kStash>(xp + off, gp + off, m, rs, gam.data(), bet.data(), dxp + off, a1, a2, C);
      else
        bwd_sums_row_f32<kSilu, false>(xp + off, gp + off, m, rs, gam.data(), bet.data(), nullptr, a1, a2, C);
      return;
    }
    for (int64_t c = 0; c < C; ++c) {
      const auto [gh, xhat] = row_grad(off, n, c);
      if constexpr (kStash)
        if (stash) dxp[off + c] = gh;
      a1[c] += gh;
      a2[c] += gh * xhat;
    }
  });

  // Pass 2, per row: dx = rstd * (gamma * gh - c1 - xhat * c2) with the group terms
  // c1 = sum(gh * gamma) / M and c2 = sum(gh * gamma * xhat) / M.
  if (dxp) {
    std::vector<St> c1(static_cast<size_t>(d.N * C)), c2(static_cast<size_t>(d.N * C));
    const double inv_m = d.M > 0 ? 1.0 / static_cast<double>(d.M) : 0.0;
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t g = 0; g < d.G; ++g) {
        double a = 0, b = 0;
        for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c) {
          a += static_cast<double>(gam[c]) * P[0][n * C + c];
          b += static_cast<double>(gam[c]) * P[1][n * C + c];
        }
        for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c) {
          c1[n * C + c] = static_cast<St>(a * inv_m);
          c2[n * C + c] = static_cast<St>(b * inv_m);
        }
      }
    parallel_for(0, d.N * d.S, std::max<int64_t>(1, 16384 / C), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t n = r / d.S, off = r * C;
        if constexpr (std::is_same_v<T, float>) {
          const float* m = mean_c.data() + n * C;
          const float* rs = rstd_c.data() + n * C;
          if (stash)
            bwd_dx_row_f32<kSilu, kStash>(xp + off, gp + off, m, rs, gam.data(), bet.data(), c1.data() + n * C,
                                          c2.data() + n * C, dxp + off, C);
          else
            bwd_dx_row_f32<kSilu, false>(xp + off, gp + off, m, rs, gam.data(), bet.data(), c1.data() + n * C,
                                         c2.data() + n * C, dxp + off, C);
          continue;
        }
        for (int64_t c = 0; c < C; ++c) {
          St gh, xhat;
          if constexpr (kStash) {
            gh = load_as<St>(dxp + off + c);
            xhat = normalized(load_as<St>(xp + off + c), mean_c[n * C + c], rstd_c[n * C + c]);
          } else {
            const auto v = row_grad(off, n, c);
            gh = v.first;
            xhat = v.second;
          }
          store_as(dxp + off + c,
                   rstd_c[n * C + c] * (gam[c] * gh - c1[n * C + c] - xhat * c2[n * C + c]));
        }
      }
    });
  }

  // Pass 3, per channel: dbeta = sum_n P1, dgamma = sum_n P2.
  St* dg = dgamma.defined() ? dgamma.data<St>() : nullptr;
  St* db = dbeta.defined() ? dbeta.data<St>() : nullptr;
  for (int64_t c = 0; c < C && (dg || db); ++c) {
    double s1 = 0, s2 = 0;
    for (int64_t n = 0; n < d.N; ++n) {
      s1 += P[0][n * C + c];
      s2 += P[1][n * C + c];
    }
    if (db) db[c] = static_cast<St>(s1);
    if (dg) dg[c] = static_cast<St>(s2);
  }
}

}  // namespace

void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& mean,
                        Tensor& rstd, int64_t groups, double eps, bool fuse_silu) {
  dispatch_floating(x.dtype(), "group_norm", [&](auto tag) {
    forward_impl<decltype(tag)>(x, gamma, beta, y, mean, rstd, groups, eps, fuse_silu);
  });
}

void group_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                         int64_t groups, bool fuse_silu) {
  dispatch_floating(x.dtype(), "group_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    if (fuse_silu)
      backward_impl<T, true>(gy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, groups);
    else
      backward_impl<T, false>(gy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, groups);
  });
}

}  // namespace iris::cpu
