// Autocast helpers used by the ops that run in reduced precision (GEMM, convolution, attention).
#pragma once

#include "framework/autograd/grad_mode.h"
#include "framework/core/tensor.h"

namespace iris {

// Inside an AutocastGuard, an f32 CUDA tensor becomes autocast_dtype() (differentiably: its gradient comes
// back as f32). Everything else is returned unchanged. CPU tensors are never autocast: the CPU computes bf16
// GEMMs in f32 anyway, so casting would only cost time.
inline Tensor autocast_input(const Tensor& t) {
  if (autocast_enabled() && t.defined() && t.device().is_cuda() && t.dtype() == DType::f32)
    return t.to(autocast_dtype());
  return t;
}

}  // namespace iris
