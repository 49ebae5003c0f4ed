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

#include "framework/core/tensor.h"

namespace iris {

// Everything that determines a convolution's geometry. A plain value type: kernels on every device take it,
// and the CUDA backend keys its cuDNN plan cache on it (with the dtype).
struct ConvParams {
  int64_t N = 0, H = 0, W = 0, Cin = 0;  // input [N, H, W, Cin]
  int64_t Cout = 0, kh = 0, kw = 0;      // weight [Cout, kh, kw, Cin]
  int64_t sh = 1, sw = 1;                // stride
  int64_t ph = 0, pw = 0;                // zero padding on each side
  int64_t Ho = 0, Wo = 0;                // output [N, Ho, Wo, Cout]

  bool operator==(const ConvParams&) const = default;

  // Rows and columns of the im2col matrix: one row per output pixel, one column per (i, j, c) tap.
  int64_t rows() const { return N * Ho * Wo; }
  int64_t cols() const { return kh * kw * Cin; }
  // Multiply-adds of the forward pass (each of the two backward GEMMs costs the same).
  int64_t macs() const { return rows() * Cout * cols(); }
};

// A hash for unordered containers keyed by ConvParams.
struct ConvParamsHash {
  size_t operator()(const ConvParams& p) const;
};

// Validates the shapes and derives Ho, Wo; throws iris::Error naming `op` and both shapes on misuse.
ConvParams make_conv_params(const Shape& x_shape, const Shape& w_shape, std::array<int64_t, 2> stride,
                            std::array<int64_t, 2> padding, const char* op = "conv2d");

// x: [N, H, W, Cin], w: [Cout, kh, kw, Cin], bias: [Cout] or undefined -> [N, Ho, Wo, Cout].
// Floating dtypes; mismatched ones compute in the wider. Under autocast, f32 CUDA inputs run in bf16.
// Differentiable in x, w and bias.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor(),
              std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0});

// How CUDA convolutions choose their cuDNN algorithms from now on (process-wide; see cuda/conv.h):
// "heuristic" (cuDNN's ranking: the same choice in every process, so a resumed run computes bit-identically)
// or "find" (each problem's algorithms timed once: faster kernels, but the choice, and so the last bits, may
// differ between processes). Throws iris::Error naming `what` for any other value. CPU convolutions have one
// algorithm: without CUDA the setting is checked and has no effect.
void set_conv_search(const std::string& mode, const std::string& what = "conv search");
// "heuristic" or "find" ("heuristic" without CUDA).
std::string conv_search();

}  // namespace iris
