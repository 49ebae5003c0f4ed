// CUDA comparisons, where, copy (with dtype conversion) and fill (framework/kernels/elementwise.h).
//
// All use one element per step of a grid-stride loop with offsets from the coalesced shape/strides
// (contiguous operands coalesce to one dimension, whose offsets need no division), 32-bit index arithmetic
// when n < 2^31. A copy between contiguous tensors of one dtype is a stream-ordered cudaMemcpyAsync.
// Launch: 256 threads per block, blocks = min(ceil(n / 256), 4 waves of full occupancy).
#include <climits>
#include <type_traits>

#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/elementwise.h"

namespace iris::cuda {

namespace {

// Launches kernel<I> with I = uint32_t when n fits comfortably in 32 bits, else uint64_t.
template <class Launch>
void launch_indexed(int64_t n, Launch&& launch) {
  if (n <= INT32_MAX)
    launch(uint32_t{});
  else
    launch(uint64_t{});
}

template <CompareOp OP, class T, class I>
__global__ void compare_kernel(Indexer<3> ix, const T* __restrict__ x, const T* __restrict__ y,
                               uint8_t* __restrict__ out, I n) {
  using C = compute_t<T>;
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[3];
    ix.offsets(i, off);
    out[off[0]] = fn::compare<OP>(load_as<C>(x + off[1]), load_as<C>(y + off[2])) ? 1 : 0;
  }
}

template <class T, class I>
__global__ void where_kernel(Indexer<4> ix, const uint8_t* __restrict__ cond, const T* __restrict__ x,
                             const T* __restrict__ y, T* __restrict__ out, I n) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[4];
    ix.offsets(i, off);
    out[off[0]] = cond[off[1]] ? x[off[2]] : y[off[3]];
  }
}

template <class D, class S, class I>
__global__ void copy_kernel(Indexer<2> ix, const S* __restrict__ src, D* __restrict__ dst, I n) {
  // Convert through the wider compute type of the two (double if either is f64 or i64), as the CPU does.
  using C = std::conditional_t<std::is_same_v<S, double> || std::is_same_v<D, double> ||
                                   std::is_same_v<S, int64_t> || std::is_same_v<D, int64_t>,
                               double, float>;
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    ix.offsets(i, off);
    if constexpr (std::is_same_v<S, D>)
      dst[off[0]] = src[off[1]];
    else
      store_as(dst + off[0], load_as<C>(src + off[1]));
  }
}

template <class T, class I>
__global__ void fill_kernel(Indexer<1> ix, T* __restrict__ dst, T value, I n) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[1];
    ix.offsets(i, off);
    dst[off[0]] = value;
  }
}

}  // namespace

void compare(CompareOp op, const Tensor& x, const Tensor& y, Tensor& out, Stream stream) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  const Indexer<3> ix = make_indexer<3>(
      out.shape(), {out.strides(), strides_for(x, out.shape()), strides_for(y, out.shape())}, "compare");
  uint8_t* op_ = out.data<uint8_t>();
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    dispatch_compare(op, [&](auto opc) {
      constexpr CompareOp OP = decltype(opc)::value;
      launch_indexed(n, [&](auto itag) {
        using I = decltype(itag);
        compare_kernel<OP, T, I>
            <<<grid_for(n, ctx), kThreads, 0, stream>>>(ix, xp, yp, op_, static_cast<I>(n));
      });
      IRIS_CUDA_CHECK_LAUNCH("cuda::compare");
    });
  });
}

void where(const Tensor& cond, const Tensor& x, const Tensor& y, Tensor& out, Stream stream) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  const Shape& shape = out.shape();
  const Indexer<4> ix = make_indexer<4>(
      shape, {out.strides(), strides_for(cond, shape), strides_for(x, shape), strides_for(y, shape)},
      "where");
  const uint8_t* cp = cond.data<uint8_t>();
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    T* op_ = out.data<T>();
    launch_indexed(n, [&](auto itag) {
      using I = decltype(itag);
      where_kernel<T, I>
          <<<grid_for(n, ctx), kThreads, 0, stream>>>(ix, cp, xp, yp, op_, static_cast<I>(n));
    });
    IRIS_CUDA_CHECK_LAUNCH("cuda::where");
  });
}

void copy(const Tensor& src, Tensor& dst, Stream stream) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  Context& ctx = context(dst.device().index);
  DeviceGuard guard(ctx.device);
  const Indexer<2> ix = make_indexer<2>(dst.shape(), {dst.strides(), strides_for(src, dst.shape())}, "copy");
  if (src.dtype() == dst.dtype() && ix.ndim == 1 && ix.strides[0][0] == 1 && ix.strides[1][0] == 1) {
    IRIS_CUDA_CHECK(
        cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream));
    debug_sync("cuda::copy (memcpy)", __FILE__, __LINE__);
    return;
  }
  dispatch_all(dst.dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_all(src.dtype(), [&](auto stag) {
      using S = decltype(stag);
      const S* sp = src.data<S>();
      D* dp = dst.data<D>();
      launch_indexed(n, [&](auto itag) {
        using I = decltype(itag);
        copy_kernel<D, S, I><<<grid_for(n, ctx), kThreads, 0, stream>>>(ix, sp, dp, static_cast<I>(n));
      });
      IRIS_CUDA_CHECK_LAUNCH("cuda::copy");
    });
  });
}

void fill(Tensor& dst, double value, Stream stream) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  Context& ctx = context(dst.device().index);
  DeviceGuard guard(ctx.device);
  const Indexer<1> ix = make_indexer<1>(dst.shape(), {dst.strides()}, "fill");
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T v;
    store_as(&v, value);  // converted on the host exactly as the CPU kernel converts it
    T* dp = dst.data<T>();
    launch_indexed(n, [&](auto itag) {
      using I = decltype(itag);
      fill_kernel<T, I><<<grid_for(n, ctx), kThreads, 0, stream>>>(ix, dp, v, static_cast<I>(n));
    });
    IRIS_CUDA_CHECK_LAUNCH("cuda::fill");
  });
}

}  // namespace iris::cuda
