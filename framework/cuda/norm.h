// The CUDA GroupNorm kernels (framework/cuda/norm.cu). Their contract, shared with the CPU backend, is
// declared once in framework/kernels/norm.h, where every CUDA kernel takes the stream it runs on as its last
// argument.
//
// The overloads below take no stream and run on the compute stream of their output's device. They keep older
// callers that name the CUDA kernels directly (tests/gpu, the GPU benchmarks of tools/) compiling unchanged;
// new code passes the stream (the op layer passes cuda::compute_stream(device)).
#pragma once

#include "framework/kernels/norm.h"

namespace iris::cuda {

inline void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                               Tensor& mean, Tensor& rstd, int64_t groups, double eps, bool fuse_silu) {
  group_norm_forward(x, gamma, beta, y, mean, rstd, groups, eps, fuse_silu, compute_stream(x.device().index));
}
inline void group_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dgamma,
                                Tensor& dbeta, int64_t groups, bool fuse_silu) {
  group_norm_backward(gy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, groups, fuse_silu,
                      compute_stream(x.device().index));
}

}  // namespace iris::cuda
