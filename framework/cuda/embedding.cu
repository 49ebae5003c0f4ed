// CUDA lookup kernels (framework/kernels/embedding.h).
//
// Copies (embedding rows, gathers) move raw words of the element size (1, 2, 4 or 8 bytes, or 16-byte
// vectors for whole rows), so they serve every dtype and are exact. Launch: 256 threads per block, a grid
// capped at a few waves with grid-stride loops; 32-bit index arithmetic when the element count allows.
#include <algorithm>
#include <climits>

#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/embedding.h"

namespace iris::cuda {

namespace {

// f(W{}) with W an unsigned word of `bytes` bytes (the element size of a dtype).
template <class F>
void dispatch_word(size_t bytes, const char* op, F&& f) {
  switch (bytes) {
    case 1:
      f(uint8_t{});
      return;
    case 2:
      f(uint16_t{});
      return;
    case 4:
      f(uint32_t{});
      return;
    case 8:
      f(uint64_t{});
      return;
    default:
      IRIS_THROW(op, ": unsupported element size ", bytes);
  }
}

// out[i, j] = w[idx[i], j] over rows of `row` words W (n rows).
template <class W, class I, class J>
__global__ void embedding_forward_kernel(const W* __restrict__ w, const I* __restrict__ idx,
                                         W* __restrict__ out, J total, J row) {
  const J step = static_cast<J>(gridDim.x) * blockDim.x;
  for (J e = static_cast<J>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const J i = e / row, j = e - i * row;
    out[e] = w[static_cast<int64_t>(idx[i]) * row + j];
  }
}

// One block per weight row r (grid-stride over rows), threads over the D columns: sums the rows of g whose
// index is r, in increasing position, in double. The indices are staged through shared memory in tiles.
template <class T, class I>
__global__ void __launch_bounds__(kThreads)
    embedding_backward_kernel(const T* __restrict__ g, const I* __restrict__ idx, int64_t n, int64_t V,
                              int64_t D, T* __restrict__ dw) {
  __shared__ I tile[kThreads];
  for (int64_t r = blockIdx.x; r < V; r += gridDim.x) {
    for (int64_t c0 = 0; c0 < D; c0 += kThreads) {
      const int64_t c = c0 + threadIdx.x;
      double acc = 0.0;
      for (int64_t i0 = 0; i0 < n; i0 += kThreads) {
        __syncthreads();  // the previous tile has been read by every thread
        if (i0 + threadIdx.x < n) tile[threadIdx.x] = idx[i0 + threadIdx.x];
        __syncthreads();
        const int m = n - i0 < kThreads ? static_cast<int>(n - i0) : kThreads;
        if (c < D)
          for (int k = 0; k < m; ++k)
            if (static_cast<int64_t>(tile[k]) == r)
              acc += static_cast<double>(load_as<compute_t<T>>(g + (i0 + k) * D + c));
      }
      if (c < D) store_as(dw + r * D + c, acc);
    }
  }
}

template <class W, class I>
__global__ void gather_last_kernel(const W* __restrict__ x, const I* __restrict__ idx, W* __restrict__ out,
                                   int64_t R, int64_t C) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < R; r += step)
    out[r] = x[r * C + static_cast<int64_t>(idx[r])];
}

template <class W, class I, class J>
__global__ void gather_last_backward_kernel(const W* __restrict__ g, const I* __restrict__ idx,
                                            W* __restrict__ dx, J total, J C) {
  const J step = static_cast<J>(gridDim.x) * blockDim.x;
  for (J e = static_cast<J>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const J r = e / C, c = e - r * C;
    dx[e] = c == static_cast<J>(idx[r]) ? g[r] : W(0);  // W(0): zero bits, which is 0 in every dtype
  }
}

}  // namespace

void embedding_forward(const Tensor& weight, const Tensor& indices, Tensor& out, Stream stream) {
  const int64_t n = indices.numel(), D = weight.shape()[1];
  if (n == 0 || D == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  const size_t esize = dtype_size(weight.dtype());
  const bool vec =
      (static_cast<size_t>(D) * esize) % 16 == 0 && aligned16(weight.data_ptr()) && aligned16(out.data_ptr());
  const size_t word = vec ? 16 : esize;
  const int64_t row = static_cast<int64_t>(static_cast<size_t>(D) * esize / word), total = n * row;
  auto launch = [&](auto wtag) {
    using W = decltype(wtag);
    dispatch_index(indices.dtype(), "embedding", [&](auto itag) {
      using I = decltype(itag);
      const auto* wp = static_cast<const W*>(weight.data_ptr());
      auto* op = static_cast<W*>(out.data_ptr());
      const I* ip = indices.data<I>();
      if (total <= INT32_MAX)
        embedding_forward_kernel<W, I, uint32_t><<<grid_for(total, ctx), kThreads, 0, stream>>>(
            wp, ip, op, static_cast<uint32_t>(total), static_cast<uint32_t>(row));
      else
        embedding_forward_kernel<W, I, uint64_t><<<grid_for(total, ctx), kThreads, 0, stream>>>(
            wp, ip, op, static_cast<uint64_t>(total), static_cast<uint64_t>(row));
      IRIS_CUDA_CHECK_LAUNCH("cuda::embedding_forward");
    });
  };
  if (vec)
    launch(uint4{});
  else
    dispatch_word(esize, "embedding", launch);
}

void embedding_backward(const Tensor& gout, const Tensor& indices, Tensor& dweight, Stream stream) {
  const int64_t V = dweight.shape()[0], D = dweight.shape()[1], n = indices.numel();
  if (V == 0 || D == 0) return;
  Context& ctx = context(dweight.device().index);
  DeviceGuard guard(ctx.device);
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(V, int64_t{ctx.sm_count} * 8));
  dispatch_floating(dweight.dtype(), "embedding_backward", [&](auto tag) {
    using T = decltype(tag);
    dispatch_index(indices.dtype(), "embedding_backward", [&](auto itag) {
      using I = decltype(itag);
      const T* gp = n > 0 ? gout.data<T>() : nullptr;
      const I* ip = n > 0 ? indices.data<I>() : nullptr;
      embedding_backward_kernel<T, I>
          <<<blocks, kThreads, 0, stream>>>(gp, ip, n, V, D, dweight.data<T>());
      IRIS_CUDA_CHECK_LAUNCH("cuda::embedding_backward");
    });
  });
}

void gather_last(const Tensor& x, const Tensor& index, Tensor& out, Stream stream) {
  const int64_t R = index.numel();
  if (R == 0) return;
  const int64_t C = x.numel() / R;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  dispatch_word(dtype_size(x.dtype()), "gather_last", [&](auto wtag) {
    using W = decltype(wtag);
    dispatch_index(index.dtype(), "gather_last", [&](auto itag) {
      using I = decltype(itag);
      gather_last_kernel<W, I><<<grid_for(R, ctx), kThreads, 0, stream>>>(
          static_cast<const W*>(x.data_ptr()), index.data<I>(), static_cast<W*>(out.data_ptr()), R, C);
      IRIS_CUDA_CHECK_LAUNCH("cuda::gather_last");
    });
  });
}

void gather_last_backward(const Tensor& gout, const Tensor& index, Tensor& dx, Stream stream) {
  const int64_t R = index.numel();
  if (R == 0 || dx.numel() == 0) return;
  const int64_t C = dx.numel() / R, total = dx.numel();
  Context& ctx = context(dx.device().index);
  DeviceGuard guard(ctx.device);
  dispatch_word(dtype_size(dx.dtype()), "gather_last_backward", [&](auto wtag) {
    using W = decltype(wtag);
    dispatch_index(index.dtype(), "gather_last_backward", [&](auto itag) {
      using I = decltype(itag);
      const auto* gp = static_cast<const W*>(gout.data_ptr());
      auto* dp = static_cast<W*>(dx.data_ptr());
      if (total <= INT32_MAX)
        gather_last_backward_kernel<W, I, uint32_t><<<grid_for(total, ctx), kThreads, 0, stream>>>(
            gp, index.data<I>(), dp, static_cast<uint32_t>(total), static_cast<uint32_t>(C));
      else
        gather_last_backward_kernel<W, I, uint64_t><<<grid_for(total, ctx), kThreads, 0, stream>>>(
            gp, index.data<I>(), dp, static_cast<uint64_t>(total), static_cast<uint64_t>(C));
      IRIS_CUDA_CHECK_LAUNCH("cuda::gather_last_backward");
    });
  });
}

}  // namespace iris::cuda
