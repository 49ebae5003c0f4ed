// CUDA reductions: sum, mean, max, min, var over any axes (framework/kernels/reduce.h).
//
// reduce: x is seen as a [rows, cols] matrix, rows = the kept axes (in order: the output is contiguous) and
// cols = the reduced axes (ordered by decreasing stride, so the innermost is the most contiguous), each with
// its own coalesced Indexer, so any strides work without a copy. One block of 256 threads covers `rb` rows
// with `cb` column lanes each (rb * cb = 256):
// - "inner" layout (the reduced axes are the contiguous ones, e.g. a row sum): consecutive threads take
//   consecutive columns of one row, cb = min(256, next_pow2(cols));
// - "outer" layout (the kept axes are the contiguous ones, e.g. a bias gradient summed over [N, H, W] of
//   [N, H, W, C]): consecutive threads take consecutive rows, rb = min(32, next_pow2(rows)).
// Each lane accumulates its columns, then the lanes of a row are combined by the shared-memory tree of
// block_reduce.cuh. When the rows alone give less than a wave of blocks, the columns are split over gridDim.y
// blocks, whose partial accumulators (in a temporary buffer) a second kernel combines in a fixed order:
// results are deterministic.
#include <algorithm>
#include <type_traits>

#include "framework/cuda/block_reduce.cuh"
#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/reduce.h"

namespace iris::cuda {

namespace {

template <class A>
__device__ __forceinline__ A quiet_nan() {
  if constexpr (std::is_same_v<A, float>)
    return __int_as_float(0x7fc00000);
  else
    return __longlong_as_double(0x7ff8000000000000LL);
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
  block_tree_reduce(col_lane, g.cb, [&](int o) { R::merge(mine[col_lane], mine[col_lane + o]); });
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
void launch_reduce(const Tensor& x, Tensor& out, const ReduceGeom& g, int64_t correction, Stream stream) {
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
  reduce_kernel<OP, T, A><<<grid, kThreads, 0, stream>>>(xp, g, op_, pp, correction);
  IRIS_CUDA_CHECK_LAUNCH("cuda::reduce");
  if (g.splits > 1) {
    const unsigned blocks = static_cast<unsigned>(ceil_div(g.rows, kThreads));
    reduce_finish_kernel<OP, T, A>
        <<<blocks, kThreads, 0, stream>>>(pp, g.splits, g.rows, g.cols, op_, correction);
    IRIS_CUDA_CHECK_LAUNCH("cuda::reduce (combine splits)");
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, Tensor& out, const std::vector<int64_t>& axes, int64_t correction,
            Stream stream) {
  if (out.numel() == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  const ReduceGeom g = plan_reduce(x, axes, ctx);
  dispatch_floating(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case ReduceOp::sum:
        launch_reduce<ReduceOp::sum, T>(x, out, g, correction, stream);
        return;
      case ReduceOp::mean:
        launch_reduce<ReduceOp::mean, T>(x, out, g, correction, stream);
        return;
      case ReduceOp::max:
        launch_reduce<ReduceOp::max, T>(x, out, g, correction, stream);
        return;
      case ReduceOp::min:
        launch_reduce<ReduceOp::min, T>(x, out, g, correction, stream);
        return;
      case ReduceOp::var:
        launch_reduce<ReduceOp::var, T>(x, out, g, correction, stream);
        return;
    }
    IRIS_THROW("reduce: unknown op ", static_cast<int>(op));
  });
}

}  // namespace iris::cuda
