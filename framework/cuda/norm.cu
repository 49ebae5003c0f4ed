// CUDA GroupNorm (+ fused SiLU), forward and backward (framework/kernels/norm.h). Memory-bound: every kernel
// streams x (and gy) once with 16-byte loads, and per-element work is a few FMAs.
//
// Geometry shared by all streaming kernels: x is [N, S, C]. A block covers one sample n, one chunk of
// positions [s0, s1) and one tile of L channel vectors (V channels each, a 16-byte load; V = 1 when C is not
// a multiple of V or a pointer is misaligned). Its L*R threads are R rows by L lanes: lane l owns the channel
// vector c0 = (tile*L + l)*V for the whole block, row r takes positions s0 + r, s0 + r + R, ... Consecutive
// lanes read consecutive 16-byte vectors of one position, so a warp reads whole rows of C. R is a power of
// two (the in-block reductions are trees) and L*R <= 256. The number of chunks is chosen so that the grid
// is about two waves (a single sample with a few large groups still fills the GPU), with at least 4 rows per
// thread.
//
// Forward (3 launches):
//  1. stats: each thread runs Welford over its rows for each of its V channels (f32, f64 for f64 data);
//     the R rows of a lane are merged by a tree (Chan's formula, in double) and the block writes
//     partial[n, chunk, c] = (mean, M2) over the chunk's positions;
//  2. finish: one block per (n, g) merges the chunks x channels of its group in a fixed order (double) into
//     mean and rstd = 1 / sqrt(M2 / M + eps);
//  3. apply: y = silu?((x - mean) * rstd * gamma + beta) with per-lane constants held in registers.
// Backward (up to 4 launches; the normalised value is recomputed from x, mean and rstd):
//  1. partials: per (n, chunk, c): P1 = sum gh, P2 = sum gh * xhat, gh = dL/dh (gy, times silu'(h) when
//     fused), per-thread sums then a tree in double;
//  2. coefficients (if dx): per (n, g): c1 = sum gamma * P1 / M, c2 = sum gamma * P2 / M (double);
//  3. dgamma / dbeta (if wanted): one warp per channel sums P2 / P1 over (n, chunk) in a fixed order;
//  4. dx = rstd * (gamma * gh - c1 - xhat * c2).
#include <algorithm>

#include "framework/cuda/block_reduce.cuh"
#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/elementwise.h"
#include "framework/kernels/norm.h"

namespace iris::cuda {

namespace {

// Statistics type: double for f64 data, float otherwise.
template <class T>
using stat_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

struct NormGeom {
  int64_t N = 0, S = 0, C = 0, G = 0, Cg = 0;
  int V = 1;           // channels per vector
  int L = 1, R = 1;    // lanes (channel vectors) and rows per block
  int64_t CV = 0;      // channel vectors per position: C / V
  int64_t tiles = 1;   // channel tiles: ceil(CV / L)
  int64_t chunk = 1;   // positions per chunk
  int64_t chunks = 1;  // ceil(S / chunk)
  int64_t blocks() const { return N * chunks * tiles; }
};

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

NormGeom plan_geom(const Tensor& x, int64_t groups, int V, const Context& ctx) {
  NormGeom g;
  g.N = x.shape()[0];
  g.C = x.shape().back();
  g.S = x.numel() / (g.N * g.C);
  g.G = groups;
  g.Cg = g.C / groups;
  g.V = V;
  g.CV = g.C / V;
  g.L = static_cast<int>(std::min<int64_t>(g.CV, kThreads));
  g.R = 1;
  while (g.L * g.R * 2 <= kThreads) g.R *= 2;
  g.tiles = ceil_div(g.CV, g.L);
  const int64_t per_sm = std::max(1, ctx.max_threads_per_sm / (g.L * g.R));
  const int64_t target = 2 * static_cast<int64_t>(ctx.sm_count) * per_sm;
  const int64_t max_chunks = std::max<int64_t>(1, ceil_div(g.S, 4 * int64_t{g.R}));
  const int64_t want = std::clamp<int64_t>(ceil_div(target, g.N * g.tiles), 1, max_chunks);
  g.chunk = ceil_div(g.S, want);
  g.chunks = ceil_div(g.S, g.chunk);
  IRIS_CHECK(g.C < (int64_t{1} << 31) && g.blocks() < (int64_t{1} << 31), "group_norm: input ", x.summary(),
             " is too large for the CUDA kernels (C and the grid must stay below 2^31)");
  return g;
}

// Where a thread of a streaming kernel works (see the top of the file).
struct Place {
  int64_t n, k, s0, s1;  // sample, chunk, positions [s0, s1)
  int r, l;              // row and lane
  int64_t c0;            // first channel of the lane's vector
  bool active;           // the lane's vector exists (the last tile may be partial)
};
__device__ __forceinline__ Place place_of(const NormGeom& g) {
  Place p;
  // 32-bit divisions (the grid has fewer than 2^31 blocks; 64-bit ones are slow subroutine calls).
  const uint32_t b = blockIdx.x, tiles = static_cast<uint32_t>(g.tiles),
                 chunks = static_cast<uint32_t>(g.chunks);
  const int64_t tile = b % tiles;
  p.k = (b / tiles) % chunks;
  p.n = b / tiles / chunks;
  p.s0 = p.k * g.chunk;
  p.s1 = min(g.S, p.s0 + g.chunk);
  p.l = threadIdx.x % g.L;
  p.r = threadIdx.x / g.L;
  const int64_t cv = tile * g.L + p.l;
  p.active = cv < g.CV;
  p.c0 = cv * g.V;
  return p;
}

// Positions of the chunk that rows r, r + st, r + 2 st, ... (st a power of two dividing R) take together.
__device__ __forceinline__ double rows_count(int64_t len, int r, int st) {
  return len > r ? static_cast<double>((len - r + st - 1) / st) : 0.0;
}

template <class T, int V>
__device__ __forceinline__ void load_vec(const T* p, stat_t<T> (&out)[V]) {
  if constexpr (V == 1) {
    out[0] = load_as<stat_t<T>>(p);
  } else {
    const Vec<T, V> v = *reinterpret_cast<const Vec<T, V>*>(p);
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = load_as<stat_t<T>>(&v.v[j]);
  }
}
template <class T, int V>
__device__ __forceinline__ void store_vec(T* p, const stat_t<T> (&in)[V]) {
  if constexpr (V == 1) {
    store_as(p, in[0]);
  } else {
    Vec<T, V> v;
#pragma unroll
    for (int j = 0; j < V; ++j) store_as(&v.v[j], in[j]);
    *reinterpret_cast<Vec<T, V>*>(p) = v;
  }
}

// (count, mean, M2) merge of Chan et al.: a <- a + b.
__device__ __forceinline__ void chan_merge(double& na, double& ma, double& qa, double nb, double mb,
                                           double qb) {
  if (nb == 0.0) return;
  if (na == 0.0) {
    na = nb;
    ma = mb;
    qa = qb;
    return;
  }
  const double n = na + nb, d = mb - ma, f = nb / n;
  ma += d * f;
  qa += qb + d * d * na * f;
  na = n;
}

// ---- forward ----------------------------------------------------------------------------------------------

// partial[(n * chunks + k) * C + c] = (mean, M2) of channel c over the chunk's positions.
template <class T, int V>
__global__ void __launch_bounds__(kThreads)
    gn_stats_kernel(const T* __restrict__ x, NormGeom g, double2* __restrict__ partial) {
  using St = stat_t<T>;
  __shared__ double2 sh[kThreads * V];
  const Place p = place_of(g);
  St mean[V], m2[V];
#pragma unroll
  for (int j = 0; j < V; ++j) mean[j] = m2[j] = St(0);
  if (p.active) {
    St cnt = 0;
    for (int64_t s = p.s0 + p.r; s < p.s1; s += g.R) {
      St v[V];
      load_vec<T, V>(x + (p.n * g.S + s) * g.C + p.c0, v);
      cnt += St(1);
      const St inv = St(1) / cnt;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const St d = v[j] - mean[j];
        mean[j] += d * inv;
        m2[j] += d * (v[j] - mean[j]);
      }
    }
  }
  double2* mine = sh + (p.r * g.L + p.l) * V;
#pragma unroll
  for (int j = 0; j < V; ++j) mine[j] = make_double2(mean[j], m2[j]);
  const int64_t len = p.s1 - p.s0;
  block_tree_reduce(p.r, g.R, [&](int o) {  // over the R rows of each lane
    const double na = rows_count(len, p.r, 2 * o), nb = rows_count(len, p.r + o, 2 * o);
    const double2* other = sh + ((p.r + o) * g.L + p.l) * V;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      double n = na, m = mine[j].x, q = mine[j].y;
      chan_merge(n, m, q, nb, other[j].x, other[j].y);
      mine[j] = make_double2(m, q);
    }
  });
  if (p.r == 0 && p.active) {
    double2* out = partial + (p.n * g.chunks + p.k) * g.C + p.c0;
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = mine[j];
  }
}

// One block per (n, group): merges the chunks x channels of the group, in a fixed order.
template <class St>
__global__ void __launch_bounds__(kThreads)
    gn_stats_finish_kernel(const double2* __restrict__ partial, NormGeom g, double eps, St* __restrict__ mean,
                           St* __restrict__ rstd) {
  __shared__ double shn[kThreads], shm[kThreads], shq[kThreads];
  const int64_t ng = blockIdx.x, n = ng / g.G, grp = ng % g.G;
  const int64_t items = g.chunks * g.Cg;
  double cn = 0, cm = 0, cq = 0;
  for (int64_t i = threadIdx.x; i < items; i += kThreads) {
    const int64_t k = i / g.Cg, c = grp * g.Cg + i % g.Cg;
    const double cnt = static_cast<double>(min(g.S, (k + 1) * g.chunk) - k * g.chunk);
    const double2 v = partial[(n * g.chunks + k) * g.C + c];
    chan_merge(cn, cm, cq, cnt, v.x, v.y);
  }
  const int t = threadIdx.x;
  shn[t] = cn;
  shm[t] = cm;
  shq[t] = cq;
  block_tree_reduce(t, kThreads, [&](int o) {
    double a = shn[t], m = shm[t], q = shq[t];
    chan_merge(a, m, q, shn[t + o], shm[t + o], shq[t + o]);
    shn[t] = a;
    shm[t] = m;
    shq[t] = q;
  });
  if (threadIdx.x == 0) {
    const double var = shn[0] > 0 ? max(shq[0] / shn[0], 0.0) : 0.0;
    mean[ng] = static_cast<St>(shm[0]);
    rstd[ng] = static_cast<St>(1.0 / sqrt(var + eps));
  }
}

// The per-lane constants of a streaming kernel: statistics of each channel's group and the affine params.
template <class St, int V>
struct LaneParams {
  St m[V], rs[V], ga[V], be[V];
};
template <class St, int V>
__device__ __forceinline__ LaneParams<St, V> lane_params(const NormGeom& g, const Place& p, const St* mean,
                                                         const St* rstd, const St* gamma, const St* beta) {
  LaneParams<St, V> lp;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t c = p.c0 + j;
    const int64_t ng = p.n * g.G + static_cast<uint32_t>(c) / static_cast<uint32_t>(g.Cg);  // C < 2^31
    lp.m[j] = mean[ng];
    lp.rs[j] = rstd[ng];
    lp.ga[j] = gamma ? gamma[c] : St(1);
    lp.be[j] = beta ? beta[c] : St(0);
  }
  return lp;
}

template <class T, int V, bool SILU>
__global__ void __launch_bounds__(kThreads)
    gn_apply_kernel(const T* __restrict__ x, T* __restrict__ y, NormGeom g,
                    const stat_t<T>* __restrict__ mean, const stat_t<T>* __restrict__ rstd,
                    const stat_t<T>* __restrict__ gamma, const stat_t<T>* __restrict__ beta) {
  using St = stat_t<T>;
  const Place p = place_of(g);
  if (!p.active) return;
  const LaneParams<St, V> lp = lane_params<St, V>(g, p, mean, rstd, gamma, beta);
  for (int64_t s = p.s0 + p.r; s < p.s1; s += g.R) {
    const int64_t off = (p.n * g.S + s) * g.C + p.c0;
    St v[V];
    load_vec<T, V>(x + off, v);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const St h = (v[j] - lp.m[j]) * lp.rs[j] * lp.ga[j] + lp.be[j];
      v[j] = SILU ? fn::unary<UnaryOp::silu>(h, St(0), St(0)) : h;
    }
    store_vec<T, V>(y + off, v);
  }
}

// ---- backward ---------------------------------------------------------------------------------------------

// dL/dh at one element given gy and xhat.
template <bool SILU, class St>
__device__ __forceinline__ St grad_h(St gy, St xhat, St ga, St be) {
  if constexpr (SILU)
    return fn::binary<BinaryOp::silu_bwd>(xhat * ga + be, gy, St(0), St(0));
  else
    return gy;
}

// partial[(n * chunks + k) * C + c] = (sum gh, sum gh * xhat) over the chunk's positions.
template <class T, int V, bool SILU>
__global__ void __launch_bounds__(kThreads)
    gn_bwd_partials_kernel(const T* __restrict__ gy, const T* __restrict__ x, NormGeom g,
                           const stat_t<T>* __restrict__ mean, const stat_t<T>* __restrict__ rstd,
                           const stat_t<T>* __restrict__ gamma, const stat_t<T>* __restrict__ beta,
                           double2* __restrict__ partial) {
  using St = stat_t<T>;
  __shared__ double2 sh[kThreads * V];
  const Place p = place_of(g);
  St p1[V], p2[V];
#pragma unroll
  for (int j = 0; j < V; ++j) p1[j] = p2[j] = St(0);
  if (p.active) {
    const LaneParams<St, V> lp = lane_params<St, V>(g, p, mean, rstd, gamma, beta);
    for (int64_t s = p.s0 + p.r; s < p.s1; s += g.R) {
      const int64_t off = (p.n * g.S + s) * g.C + p.c0;
      St xv[V], gv[V];
      load_vec<T, V>(x + off, xv);
      load_vec<T, V>(gy + off, gv);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const St xhat = (xv[j] - lp.m[j]) * lp.rs[j];
        const St gh = grad_h<SILU>(gv[j], xhat, lp.ga[j], lp.be[j]);
        p1[j] += gh;
        p2[j] += gh * xhat;
      }
    }
  }
  double2* mine = sh + (p.r * g.L + p.l) * V;
#pragma unroll
  for (int j = 0; j < V; ++j) mine[j] = make_double2(p1[j], p2[j]);
  block_tree_reduce(p.r, g.R, [&](int o) {  // over the R rows of each lane
    const double2* other = sh + ((p.r + o) * g.L + p.l) * V;
#pragma unroll
    for (int j = 0; j < V; ++j) mine[j] = make_double2(mine[j].x + other[j].x, mine[j].y + other[j].y);
  });
  if (p.r == 0 && p.active) {
    double2* out = partial + (p.n * g.chunks + p.k) * g.C + p.c0;
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = mine[j];
  }
}

// One block per (n, group): coef[2 ng] = c1 = sum gamma * P1 / M, coef[2 ng + 1] = c2 = sum gamma * P2 / M.
template <class St>
__global__ void __launch_bounds__(kThreads)
    gn_bwd_coef_kernel(const double2* __restrict__ partial, NormGeom g, const St* __restrict__ gamma,
                       St* __restrict__ coef) {
  __shared__ double sha[kThreads], shb[kThreads];
  const int64_t ng = blockIdx.x, n = ng / g.G, grp = ng % g.G;
  const int64_t items = g.chunks * g.Cg;
  double a = 0, b = 0;
  for (int64_t i = threadIdx.x; i < items; i += kThreads) {
    const int64_t k = i / g.Cg, c = grp * g.Cg + i % g.Cg;
    const double ga = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double2 v = partial[(n * g.chunks + k) * g.C + c];
    a += ga * v.x;
    b += ga * v.y;
  }
  const int t = threadIdx.x;
  sha[t] = a;
  shb[t] = b;
  block_tree_reduce(t, kThreads, [&](int o) {
    sha[t] += sha[t + o];
    shb[t] += shb[t + o];
  });
  if (threadIdx.x == 0) {
    const double inv_m = 1.0 / static_cast<double>(g.S * g.Cg);
    coef[2 * ng] = static_cast<St>(sha[0] * inv_m);
    coef[2 * ng + 1] = static_cast<St>(shb[0] * inv_m);
  }
}

// One warp per channel: dbeta[c] = sum over (n, chunk) of P1, dgamma[c] = sum of P2 (either may be null).
template <class St>
__global__ void __launch_bounds__(kThreads)
    gn_bwd_params_kernel(const double2* __restrict__ partial, NormGeom g, St* __restrict__ dgamma,
                         St* __restrict__ dbeta) {
  const int64_t c = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (c >= g.C) return;  // whole warps leave together (c is uniform within a warp)
  const int64_t items = g.N * g.chunks;
  double a = 0, b = 0;
  for (int64_t i = lane; i < items; i += 32) {
    const double2 v = partial[i * g.C + c];
    a += v.x;
    b += v.y;
  }
#pragma unroll
  for (int o = 16; o > 0; o /= 2) {
    a += __shfl_down_sync(0xffffffffu, a, o);
    b += __shfl_down_sync(0xffffffffu, b, o);
  }
  if (lane == 0) {
    if (dbeta) dbeta[c] = static_cast<St>(a);
    if (dgamma) dgamma[c] = static_cast<St>(b);
  }
}

template <class T, int V, bool SILU>
__global__ void __launch_bounds__(kThreads)
    gn_bwd_dx_kernel(const T* __restrict__ gy, const T* __restrict__ x, NormGeom g,
                     const stat_t<T>* __restrict__ mean, const stat_t<T>* __restrict__ rstd,
                     const stat_t<T>* __restrict__ gamma, const stat_t<T>* __restrict__ beta,
                     const stat_t<T>* __restrict__ coef, T* __restrict__ dx) {
  using St = stat_t<T>;
  const Place p = place_of(g);
  if (!p.active) return;
  const LaneParams<St, V> lp = lane_params<St, V>(g, p, mean, rstd, gamma, beta);
  St c1[V], c2[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t ng = p.n * g.G + static_cast<uint32_t>(p.c0 + j) / static_cast<uint32_t>(g.Cg);
    c1[j] = coef[2 * ng];
    c2[j] = coef[2 * ng + 1];
  }
  for (int64_t s = p.s0 + p.r; s < p.s1; s += g.R) {
    const int64_t off = (p.n * g.S + s) * g.C + p.c0;
    St xv[V], gv[V];
    load_vec<T, V>(x + off, xv);
    load_vec<T, V>(gy + off, gv);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const St xhat = (xv[j] - lp.m[j]) * lp.rs[j];
      const St gh = grad_h<SILU>(gv[j], xhat, lp.ga[j], lp.be[j]);
      xv[j] = lp.rs[j] * (lp.ga[j] * gh - c1[j] - xhat * c2[j]);
    }
    store_vec<T, V>(dx + off, xv);
  }
}

// Calls f(integral_constant<int, V>) with the vector width usable for all `ptrs` (16-byte loads when C is a
// multiple of 16 / sizeof(T) and every pointer is 16-byte aligned, else 1).
template <class T, class F>
void with_vector_width(int64_t C, std::initializer_list<const void*> ptrs, F&& f) {
  constexpr int V = 16 / sizeof(T);
  bool vec = C % V == 0;
  for (const void* q : ptrs) vec = vec && aligned16(q);
  if (vec)
    f(std::integral_constant<int, V>{});
  else
    f(std::integral_constant<int, 1>{});
}

template <class St>
const St* opt_data(const Tensor& t) {
  return t.defined() ? t.data<St>() : nullptr;
}
template <class St>
St* opt_data_mut(Tensor& t) {
  return t.defined() ? t.data<St>() : nullptr;
}

template <class T>
void forward_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& mean,
                  Tensor& rstd, int64_t groups, double eps, bool fuse_silu, Context& ctx, Stream stream) {
  using St = stat_t<T>;
  const int64_t C = x.shape().back();
  with_vector_width<T>(C, {x.data_ptr(), y.data_ptr()}, [&](auto vtag) {
    constexpr int V = decltype(vtag)::value;
    const NormGeom g = plan_geom(x, groups, V, ctx);
    Tensor partial = Tensor::empty({g.N * g.chunks * g.C * 2}, DType::f64, x.device());
    auto* pp = reinterpret_cast<double2*>(partial.data_ptr());
    const auto threads = static_cast<unsigned>(g.L * g.R);
    const auto blocks = static_cast<unsigned>(g.blocks());
    gn_stats_kernel<T, V><<<blocks, threads, 0, stream>>>(x.data<T>(), g, pp);
    IRIS_CUDA_CHECK_LAUNCH("cuda::group_norm_forward (statistics)");
    gn_stats_finish_kernel<St><<<static_cast<unsigned>(g.N * g.G), kThreads, 0, stream>>>(
        pp, g, eps, mean.data<St>(), rstd.data<St>());
    IRIS_CUDA_CHECK_LAUNCH("cuda::group_norm_forward (statistics, combine)");
    auto apply = [&](auto silu) {
      gn_apply_kernel<T, V, decltype(silu)::value>
          <<<blocks, threads, 0, stream>>>(x.data<T>(), y.data<T>(), g, mean.data<St>(), rstd.data<St>(),
                                                opt_data<St>(gamma), opt_data<St>(beta));
    };
    if (fuse_silu)
      apply(std::true_type{});
    else
      apply(std::false_type{});
    IRIS_CUDA_CHECK_LAUNCH("cuda::group_norm_forward (apply)");
  });
}

template <class T, bool SILU>
void backward_impl(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                   const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                   int64_t groups, Context& ctx, Stream stream) {
  using St = stat_t<T>;
  const int64_t C = x.shape().back();
  const St* bp = SILU ? opt_data<St>(beta) : nullptr;  // beta matters only through silu'(h)
  with_vector_width<T>(
      C, {x.data_ptr(), gy.data_ptr(), dx.defined() ? dx.data_ptr() : nullptr}, [&](auto vtag) {
        constexpr int V = decltype(vtag)::value;
        const NormGeom g = plan_geom(x, groups, V, ctx);
        Tensor partial = Tensor::empty({g.N * g.chunks * g.C * 2}, DType::f64, x.device());
        auto* pp = reinterpret_cast<double2*>(partial.data_ptr());
        const auto threads = static_cast<unsigned>(g.L * g.R);
        const auto blocks = static_cast<unsigned>(g.blocks());
        gn_bwd_partials_kernel<T, V, SILU><<<blocks, threads, 0, stream>>>(
            gy.data<T>(), x.data<T>(), g, mean.data<St>(), rstd.data<St>(), opt_data<St>(gamma), bp, pp);
        IRIS_CUDA_CHECK_LAUNCH("cuda::group_norm_backward (partial sums)");
        if (dgamma.defined() || dbeta.defined()) {
          const auto pblocks = static_cast<unsigned>(ceil_div(g.C * 32, kThreads));
          gn_bwd_params_kernel<St><<<pblocks, kThreads, 0, stream>>>(pp, g, opt_data_mut<St>(dgamma),
                                                                          opt_data_mut<St>(dbeta));
          IRIS_CUDA_CHECK_LAUNCH("cuda::group_norm_backward (dgamma, dbeta)");
        }
        if (dx.defined()) {
          Tensor coef = Tensor::empty({g.N * g.G * 2}, dtype_of<St>::value, x.device());
          gn_bwd_coef_kernel<St><<<static_cast<unsigned>(g.N * g.G), kThreads, 0, stream>>>(
              pp, g, opt_data<St>(gamma), coef.data<St>());
          IRIS_CUDA_CHECK_LAUNCH("cuda::group_norm_backward (group coefficients)");
          gn_bwd_dx_kernel<T, V, SILU><<<blocks, threads, 0, stream>>>(
              gy.data<T>(), x.data<T>(), g, mean.data<St>(), rstd.data<St>(), opt_data<St>(gamma), bp,
              coef.data<St>(), dx.data<T>());
          IRIS_CUDA_CHECK_LAUNCH("cuda::group_norm_backward (dx)");
        }
      });
}

}  // namespace

void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& mean,
                        Tensor& rstd, int64_t groups, double eps, bool fuse_silu, Stream stream) {
  if (x.numel() == 0) return;
  Context& ctx = context(x.device().index);
  DeviceGuard guard(ctx.device);
  dispatch_floating(x.dtype(), "group_norm", [&](auto tag) {
    forward_impl<decltype(tag)>(x, gamma, beta, y, mean, rstd, groups, eps, fuse_silu, ctx, stream);
  });
}

void group_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                         int64_t groups, bool fuse_silu, Stream stream) {
  if (x.numel() == 0) {  // nothing to normalise: the parameter gradients are empty sums
    if (dgamma.defined()) fill(dgamma, 0.0, stream);
    if (dbeta.defined()) fill(dbeta, 0.0, stream);
    return;
  }
  Context& ctx = context(x.device().index);
  DeviceGuard guard(ctx.device);
  dispatch_floating(x.dtype(), "group_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    if (fuse_silu)
      backward_impl<T, true>(gy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, groups, ctx, stream);
    else
      backward_impl<T, false>(gy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, groups, ctx, stream);
  });
}

}  // namespace iris::cuda
