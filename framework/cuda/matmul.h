// CUDA batched GEMM through cuBLASLt: the same contract as framework/cpu/matmul.h.
#pragma once

#include "framework/core/tensor.h"

namespace iris::cuda {

// out[b] = alpha * a[b] @ b_[b] + beta * out[b] for b < B.
// a: [B, M, K], b_: [B, K, N], any strides as long as each matrix has unit stride along one of its two axes
// (a transposed view is read without a copy; other layouts are copied first); a batch stride of 0 broadcasts.
// out: contiguous [B, M, N]. All three share one floating dtype:
// - bf16: bf16 inputs and output, f32 accumulation;
// - f32: TF32 tensor cores when iris::tf32_enabled(), else strict f32 (CUBLAS_COMPUTE_32F);
// - f64: f64 throughout.
void bmm(const Tensor& a, const Tensor& b_, Tensor& out, double alpha = 1.0, double beta = 0.0);

// Plans (descriptors and the heuristic's algorithm) cached on `device` so far (for tests and diagnostics).
size_t matmul_plan_count(int device);

}  // namespace iris::cuda
