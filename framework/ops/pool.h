// Windowed pooling and bilinear resizing of channels-last images [N, H, W, C]: the ops of Inception-v3
// (FID's feature network, diffusion/inception.h) beyond convolution. Differentiable; floating dtypes (bf16
// computed in f32). The geometry is PyTorch's (ceil_mode = False); see framework/kernels/pool.h.
#pragma once

#include <array>

#include "framework/core/tensor.h"

namespace iris {

// [N, H, W, C] -> [N, Ho, Wo, C], Ho = (H + 2 ph - kh) / sh + 1, the maximum of each window (padding never
// wins). Padding at most half the window (so every window holds part of the image), as PyTorch requires.
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0});

// The mean of each window: the padded zeros count (count_include_pad = true, PyTorch's default) or not
// (false: TensorFlow's, which FID's Inception uses).
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0}, bool count_include_pad = true);

// [N, H, W, C] -> [N, out_h, out_w, C]: bilinear, align_corners = False, no antialiasing (PyTorch's
// F.interpolate(x, size, mode="bilinear", align_corners=False), as pytorch-fid resizes to 299x299).
Tensor resize_bilinear(const Tensor& x, int64_t out_h, int64_t out_w);

}  // namespace iris
