// 2x resampling of channels-last images [N, H, W, C]: nearest-neighbour upsampling and 2x2 average pooling,
// the up/down steps of the U-Net. Both differentiable; floating dtypes (bf16 computed in f32).
#pragma once

#include "framework/core/tensor.h"

namespace iris {

// [N, H, W, C] -> [N, 2H, 2W, C]: out[n, y, x, c] = x[n, y / 2, x / 2, c].
Tensor upsample_nearest2x(const Tensor& x);

// [N, H, W, C] -> [N, H/2, W/2, C], the mean of each 2x2 block. H and W must be even.
Tensor avg_pool2x(const Tensor& x);

}  // namespace iris
