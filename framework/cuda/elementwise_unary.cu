// CUDA unary elementwise kernels (framework/kernels/elementwise.h), computed with the shared functors of
// framework/kernels/functors.h.
//
// Two kernels per (op, dtype):
// - contiguous, 16-byte aligned operands: each thread reads and writes 16 bytes (4 f32, 8 bf16, 2 f64) per
//   step of a grid-stride loop; the tail (n % V elements) is done element by element;
// - anything else (strided or broadcast input, unaligned views): one element per step, offsets from the
//   coalesced shape/strides (Indexer), with 32-bit index arithmetic when n < 2^31.
// Launch: 256 threads per block, blocks = min(ceil(work / 256), 4 waves of full occupancy).
#include <climits>

#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/elementwise.h"

namespace iris::cuda {

namespace {

template <UnaryOp OP, class T>
__global__ void unary_vec_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, compute_t<T> a,
                                 compute_t<T> b) {
  using C = compute_t<T>;
  constexpr int V = 16 / sizeof(T);
  const int64_t nvec = n / V;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const auto* xv = reinterpret_cast<const Vec<T, V>*>(x);
  auto* ov = reinterpret_cast<Vec<T, V>*>(out);
  for (int64_t i = tid; i < nvec; i += step) {
    const Vec<T, V> in = xv[i];
    Vec<T, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) store_as(&r.v[j], fn::unary<OP>(load_as<C>(&in.v[j]), a, b));
    ov[i] = r;
  }
  for (int64_t i = nvec * V + tid; i < n; i += step)
    store_as(out + i, fn::unary<OP>(load_as<C>(x + i), a, b));
}

template <UnaryOp OP, class T, class I>
__global__ void unary_strided_kernel(Indexer<2> ix, const T* __restrict__ x, T* __restrict__ out, I n,
                                     compute_t<T> a, compute_t<T> b) {
  using C = compute_t<T>;
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    ix.offsets(i, off);
    store_as(out + off[0], fn::unary<OP>(load_as<C>(x + off[1]), a, b));
  }
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, Tensor& out, double pa, double pb, Stream stream) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  const Indexer<2> ix = make_indexer<2>(out.shape(), {out.strides(), strides_for(x, out.shape())}, "unary");
  dispatch_floating(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    constexpr int V = 16 / sizeof(T);
    const T* xp = x.data<T>();
    T* op_ = out.data<T>();
    const C a = static_cast<C>(pa), b = static_cast<C>(pb);
    const bool vec =
        ix.ndim == 1 && ix.strides[0][0] == 1 && ix.strides[1][0] == 1 && aligned16(xp) && aligned16(op_);
    dispatch_unary(op, [&](auto opc) {
      constexpr UnaryOp OP = decltype(opc)::value;
      if (vec) {
        unary_vec_kernel<OP, T>
            <<<grid_for((n + V - 1) / V, ctx), kThreads, 0, stream>>>(xp, op_, n, a, b);
      } else if (n <= INT32_MAX) {
        unary_strided_kernel<OP, T, uint32_t>
            <<<grid_for(n, ctx), kThreads, 0, stream>>>(ix, xp, op_, static_cast<uint32_t>(n), a, b);
      } else {
        unary_strided_kernel<OP, T, uint64_t>
            <<<grid_for(n, ctx), kThreads, 0, stream>>>(ix, xp, op_, static_cast<uint64_t>(n), a, b);
      }
      IRIS_CUDA_CHECK_LAUNCH("cuda::unary");
    });
  });
}

}  // namespace iris::cuda
