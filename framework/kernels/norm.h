// GroupNorm kernel contract, optionally fused with SiLU (CPU: framework/cpu/norm.cpp; CUDA:
// framework/cuda/norm.cu).
//
// Layout: x is channels-last and contiguous, read as [N, S, C] (S = all spatial positions of a sample);
// group g of sample n is channels [g*C/G, (g+1)*C/G) at every position, M = S*C/G elements.
// Dtypes: x, y, gy and dx share x's dtype T (f32, bf16 or f64). The statistics and the affine parameters
// (mean, rstd, gamma, beta, dgamma, dbeta) have the "statistics dtype": f64 when T is f64, f32 otherwise.
// Results do not depend on the number of CPU threads; on CUDA every sum has a fixed order that depends only
// on the shapes and the device's SM count.
#pragma once

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris::cpu {

// h = (x - mean[n, g]) * rstd[n, g] * gamma[c] + beta[c];  y = fuse_silu ? silu(h) : h.
// gamma / beta: contiguous [C] or undefined (1 and 0). mean, rstd: contiguous [N, G] outputs, with
// rstd = 1 / sqrt(biased variance + eps). y: contiguous, x's shape.
void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& mean,
                        Tensor& rstd, int64_t groups, double eps, bool fuse_silu);

// Gradients of the forward above given gy = dL/dy (contiguous, x's shape), recomputing the normalised value
// from x, mean and rstd (nothing else is kept from the forward). beta is read only when fuse_silu.
// dx: x's shape; dgamma, dbeta: [C]; each is written in full, and may be undefined when not wanted.
void group_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                         int64_t groups, bool fuse_silu);

}  // namespace iris::cpu

namespace iris::cuda {
void group_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& mean,
                        Tensor& rstd, int64_t groups, double eps, bool fuse_silu, Stream stream);
void group_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                         int64_t groups, bool fuse_silu, Stream stream);
}  // namespace iris::cuda
