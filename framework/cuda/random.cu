// CUDA Philox fill: one thread per Philox block (4 consecutive outputs of one stream), in a grid-stride loop
// of 256-thread blocks. Every value is the same function of (seed, stream, block, word) as on the CPU
// (framework/core/philox.h), so uniform draws are bit-identical to the CPU's and normal draws
// (double-precision Box-Muller) agree to the last bit except where the device's and the host's libm differ by
// an ulp.
//
// The N stream ids travel in the kernel's parameters when N <= kInlineStreams (the usual per-sample batch),
// otherwise in a device buffer copied from the host on the compute stream.
#include <cstring>

#include "framework/core/philox.h"
#include "framework/cuda/loops.cuh"
#include "framework/kernels/random.h"
#include "framework/kernels/dispatch.h"

namespace iris::cuda {

namespace {

constexpr int kInlineStreams = 64;

struct InlineStreams {
  uint64_t id[kInlineStreams];
};

template <class T, Distribution DIST>
__global__ void philox_kernel(T* __restrict__ out, int64_t N, int64_t M, uint64_t seed, InlineStreams inl,
                              const uint64_t* __restrict__ streams, uint64_t offset, double a, double b) {
  const int64_t blocks = (M + 3) / 4;
  const int64_t total = N * blocks;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t n = i / blocks, blk = i - n * blocks;
    const uint64_t stream = streams ? streams[n] : inl.id[n];
    const philox::Block bl = philox::block(seed, stream, offset + static_cast<uint64_t>(blk));
    T* row = out + n * M;
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t j = blk * 4 + lane;
      if (j >= M) break;
      // Explicitly rounded multiply and add: nvcc would otherwise contract a + s * u into one FMA, which
      // the host (baseline x86-64) does not do, and the last bit could differ from the CPU's.
      double v;
      if constexpr (DIST == Distribution::uniform)
        v = __dadd_rn(a, __dmul_rn(b - a, static_cast<double>(philox::uniform01(bl.v[lane]))));
      else
        v = __dadd_rn(a, __dmul_rn(b, philox::normal_from_block(bl, lane)));
      store_as(row + j, v);
    }
  }
}

}  // namespace

void philox_fill(Tensor& out, Distribution dist, uint64_t seed, const uint64_t* streams, int64_t N,
                 uint64_t offset, double a, double b, Stream stream) {
  if (N == 0 || out.numel() == 0) return;
  const int64_t M = out.numel() / N;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  InlineStreams inl;
  std::memset(&inl, 0, sizeof(inl));
  Tensor ids;  // device copy of the stream ids when there are too many to pass inline
  const uint64_t* dev_ids = nullptr;
  if (N <= kInlineStreams) {
    std::memcpy(inl.id, streams, static_cast<size_t>(N) * sizeof(uint64_t));
  } else {
    ids = Tensor::empty({N}, DType::i64, out.device());
    // Pageable host memory: the runtime has staged it by the time the call returns.
    IRIS_CUDA_CHECK(cudaMemcpyAsync(ids.data_ptr(), streams, static_cast<size_t>(N) * sizeof(uint64_t),
                                    cudaMemcpyHostToDevice, stream));
    dev_ids = static_cast<const uint64_t*>(ids.data_ptr());
  }
  const int64_t work = N * ((M + 3) / 4);
  dispatch_floating(out.dtype(), "philox_fill", [&](auto tag) {
    using T = decltype(tag);
    T* p = out.data<T>();
    if (dist == Distribution::uniform)
      philox_kernel<T, Distribution::uniform>
          <<<grid_for(work, ctx), kThreads, 0, stream>>>(p, N, M, seed, inl, dev_ids, offset, a, b);
    else
      philox_kernel<T, Distribution::normal>
          <<<grid_for(work, ctx), kThreads, 0, stream>>>(p, N, M, seed, inl, dev_ids, offset, a, b);
    IRIS_CUDA_CHECK_LAUNCH("cuda::philox_fill");
  });
}

}  // namespace iris::cuda
