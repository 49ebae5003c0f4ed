// 2-D convolution on channels-last tensors: x [N, H, W, Cin], weight [Cout, kh, kw, Cin], bias [Cout].
//
// The result is the cross-correlation (as in every deep-learning framework) with zero padding:
//   out[n, ho, wo, co] = bias[co] + sum_{i, j, c} x[n, ho*sh - ph + i, wo*sw - pw + j, c] * w[co, i, j, c]
// where out-of-range x reads are 0. Ho = (H + 2 ph - kh) / sh + 1 (floor), likewise Wo.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "framework/core/numerics.h"  // set_conv_search, conv_search (declared there since they moved)
#include "framework/core/tensor.h"
#include "framework/kernels/conv.h"     // ConvParams

namespace iris {

// Validates the shapes and derives Ho, Wo; throws iris::Error naming `op` and both shapes on misuse.
ConvParams make_conv_params(const Shape& x_shape, const Shape& w_shape, std::array<int64_t, 2> stride,
                            std::array<int64_t, 2> padding, const char* op = "conv2d");

// x: [N, H, W, Cin], w: [Cout, kh, kw, Cin], bias: [Cout] or undefined -> [N, Ho, Wo, Cout].
// Floating dtypes; mismatched ones compute in the wider. Under autocast, f32 CUDA inputs run in bf16.
// Differentiable in x, w and bias.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor(),
              std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0});

}  // namespace iris
