// Softmax kernel contract (CPU: framework/cpu/softmax.cpp; CUDA: framework/cuda/softmax.cu).
#pragma once

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris::cpu {
// Over the last axis of contiguous x: y = softmax(x) or log_softmax(x).
void softmax(const Tensor& x, Tensor& y, bool log);
// Given y = softmax(x) (or log_softmax) and g = dL/dy (both contiguous), dx = dL/dx.
void softmax_backward(const Tensor& y, const Tensor& g, Tensor& dx, bool log);
}  // namespace iris::cpu

namespace iris::cuda {
void softmax(const Tensor& x, Tensor& y, bool log, Stream stream);
void softmax_backward(const Tensor& y, const Tensor& g, Tensor& dx, bool log, Stream stream);
}  // namespace iris::cuda
