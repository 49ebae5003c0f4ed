// CUDA GroupNorm kernels, optionally fused with SiLU: the same contracts as framework/cpu/norm.h.
//
// x is channels-last and contiguous, read as [N, S, C]; group g of sample n is channels [g*C/G, (g+1)*C/G)
// at every position (M = S*C/G elements). x, y, gy and dx share x's dtype (f32, bf16 or f64); the statistics
// and affine parameters (mean, rstd, gamma, beta, dgamma, dbeta) are f32, or f64 for f64 data. Everything
// runs on the device's compute stream; results are deterministic (every sum has a fixed order that depends
// only on the shapes and the device's SM count).
#pragma once

#include "framework/core/tensor.h"

namespace iris::cuda {

// See cpu::group_norm_forward.
void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& mean,
                        Tensor& rstd, int64_t groups, double eps, bool fuse_silu);

// See cpu::group_norm_backward (dx, dgamma, dbeta each written in full, or undefined when not wanted).
void group_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                         int64_t groups, bool fuse_silu);

}  // namespace iris::cuda
