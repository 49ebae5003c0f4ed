// 2x resampling kernel contract (CPU: framework/cpu/resample.cpp; CUDA: framework/cuda/resample.cu, with
// bit-identical results: the same operations in the same order).
// All tensors contiguous, channels-last, of one floating dtype; outputs allocated by the caller and fully
// overwritten. "Small" is [N, h, w, C], "large" is [N, 2h, 2w, C].
#pragma once

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris::cpu {
// large[n, y, x, c] = small[n, y/2, x/2, c]
void upsample_nearest2x(const Tensor& small, Tensor& large);
// dsmall[n, y, x, c] = sum of the 2x2 block of glarge at (2y, 2x)
void upsample_nearest2x_backward(const Tensor& glarge, Tensor& dsmall);
// small[n, y, x, c] = mean of the 2x2 block of large at (2y, 2x)
void avg_pool2x(const Tensor& large, Tensor& small);
// dlarge[n, y, x, c] = gsmall[n, y/2, x/2, c] / 4
void avg_pool2x_backward(const Tensor& gsmall, Tensor& dlarge);
}  // namespace iris::cpu

namespace iris::cuda {
void upsample_nearest2x(const Tensor& small, Tensor& large, Stream stream);
void upsample_nearest2x_backward(const Tensor& glarge, Tensor& dsmall, Stream stream);
void avg_pool2x(const Tensor& large, Tensor& small, Stream stream);
void avg_pool2x_backward(const Tensor& gsmall, Tensor& dlarge, Stream stream);
}  // namespace iris::cuda
