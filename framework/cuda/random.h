// The CUDA Philox fill kernel (framework/cuda/random.cu). Their contract, shared with the CPU backend, is
// declared once in framework/kernels/random.h, where every CUDA kernel takes the stream it runs on as its
// last argument.
//
// The overloads below take no stream and run on the compute stream of their output's device. They keep older
// callers that name the CUDA kernels directly (tests/gpu, the GPU benchmarks of tools/) compiling unchanged;
// new code passes the stream (the op layer passes cuda::compute_stream(device)).
#pragma once

#include "framework/kernels/random.h"

namespace iris::cuda {

inline void philox_fill(Tensor& out, Distribution dist, uint64_t seed, const uint64_t* streams, int64_t N,
                        uint64_t offset, double a, double b) {
  philox_fill(out, dist, seed, streams, N, offset, a, b, compute_stream(out.device().index));
}

}  // namespace iris::cuda
