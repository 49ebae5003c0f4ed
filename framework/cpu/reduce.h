// CPU reduction and softmax kernels (the CUDA ones in framework/cuda/reduce.h have the same contracts).
#pragma once

#include <vector>

#include "framework/core/tensor.h"

namespace iris {
enum class ReduceOp : uint8_t { sum, mean, max, min, var };
}

namespace iris::cpu {

// out (contiguous, the kept axes of x in order, x's dtype) = op over `axes` (sorted, unique, non-empty) of x
// (any strides). var uses `correction`. Results do not depend on the number of threads.
void reduce(ReduceOp op, const Tensor& x, Tensor& out, const std::vector<int64_t>& axes, int64_t correction);

// Over the last axis of contiguous x: y = softmax(x) or log_softmax(x).
void softmax(const Tensor& x, Tensor& y, bool log);
// Given y = softmax(x) (or log_softmax) and g = dL/dy (both contiguous), dx = dL/dx.
void softmax_backward(const Tensor& y, const Tensor& g, Tensor& dx, bool log);

}  // namespace iris::cpu
