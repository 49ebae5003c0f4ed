// 2-D convolution kernel contract (CPU: framework/cpu/conv.cpp, im2col + GEMM; CUDA: framework/cuda/conv.cu,
// cuDNN). Channels-last: x [N, H, W, Cin], weight [Cout, kh, kw, Cin] (cuDNN's NHWC filter layout, "KRSC"),
// bias [Cout] or undefined, out / gout [N, Ho, Wo, Cout].
//
// The result is the cross-correlation (as in every deep-learning framework) with zero padding:
//   out[n, ho, wo, co] = bias[co] + sum_{i, j, c} x[n, ho*sh - ph + i, wo*sw - pw + j, c] * w[co, i, j, c]
// where out-of-range x reads are 0. Ho = (H + 2 ph - kh) / sh + 1 (floor), likewise Wo.
//
// Kernels: every tensor is contiguous and of one floating dtype; shapes agree with `p` (the op layer checks
// them: make_conv_params in framework/ops/conv.h). Outputs are allocated by the caller and fully overwritten
// (never accumulated into). No autograd here. CUDA: everything runs on `stream` without synchronising the
// host, except the one-time algorithm search of a new problem in "find" mode (framework/core/numerics.h);
// bf16 with f32 accumulation; f32 strictly in f32 unless TF32 is enabled; f64 throughout in f64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

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
  size_t operator()(const ConvParams& p) const {
    size_t h = 0;
    for (int64_t v : {p.N, p.H, p.W, p.Cin, p.Cout, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.Ho, p.Wo})
      h = h * 1000003u ^ std::hash<int64_t>{}(v);
    return h;
  }
};

}  // namespace iris

namespace iris::cpu {
// out = conv(x, w) + bias.
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const ConvParams& p);
// dx = dL/dx given gout = dL/dout.
void conv2d_backward_data(const Tensor& gout, const Tensor& w, Tensor& dx, const ConvParams& p);
// dw = dL/dw given gout = dL/dout.
void conv2d_backward_weight(const Tensor& gout, const Tensor& x, Tensor& dw, const ConvParams& p);
// db [Cout] = dL/dbias = gout summed over N, Ho and Wo.
void conv2d_backward_bias(const Tensor& gout, Tensor& db, const ConvParams& p);
}  // namespace iris::cpu

namespace iris::cuda {
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const ConvParams& p,
                    Stream stream);
void conv2d_backward_data(const Tensor& gout, const Tensor& w, Tensor& dx, const ConvParams& p,
                          Stream stream);
void conv2d_backward_weight(const Tensor& gout, const Tensor& x, Tensor& dw, const ConvParams& p,
                            Stream stream);
void conv2d_backward_bias(const Tensor& gout, Tensor& db, const ConvParams& p, Stream stream);
}  // namespace iris::cuda
