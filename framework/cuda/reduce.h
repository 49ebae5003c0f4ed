// CUDA reduction and softmax kernels: the same contracts as framework/cpu/reduce.h.
#pragma once

#include <vector>

#include "framework/core/tensor.h"
#include "framework/cpu/reduce.h"  // ReduceOp

namespace iris::cuda {

// out (contiguous, the kept axes of x in order, x's dtype) = op over `axes` (sorted, unique, non-empty) of x
// (any strides). Accumulates in f32 (f64 for f64 inputs); var uses Welford/Chan updates and `correction`.
// Deterministic: the split of the work depends only on the shapes and the device's SM count.
void reduce(ReduceOp op, const Tensor& x, Tensor& out, const std::vector<int64_t>& axes, int64_t correction);

// Over the last axis of contiguous x: y = softmax(x) or log_softmax(x).
void softmax(const Tensor& x, Tensor& y, bool log);
// Given y = softmax(x) (or log_softmax) and g = dL/dy (both contiguous), dx = dL/dx.
void softmax_backward(const Tensor& y, const Tensor& g, Tensor& dx, bool log);

}  // namespace iris::cuda
