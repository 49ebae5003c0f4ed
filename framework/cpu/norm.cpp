// CPU GroupNorm (+ fused SiLU) forward and backward.
//
// Work split (each output is computed by one thread in a fixed order, so results do not depend on the
// thread count):
// - per-(sample, group) statistics: one task per (n, g), sums accumulated in double per channel in position
//   order, then over the group's channels in channel order;
// - per-element outputs (y, dx): tasks over rows (n, s) of C channels, reading the (n, g) statistics;
// - dgamma / dbeta: tasks over channels, summing fixed per-(n, c) partial sums over n in order.
#include "framework/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "framework/cpu/parallel.h"
#include "framework/ops/dispatch.h"

namespace iris::cpu {

namespace {

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
};

Dims dims_of(const Tensor& x, int64_t groups) {
  Dims d;
  d.N = x.shape()[0];
  d.C = x.shape().back();
  d.S = d.N * d.C > 0 ? x.numel() / (d.N * d.C) : 0;
  d.G = groups;
  d.Cg = d.C / groups;
  d.M = d.S * d.Cg;
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

template <class T>
void forward_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& mean_t,
                  Tensor& rstd_t, int64_t groups, double eps, bool fuse_silu) {
  using St = typename stat_type<T>::type;
  const Dims d = dims_of(x, groups);
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  St* mean = mean_t.data<St>();
  St* rstd = rstd_t.data<St>();
  const std::vector<St> gam = param_values<St>(gamma, d.C, St(1));
  const std::vector<St> bet = param_values<St>(beta, d.C, St(0));

  // Statistics of each (n, g): two passes (mean, then squared deviations) for accuracy. One double
  // accumulator per channel of the group keeps the additions independent (and vectorisable); the channel
  // sums are then added in channel order.
  parallel_for(0, d.N * d.G, std::max<int64_t>(1, 32768 / std::max<int64_t>(d.M, 1)),
               [&](int64_t lo, int64_t hi) {
                 std::vector<double> acc(static_cast<size_t>(d.Cg));
                 for (int64_t p = lo; p < hi; ++p) {
                   const int64_t n = p / d.G, g = p % d.G;
                   const T* base = xp + n * d.S * d.C + g * d.Cg;
                   std::fill(acc.begin(), acc.end(), 0.0);
                   for (int64_t s = 0; s < d.S; ++s)
                     for (int64_t c = 0; c < d.Cg; ++c)
                       acc[c] += static_cast<double>(load_as<St>(base + s * d.C + c));
                   double sum = 0;
                   for (int64_t c = 0; c < d.Cg; ++c) sum += acc[c];
                   const double mu = d.M > 0 ? sum / static_cast<double>(d.M) : 0.0;
                   std::fill(acc.begin(), acc.end(), 0.0);
                   for (int64_t s = 0; s < d.S; ++s)
                     for (int64_t c = 0; c < d.Cg; ++c) {
                       const double dev = static_cast<double>(load_as<St>(base + s * d.C + c)) - mu;
                       acc[c] += dev * dev;
                     }
                   double ss = 0;
                   for (int64_t c = 0; c < d.Cg; ++c) ss += acc[c];
                   const double var = d.M > 0 ? ss / static_cast<double>(d.M) : 0.0;
                   mean[p] = static_cast<St>(mu);
                   rstd[p] = static_cast<St>(1.0 / std::sqrt(var + eps));
                 }
               });

  // Outputs, row by row of C channels, using the statistics as stored (rounded to St).
  auto rows = [&](auto silu_tag) {
    constexpr bool kSilu = decltype(silu_tag)::value;
    parallel_for(0, d.N * d.S, std::max<int64_t>(1, 32768 / d.C), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t n = r / d.S;
        const T* xr = xp + r * d.C;
        T* yr = yp + r * d.C;
        for (int64_t g = 0; g < d.G; ++g) {
          const St m = mean[n * d.G + g], rs = rstd[n * d.G + g];
          for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c) {
            const St h = normalized(load_as<St>(xr + c), m, rs) * gam[c] + bet[c];
            if constexpr (kSilu)
              store_as(yr + c, fn::unary<UnaryOp::silu>(h, St(0), St(0)));
            else
              store_as(yr + c, h);
          }
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
  const T* xp = x.data<T>();
  const T* gp = gy.data<T>();
  T* dxp = dx.defined() ? dx.data<T>() : nullptr;
  const St* mean = mean_t.data<St>();
  const St* rstd = rstd_t.data<St>();
  const std::vector<St> gam = param_values<St>(gamma, d.C, St(1));
  const std::vector<St> bet = param_values<St>(kSilu ? beta : Tensor(), d.C, St(0));
  // With SiLU, dL/dh (which costs an exp) is computed once in pass 1 and parked in dx when dx holds it
  // exactly (T == St); pass 2 then reads it back and overwrites it. bf16 recomputes it instead.
  constexpr bool kStash = kSilu && std::is_same_v<T, St>;
  const bool stash = kStash && dxp != nullptr;

  // gh = dL/dh at one element: gy itself, or gy * silu'(h) with h recomputed from xhat.
  auto grad_h = [&](St gyv, St xhat, int64_t c) -> St {
    if constexpr (kSilu)
      return fn::binary<BinaryOp::silu_bwd>(xhat * gam[c] + bet[c], gyv, St(0), St(0));
    else
      return gyv;
  };

  // Pass 1, per (n, g): per-channel partial sums P1[n, c] = sum_s gh, P2[n, c] = sum_s gh * xhat, and the
  // group terms for dx: c1 = sum(gh * gamma) / M, c2 = sum(gh * gamma * xhat) / M over the group.
  const int64_t NC = d.N * d.C;
  std::vector<double> part(static_cast<size_t>(2 * NC));
  std::vector<St> coef(static_cast<size_t>(2 * d.N * d.G));
  parallel_for(0, d.N * d.G, std::max<int64_t>(1, 16384 / std::max<int64_t>(d.M, 1)),
               [&](int64_t lo, int64_t hi) {
                 std::vector<double> p1(static_cast<size_t>(d.Cg)), p2(static_cast<size_t>(d.Cg));
                 for (int64_t p = lo; p < hi; ++p) {
                   const int64_t n = p / d.G, g = p % d.G, c0 = g * d.Cg;
                   const St m = mean[p], rs = rstd[p];
                   std::fill(p1.begin(), p1.end(), 0.0);
                   std::fill(p2.begin(), p2.end(), 0.0);
                   for (int64_t s = 0; s < d.S; ++s) {
                     const int64_t off = (n * d.S + s) * d.C + c0;
                     for (int64_t c = 0; c < d.Cg; ++c) {
                       const St xhat = normalized(load_as<St>(xp + off + c), m, rs);
                       const St gh = grad_h(load_as<St>(gp + off + c), xhat, c0 + c);
                       if constexpr (kStash)
                         if (stash) dxp[off + c] = gh;
                       p1[c] += static_cast<double>(gh);
                       p2[c] += static_cast<double>(gh) * static_cast<double>(xhat);
                     }
                   }
                   double a = 0, b = 0;
                   for (int64_t c = 0; c < d.Cg; ++c) {
                     part[n * d.C + c0 + c] = p1[c];
                     part[NC + n * d.C + c0 + c] = p2[c];
                     a += static_cast<double>(gam[c0 + c]) * p1[c];
                     b += static_cast<double>(gam[c0 + c]) * p2[c];
                   }
                   const double inv_m = d.M > 0 ? 1.0 / static_cast<double>(d.M) : 0.0;
                   coef[2 * p] = static_cast<St>(a * inv_m);
                   coef[2 * p + 1] = static_cast<St>(b * inv_m);
                 }
               });

  // Pass 2, per row: dx = rstd * (gamma * gh - c1 - xhat * c2).
  if (dxp) {
    parallel_for(0, d.N * d.S, std::max<int64_t>(1, 16384 / d.C), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t n = r / d.S;
        for (int64_t g = 0; g < d.G; ++g) {
          const int64_t p = n * d.G + g;
          const St m = mean[p], rs = rstd[p], c1 = coef[2 * p], c2 = coef[2 * p + 1];
          for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c) {
            const int64_t i = r * d.C + c;
            const St xhat = normalized(load_as<St>(xp + i), m, rs);
            St gh;
            if constexpr (kStash)
              gh = load_as<St>(dxp + i);
            else
              gh = grad_h(load_as<St>(gp + i), xhat, c);
            store_as(dxp + i, rs * (gam[c] * gh - c1 - xhat * c2));
          }
        }
      }
    });
  }

  // Pass 3, per channel: dbeta = sum_n P1, dgamma = sum_n P2.
  if (dgamma.defined() || dbeta.defined()) {
    St* dg = dgamma.defined() ? dgamma.data<St>() : nullptr;
    St* db = dbeta.defined() ? dbeta.data<St>() : nullptr;
    parallel_for(0, d.C, std::max<int64_t>(1, 65536 / std::max<int64_t>(d.N, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t c = lo; c < hi; ++c) {
                     double s1 = 0, s2 = 0;
                     for (int64_t n = 0; n < d.N; ++n) {
                       s1 += part[n * d.C + c];
                       s2 += part[NC + n * d.C + c];
                     }
                     if (db) db[c] = static_cast<St>(s1);
                     if (dg) dg[c] = static_cast<St>(s2);
                   }
                 });
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
