// Reduction kernel contract (CPU: framework/cpu/reduce.cpp; CUDA: framework/cuda/reduce.cu). Softmax has its
// own contract: framework/kernels/softmax.h.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris {
enum class ReduceOp : uint8_t { sum, mean, max, min, var };
}

namespace iris::cpu {
// out (contiguous, the kept axes of x in order, x's dtype) = op over `axes` (sorted, unique, non-empty) of x
// (any strides). var uses `correction`. Results do not depend on the number of threads.
void reduce(ReduceOp op, const Tensor& x, Tensor& out, const std::vector<int64_t>& axes, int64_t correction);
}  // namespace iris::cpu

namespace iris::cuda {
// As cpu::reduce. Accumulates in f32 (f64 for f64 inputs); var uses Welford/Chan updates. Deterministic: the
// split of the work depends only on the shapes and the device's SM count.
void reduce(ReduceOp op, const Tensor& x, Tensor& out, const std::vector<int64_t>& axes, int64_t correction,
            Stream stream);
}  // namespace iris::cuda
