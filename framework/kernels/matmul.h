// Batched GEMM kernel contract (CPU: framework/cpu/matmul.cpp through OpenBLAS; CUDA: framework/cuda/
// matmul.cpp through cuBLASLt).
//
// out[b] = alpha * a[b] @ b_[b] + beta * out[b] for b < B.
// a: [B, M, K], b_: [B, K, N], any strides as long as each matrix has unit stride along one of its two axes
// (a transposed view is read without a copy; CUDA copies other layouts first); a batch stride of 0
// broadcasts. out: contiguous [B, M, N]. All three share one floating dtype. On CUDA:
// - bf16: bf16 inputs and output, f32 accumulation;
// - f32: TF32 tensor cores when iris::tf32_enabled() (framework/core/numerics.h), else strict f32;
// - f64: f64 throughout.
#pragma once

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris::cpu {
void bmm(const Tensor& a, const Tensor& b_, Tensor& out, double alpha = 1.0, double beta = 0.0);
}

namespace iris::cuda {
void bmm(const Tensor& a, const Tensor& b_, Tensor& out, double alpha, double beta, Stream stream);
}
