// CUDA binary elementwise kernels (framework/kernels/elementwise.h), computed with the shared functors of
// framework/kernels/functors.h.
//
// Two kernels per (op, dtype):
// - out contiguous and each input either contiguous or a single broadcast value (stride 0), all 16-byte
//   aligned: 16-byte loads/stores per step of a grid-stride loop, the tail element by element;
// - anything else (general broadcasting such as [N, H, W, C] + [C], strided views, unaligned views): one
//   element per step with offsets from the coalesced shape/strides, 32-bit index arithmetic when n < 2^31.
// Launch: 256 threads per block, blocks = min(ceil(work / 256), 4 waves of full occupancy).
#include <climits>

#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/elementwise.h"

namespace iris::cuda {

namespace {

template <BinaryOp OP, class T>
__global__ void binary_vec_kernel(const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ out,
                                  int64_t n, bool x_scalar, bool y_scalar, compute_t<T> a, compute_t<T> b) {
  using C = compute_t<T>;
  constexpr int V = 16 / sizeof(T);
  const int64_t nvec = n / V;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const C xs = x_scalar ? load_as<C>(x) : C(0);
  const C ys = y_scalar ? load_as<C>(y) : C(0);
  const auto* xv = reinterpret_cast<const Vec<T, V>*>(x);
  const auto* yv = reinterpret_cast<const Vec<T, V>*>(y);
  auto* ov = reinterpret_cast<Vec<T, V>*>(out);
  for (int64_t i = tid; i < nvec; i += step) {
    Vec<T, V> xi, yi, r;
    if (!x_scalar) xi = xv[i];
    if (!y_scalar) yi = yv[i];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const C u = x_scalar ? xs : load_as<C>(&xi.v[j]);
      const C w = y_scalar ? ys : load_as<C>(&yi.v[j]);
      store_as(&r.v[j], fn::binary<OP>(u, w, a, b));
    }
    ov[i] = r;
  }
  for (int64_t i = nvec * V + tid; i < n; i += step) {
    const C u = x_scalar ? xs : load_as<C>(x + i);
    const C w = y_scalar ? ys : load_as<C>(y + i);
    store_as(out + i, fn::binary<OP>(u, w, a, b));
  }
}

template <BinaryOp OP, class T, class I>
__global__ void binary_strided_kernel(Indexer<3> ix, const T* __restrict__ x, const T* __restrict__ y,
                                      T* __restrict__ out, I n, compute_t<T> a, compute_t<T> b) {
  using C = compute_t<T>;
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[3];
    ix.offsets(i, off);
    store_as(out + off[0], fn::binary<OP>(load_as<C>(x + off[1]), load_as<C>(y + off[2]), a, b));
  }
}

}  // namespace

void binary(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out, double pa, double pb,
            Stream stream) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  const Indexer<3> ix = make_indexer<3>(
      out.shape(), {out.strides(), strides_for(x, out.shape()), strides_for(y, out.shape())}, "binary");
  dispatch_floating(out.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    constexpr int V = 16 / sizeof(T);
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    T* op_ = out.data<T>();
    const C a = static_cast<C>(pa), b = static_cast<C>(pb);
    const int64_t sx = ix.strides[1][0], sy = ix.strides[2][0];
    const bool x_scalar = sx == 0, y_scalar = sy == 0;
    const bool vec = ix.ndim == 1 && n > 1 && ix.strides[0][0] == 1 && (sx == 0 || sx == 1) &&
                     (sy == 0 || sy == 1) && aligned16(op_) && (x_scalar || aligned16(xp)) &&
                     (y_scalar || aligned16(yp));
    dispatch_binary(op, [&](auto opc) {
      constexpr BinaryOp OP = decltype(opc)::value;
      if (vec) {
        binary_vec_kernel<OP, T><<<grid_for((n + V - 1) / V, ctx), kThreads, 0, stream>>>(
            xp, yp, op_, n, x_scalar, y_scalar, a, b);
      } else if (n <= INT32_MAX) {
        binary_strided_kernel<OP, T, uint32_t>
            <<<grid_for(n, ctx), kThreads, 0, stream>>>(ix, xp, yp, op_, static_cast<uint32_t>(n), a, b);
      } else {
        binary_strided_kernel<OP, T, uint64_t>
            <<<grid_for(n, ctx), kThreads, 0, stream>>>(ix, xp, yp, op_, static_cast<uint64_t>(n), a, b);
      }
      IRIS_CUDA_CHECK_LAUNCH("cuda::binary");
    });
  });
}

}  // namespace iris::cuda
