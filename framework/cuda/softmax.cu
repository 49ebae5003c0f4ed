// CUDA softmax / log_softmax over the last axis and their backward (framework/kernels/softmax.h).
//
// One row per group of TX threads (TX = 32 for rows up to 1024 wide, else 256, 8 or 1 rows per
// 256-thread block). Pass 1 keeps a running (max, sum of exp) per thread, combined by warp shuffles (and
// shared memory across warps); pass 2 writes the outputs. The backward does the same with plain sums.
#include <type_traits>

#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/softmax.h"

namespace iris::cuda {

namespace {

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

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

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

void softmax(const Tensor& x, Tensor& y, bool log, Stream stream) {
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
      softmax_kernel<T, TX><<<blocks, kThreads, 0, stream>>>(x.data<T>(), y.data<T>(), rows, n, log);
      IRIS_CUDA_CHECK_LAUNCH("cuda::softmax");
    });
  });
}

void softmax_backward(const Tensor& y, const Tensor& g, Tensor& dx, bool log, Stream stream) {
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
          <<<blocks, kThreads, 0, stream>>>(y.data<T>(), g.data<T>(), dx.data<T>(), rows, n, log);
      IRIS_CUDA_CHECK_LAUNCH("cuda::softmax_backward");
    });
  });
}

}  // namespace iris::cuda
