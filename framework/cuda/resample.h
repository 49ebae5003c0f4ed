// CUDA 2x resampling kernels: the same contracts as framework/cpu/resample.h (and bit-identical results: the
// same operations in the same order). All tensors contiguous, channels-last, of one floating dtype; outputs
// fully overwritten. "Small" is [N, h, w, C], "large" is [N, 2h, 2w, C]. One thread per small pixel and
// vector of channels (16-byte accesses when C and the pointers allow), on the device's compute stream.
#pragma once

#include "framework/core/tensor.h"

namespace iris::cuda {

// large[n, y, x, c] = small[n, y/2, x/2, c]
void upsample_nearest2x(const Tensor& small, Tensor& large);
// dsmall[n, y, x, c] = sum of the 2x2 block of glarge at (2y, 2x)
void upsample_nearest2x_backward(const Tensor& glarge, Tensor& dsmall);
// small[n, y, x, c] = mean of the 2x2 block of large at (2y, 2x)
void avg_pool2x(const Tensor& large, Tensor& small);
// dlarge[n, y, x, c] = gsmall[n, y/2, x/2, c] / 4
void avg_pool2x_backward(const Tensor& gsmall, Tensor& dlarge);

}  // namespace iris::cuda
