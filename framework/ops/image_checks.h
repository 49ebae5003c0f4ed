// Argument checks shared by the ops on channels-last images (ops/pool.cpp, ops/resample.cpp).
#pragma once

#include "framework/core/error.h"
#include "framework/core/tensor.h"

namespace iris {

// x must be a defined floating [N, H, W, C] tensor; the error names `op` and x's shape.
inline void check_image(const Tensor& x, const char* op) {
  check_defined(x, op);
  check_floating(x, op);
  IRIS_CHECK(x.dim() == 4, op, ": expected a 4-D [N, H, W, C] input, got ", x.summary());
}

}  // namespace iris
