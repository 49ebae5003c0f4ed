// CUDA reductions (sum, mean, max, min, var over any axes) and softmax / log_softmax with their backward.
//
// reduce: x is seen as a [rows, cols] matrix, rows = the kept axes (in order: the output is contiguous) and
// cols = the reduced axes (ordered by decreasing stride, so the innermost is the most contiguous), each with
// its own coalesced Indexer, so any strides work without a copy. One block of 256 threads covers `rb` rows
// with `cb` column lanes each (rb * cb = 256):
// - "inner" layout (the reduced axes are the contiguous ones, e.g. a row sum): consecutive threads take
//   consecutive columns of one row, cb = min(256, next_pow2(cols));
// - "outer" layout (the kept axes are the contiguous ones, e.g. a bias gradient summed over [N, H, W] of
//   [N, H, W, C]): consecutive threads take consecutive rows, rb = min(32, next_pow2(rows)).
// Each lane accumulates its columns, then the lanes of a row are combined by a tree in shared memory. When
// the rows alone give less than a wave of blocks, the columns are split over gridDim.y blocks, whose partial
// accumulators (in a temporary buffer) a second kernel combines in a fixed order: results are deterministic.
//
// softmax: one row per group of TX threads (TX = 32 for rows up to 1024 wide, else 256, 8 or 1 rows per
// 256-thread block). Pass 1 keeps a running (max, sum of exp) per thread, combined by warp shuffles (and
// shared memory across warps); pass 2 writes the outputs. The backward does the same with plain sums.
#include <algorithm>

#include "framework/cuda/loops.cuh"
#include "framework/cuda/reduce.h"
#include "framework/ops/dispatch.h"

namespace iris::cuda {

namespace {

template <class A>
__device__ __forceinline__ A pos_inf() {
  if constexpr (std::is_same_v<A, float>)
    return __int_as_float(0x7f800000);
  else
    return __longlong_as_double(0x7ff0000000000000LL);
}
template <class A>
__device__ __forceinline__ A quiet_nan() {
  if constexpr (std::is_same_v<A, float>)
    return __int_as_float(0x7fc00000);
  else
    return __longlong_as_double(0x7ff8000000000000LL);
}
// The accurate exp/log (not the __expf/__logf intrinsics the elementwise functors use): softmax rows mix
// large and small values.
__device__ __forceinline__ float exp_acc(float x) {
  return expf(x);
}
__device__ __forceinline__ double exp_acc(double x) {
  return exp(x);
}
__device__ __forceinline__ float log_acc(float x) {
  return logf(x);
}
__device__ __forceinline__ double log_acc(double x) {
  return log(x);
}

// Accumulator of every reduction: v0 = sum / extreme / mean, v1 = M2 (var), n = elements seen (var).
template <class A>
struct Acc {
  A v0, v1;
  int64_t n;
};

template <ReduceOp OP, class A>
struct Reducer {
  __device__ static Acc<A> init() {
    if constexpr (OP == ReduceOp::max) return {-pos_inf<A>(), A(0), 0};
    if constexpr (OP == ReduceOp::min) return {pos_inf<A>(), A(0), 0};
    return {A(0), A(0), 0};
  }
  __device__ static void push(Acc<A>& a, A x) {
    if constexpr (OP == ReduceOp::sum || OP == ReduceOp::mean) {
      a.v0 += x;
    } else if constexpr (OP == ReduceOp::max) {
      if (x > a.v0 || x != x) a.v0 = x;  // NaN wins and stays (x > NaN is false)
    } else if constexpr (OP == ReduceOp::min) {
      if (x < a.v0 || x != x) a.v0 = x;
    } else {  // var: Welford
      a.n += 1;
      const A d = x - a.v0;
      a.v0 += d / static_cast<A>(a.n);
      a.v1 += d * (x - a.v0);
    }
  }
  __device__ static void merge(Acc<A>& a, const Acc<A>& b) {
    if constexpr (OP == ReduceOp::sum || OP == ReduceOp::mean) {
      a.v0 += b.v0;
    } else if constexpr (OP == ReduceOp::max) {
      if (b.v0 > a.v0 || b.v0 != b.v0) a.v0 = b.v0;
    } else if constexpr (OP == ReduceOp::min) {
      if (b.v0 < a.v0 || b.v0 != b.v0) a.v0 = b.v0;
    } else {  // var: Chan et al.'s pairwise combination
      if (b.n == 0) return;
      if (a.n == 0) {
        a = b;
        return;
      }
      const int64_t n = a.n + b.n;
      const A d = b.v0 - a.v0;
      const A fb = static_cast<A>(b.n) / static_cast<A>(n);
      a.v0 += d * fb;
      a.v1 += b.v1 + d * d * static_cast<A>(a.n) * fb;
      a.n = n;
    }
  }
  __device__ static A finish(const Acc<A>& a, int64_t cols, int64_t correction) {
    if constexpr (OP == ReduceOp::mean) return a.v0 / static_cast<A>(cols);
    if constexpr (OP == ReduceOp::var) {
      const int64_t denom = a.n - correction;
      return denom > 0 ? a.v1 / static_cast<A>(denom) : quiet_nan<A>();
    }
    return a.v0;
  }
};

struct ReduceGeom {
  Indexer<1> rows_ix;  // row r -> element offset of its first column
  Indexer<1> cols_ix;  // column c -> element offset within a row
  int64_t rows = 0, cols = 0;
  int rb = 1, cb = 1;  // rows per block, column lanes per row: rb * cb == kThreads
  bool inner = true;   // column lanes are consecutive threads
  int64_t chunk = 0;   // columns per split; split s covers [s * chunk, min(cols, (s + 1) * chunk))
  int splits = 1;
};

template <ReduceOp OP, class T, class A>
__global__ void __launch_bounds__(kThreads)
    reduce_kernel(const T* __restrict__ x, ReduceGeom g, T* __restrict__ out, Acc<A>* __restrict__ partial,
                  int64_t correction) {
  using R = Reducer<OP, A>;
  __shared__ Acc<A> sh[kThreads];
  const int t = threadIdx.x;
  const int row_lane = g.inner ? t / g.cb : t % g.rb;
  const int col_lane = g.inner ? t % g.cb : t / g.rb;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * g.rb + row_lane;
  Acc<A> acc = R::init();
  if (row < g.rows) {
    int64_t roff[1];
    g.rows_ix.offsets(static_cast<uint64_t>(row), roff);
    const T* base = x + roff[0];
    const int64_t c0 = static_cast<int64_t>(blockIdx.y) * g.chunk;
    const int64_t c1 = min(g.cols, c0 + g.chunk);
    for (int64_t c = c0 + col_lane; c < c1; c += g.cb) {
      int64_t coff[1];
      g.cols_ix.offsets(static_cast<uint64_t>(c), coff);
      R::push(acc, load_as<A>(base + coff[0]));
    }
  }
  Acc<A>* mine = sh + row_lane * g.cb;
  mine[col_lane] = acc;
  __syncthreads();
  for (int s = g.cb / 2; s > 0; s >>= 1) {
    if (col_lane < s) R::merge(mine[col_lane], mine[col_lane + s]);
    __syncthreads();
  }
  if (col_lane == 0 && row < g.rows) {
    if (g.splits == 1)
      store_as(out + row, R::finish(mine[0], g.cols, correction));
    else
      partial[row * g.splits + blockIdx.y] = mine[0];
  }
}

// Combines the `splits` partial accumulators of each row in order.
template <ReduceOp OP, class T, class A>
__global__ void reduce_finish_kernel(const Acc<A>* __restrict__ partial, int splits, int64_t rows,
                                     int64_t cols, T* __restrict__ out, int64_t correction) {
  using R = Reducer<OP, A>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  Acc<A> acc = partial[row * splits];
  for (int s = 1; s < splits; ++s) R::merge(acc, partial[row * splits + s]);
  store_as(out + row, R::finish(acc, cols, correction));
}

int64_t next_pow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}
int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

ReduceGeom plan_reduce(const Tensor& x, const std::vector<int64_t>& axes, const Context& ctx) {
  ReduceGeom g;
  Shape kept_shape, kept_strides;
  std::vector<std::pair<int64_t, int64_t>> red;  // (stride, size)
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (std::binary_search(axes.begin(), axes.end(), i))
      red.emplace_back(x.strides()[i], x.shape()[i]);
    else {
      kept_shape.push_back(x.shape()[i]);
      kept_strides.push_back(x.strides()[i]);
    }
  }
  // Reduced axes by decreasing stride, so that the innermost column index walks the smallest stride.
  std::stable_sort(red.begin(), red.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  Shape red_shape, red_strides;
  for (const auto& [st, sz] : red) {
    red_shape.push_back(sz);
    red_strides.push_back(st);
  }
  g.rows_ix = make_indexer<1>(kept_shape, {kept_strides}, "reduce");
  g.cols_ix = make_indexer<1>(red_shape, {red_strides}, "reduce");
  g.rows = shape_numel(kept_shape);
  g.cols = shape_numel(red_shape);
  const bool cols_unit = g.cols > 1 && g.cols_ix.strides[0][0] == 1;
  const bool rows_unit = g.rows > 1 && g.rows_ix.strides[0][0] == 1;
  g.inner = cols_unit || !rows_unit;
  if (g.inner) {
    g.cb = static_cast<int>(std::min<int64_t>(kThreads, next_pow2(std::max<int64_t>(g.cols, 1))));
    g.rb = kThreads / g.cb;
  } else {
    g.rb = static_cast<int>(std::min<int64_t>(32, next_pow2(std::max<int64_t>(g.rows, 1))));
    g.cb = kThreads / g.rb;
  }
  // Split the columns when the rows give less than one wave of blocks and each lane keeps >= 16 columns.
  const int64_t row_blocks = ceil_div(g.rows, g.rb);
  const int64_t wave = static_cast<int64_t>(ctx.sm_count) * std::max(1, ctx.max_threads_per_sm / kThreads);
  int64_t splits = 1;
  if (row_blocks < wave && g.cols > 0)
    splits =
        std::clamp<int64_t>(std::min(ceil_div(wave, row_blocks), g.cols / (int64_t{g.cb} * 16)), 1, 1024);
  if (g.cols == 0) {
    g.chunk = 0;
    g.splits = 1;
    return g;
  }
  g.chunk = ceil_div(ceil_div(g.cols, splits), g.cb) * g.cb;
  g.splits = static_cast<int>(ceil_div(g.cols, g.chunk));
  return g;
}

template <ReduceOp OP, class T>
void launch_reduce(const Tensor& x, Tensor& out, const ReduceGeom& g, int64_t correction, Context& ctx) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const T* xp = x.data<T>();
  T* op_ = out.data<T>();
  Tensor partial;  // freed (stream-ordered) after the kernels that use it
  Acc<A>* pp = nullptr;
  if (g.splits > 1) {
    partial =
        Tensor::empty({g.rows * g.splits * static_cast<int64_t>(sizeof(Acc<A>))}, DType::u8, out.device());
    pp = reinterpret_cast<Acc<A>*>(partial.data_ptr());
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(g.rows, g.rb)), static_cast<unsigned>(g.splits));
  reduce_kernel<OP, T, A><<<grid, kThreads, 0, ctx.compute>>>(xp, g, op_, pp, correction);
  IRIS_CUDA_CHECK_LAUNCH("cuda::reduce");
  if (g.splits > 1) {
    const unsigned blocks = static_cast<unsigned>(ceil_div(g.rows, kThreads));
    reduce_finish_kernel<OP, T, A>
        <<<blocks, kThreads, 0, ctx.compute>>>(pp, g.splits, g.rows, g.cols, op_, correction);
    IRIS_CUDA_CHECK_LAUNCH("cuda::reduce (combine splits)");
  }
}

// ---- softmax
// ------------------------------------------------------------------------------------------------

// Running (max, sum of exp(x - max)); -inf elements contribute nothing.
template <class A>
__device__ __forceinline__ void sm_push(A& m, A& s, A v) {
  if (v > m) {
    s = s * exp_acc(m - v) + A(1);
    m = v;
  } else if (v != -pos_inf<A>()) {
    s += exp_acc(v - m);
  }
}
template <class A>
__device__ __forceinline__ void sm_merge(A& m, A& s, A m2, A s2) {
  if (m2 > m) {
    s = s * exp_acc(m - m2) + s2;
    m = m2;
  } else if (m2 != -pos_inf<A>()) {
    s += s2 * exp_acc(m2 - m);
  }
}

// All-reduce over the TX threads of a row (TX = 32: one warp; TX = 256: eight warps through shared memory).
// Every thread of the row gets the same bits (the combinations are symmetric).
template <int TX, class A, class Merge>
__device__ __forceinline__ void row_allreduce(A& u, A& v, Merge merge, A* shu, A* shv) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const A u2 = __shfl_xor_sync(0xffffffffu, u, o);
    const A v2 = __shfl_xor_sync(0xffffffffu, v, o);
    merge(u, v, u2, v2);
  }
  if constexpr (TX > 32) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
      shu[warp] = u;
      shv[warp] = v;
    }
    __syncthreads();
    u = shu[0];
    v = shv[0];
    for (int w = 1; w < TX / 32; ++w) merge(u, v, shu[w], shv[w]);
  }
}

template <class T, int TX>
__global__ void __launch_bounds__(kThreads)
    softmax_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t n, bool log) {
  using A = compute_t<T>;
  __shared__ A shu[kThreads / 32], shv[kThreads / 32];
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kThreads / TX) + threadIdx.x / TX;
  const int lane = threadIdx.x % TX;
  // With TX == 256 the block is one row and all threads reach the barrier; with TX == 32 there is none.
  const bool active = row < rows;
  const T* xr = x + (active ? row : 0) * n;
  A m = -pos_inf<A>(), s = A(0);
  if (active)
    for (int64_t i = lane; i < n; i += TX) sm_push(m, s, load_as<A>(xr + i));
  row_allreduce<TX>(
      m, s, [](A& a, A& b, A c, A d) { sm_merge(a, b, c, d); }, shu, shv);
  if (!active) return;
  T* yr = y + row * n;
  if (log) {
    const A lse = m + log_acc(s);
    for (int64_t i = lane; i < n; i += TX) store_as(yr + i, load_as<A>(xr + i) - lse);
  } else {
    const A inv = A(1) / s;
    for (int64_t i = lane; i < n; i += TX) store_as(yr + i, exp_acc(load_as<A>(xr + i) - m) * inv);
  }
}

template <class T, int TX>
__global__ void __launch_bounds__(kThreads)
    softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ dx,
                            int64_t rows, int64_t n, bool log) {
  using A = compute_t<T>;
  __shared__ A shu[kThreads / 32], shv[kThreads / 32];
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kThreads / TX) + threadIdx.x / TX;
  const int lane = threadIdx.x % TX;
  const bool active = row < rows;
  const int64_t base = (active ? row : 0) * n;
  A s = A(0), unused = A(0);
  if (active)
    for (int64_t i = lane; i < n; i += TX)
      s += log ? load_as<A>(g + base + i) : load_as<A>(g + base + i) * load_as<A>(y + base + i);
  row_allreduce<TX>(
      s, unused,
      [](A& a, A& b, A c, A d) {
        a += c;
        b += d;
      },
      shu, shv);
  if (!active) return;
  for (int64_t i = lane; i < n; i += TX) {
    const A gv = load_as<A>(g + base + i), yv = load_as<A>(y + base + i);
    store_as(dx + base + i, log ? gv - exp_acc(yv) * s : yv * (gv - s));
  }
}

template <class Launch>
void with_row_width(int64_t n, Launch&& launch) {
  if (n <= 1024)
    launch(std::integral_constant<int, 32>{});
  else
    launch(std::integral_constant<int, 256>{});
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, Tensor& out, const std::vector<int64_t>& axes, int64_t correction) {
  if (out.numel() == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  const ReduceGeom g = plan_reduce(x, axes, ctx);
  dispatch_floating(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case ReduceOp::sum:
        launch_reduce<ReduceOp::sum, T>(x, out, g, correction, ctx);
        return;
      case ReduceOp::mean:
        launch_reduce<ReduceOp::mean, T>(x, out, g, correction, ctx);
        return;
      case ReduceOp::max:
        launch_reduce<ReduceOp::max, T>(x, out, g, correction, ctx);
        return;
      case ReduceOp::min:
        launch_reduce<ReduceOp::min, T>(x, out, g, correction, ctx);
        return;
      case ReduceOp::var:
        launch_reduce<ReduceOp::var, T>(x, out, g, correction, ctx);
        return;
    }
    IRIS_THROW("reduce: unknown op ", static_cast<int>(op));
  });
}

void softmax(const Tensor& x, Tensor& y, bool log) {
  const int64_t n = x.dim() ? x.shape().back() : 1;
  const int64_t rows = n ? x.numel() / n : 0;
  if (rows == 0) return;
  Context& ctx = context(y.device().index);
  DeviceGuard guard(ctx.device);
  dispatch_floating(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    with_row_width(n, [&](auto tx) {
      constexpr int TX = decltype(tx)::value;
      const unsigned blocks = static_cast<unsigned>(ceil_div(rows, kThreads / TX));
      softmax_kernel<T, TX><<<blocks, kThreads, 0, ctx.compute>>>(x.data<T>(), y.data<T>(), rows, n, log);
      IRIS_CUDA_CHECK_LAUNCH("cuda::softmax");
    });
  });
}

void softmax_backward(const Tensor& y, const Tensor& g, Tensor& dx, bool log) {
  const int64_t n = y.dim() ? y.shape().back() : 1;
  const int64_t rows = n ? y.numel() / n : 0;
  if (rows == 0) return;
  Context& ctx = context(dx.device().index);
  DeviceGuard guard(ctx.device);
  dispatch_floating(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    with_row_width(n, [&](auto tx) {
      constexpr int TX = decltype(tx)::value;
      const unsigned blocks = static_cast<unsigned>(ceil_div(rows, kThreads / TX));
      softmax_backward_kernel<T, TX>
          <<<blocks, kThreads, 0, ctx.compute>>>(y.data<T>(), g.data<T>(), dx.data<T>(), rows, n, log);
      IRIS_CUDA_CHECK_LAUNCH("cuda::softmax_backward");
    });
  });
}

}  // namespace iris::cuda
