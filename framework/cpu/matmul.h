// CPU batched GEMM kernel (the CUDA one in framework/cuda/matmul.h has the same contract).
#pragma once

#include "framework/core/tensor.h"

namespace iris::cpu {

// out[b] = alpha * a[b] @ b_[b] + beta * out[b] for b < B.
// a: [B, M, K], b_: [B, K, N], any strides as long as each matrix has unit stride along one of its two axes
// (a transposed view is read without a copy); a batch stride of 0 broadcasts. out: contiguous [B, M, N].
// All three share one floating dtype.
void bmm(const Tensor& a, const Tensor& b_, Tensor& out, double alpha = 1.0, double beta = 0.0);

}  // namespace iris::cpu
