// CPU convolution kernels (the CUDA ones in framework/cuda/conv.h have the same contracts).
//
// Contracts: every tensor is contiguous and of one floating dtype; shapes agree with `p` (see
// framework/ops/conv.h): x [N, H, W, Cin], w [Cout, kh, kw, Cin], bias [Cout] or undefined,
// out / gout [N, Ho, Wo, Cout]. Outputs are allocated by the caller and fully overwritten. No autograd here.
//
// Method: im2col + GEMM. The im2col matrix has one row per output pixel (n, ho, wo) and one column per tap
// (i, j, c), so its row-major layout matches the weight's [Cout, kh*kw*Cin] and NHWC input rows copy with
// memcpy. Rows are processed in fixed-size chunks to bound the column buffer; pointwise convolutions (whose
// column matrix *is* the input) skip im2col. Results do not depend on the thread count.
#pragma once

#include "framework/core/tensor.h"
#include "framework/ops/conv.h"

namespace iris::cpu {

// out = conv(x, w) + bias.
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const ConvParams& p);
// dx = dL/dx given gout = dL/dout.
void conv2d_backward_data(const Tensor& gout, const Tensor& w, Tensor& dx, const ConvParams& p);
// dw = dL/dw given gout = dL/dout.
void conv2d_backward_weight(const Tensor& gout, const Tensor& x, Tensor& dw, const ConvParams& p);

// Column-buffer budget per chunk, in bytes (a constant, so that chunking and hence results never depend on
// the machine or the thread count). Exposed for tests that force several chunks.
int64_t conv_col_budget_bytes();
void set_conv_col_budget_bytes(int64_t bytes);  // 0 restores the default

}  // namespace iris::cpu
