// Matrix products: matmul with broadcast batch axes, and linear (PyTorch's convention for the weight).
#pragma once

#include "framework/core/tensor.h"

namespace iris {

// a: [..., M, K], b: [..., K, N] -> [..., M, N]; batch axes broadcast. Both at least 2-D.
Tensor matmul(const Tensor& a, const Tensor& b);

// x: [..., in], weight: [out, in], bias: [out] or undefined -> [..., out] = x @ weight^T + bias.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace iris
