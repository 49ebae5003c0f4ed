// Windowed pooling and bilinear resizing kernel contract (CPU: framework/cpu/pool.cpp; CUDA:
// framework/cuda/pool.cu), the spatial ops of Inception-v3 (FID's feature network, diffusion/inception.h)
// beyond convolution. Channels-last: x / dx [N, H, W, C], out / gout [N, Ho, Wo, C]; every tensor contiguous
// and of one floating dtype (bf16 computed in f32); outputs allocated by the caller and fully overwritten.
//
// Every kernel is a gather over outputs (one output element per thread or per loop iteration, its terms
// summed in a fixed order: window rows, then columns), so results do not depend on the thread count, and
// the CPU and CUDA kernels do the same operations in the same order: bit-identical results. Backward
// kernels gather too (each input element sums the outputs whose window holds it): no atomics.
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris {

// A pooling window's geometry (PyTorch's max_pool2d / avg_pool2d with ceil_mode = False):
//   out[n, ho, wo, c] = reduce over i < kh, j < kw of x[n, ho*sh - ph + i, wo*sw - pw + j, c]
// over the positions inside the image; Ho = (H + 2 ph - kh) / sh + 1 (floor), likewise Wo. Max pooling
// treats padding as -inf (a NaN in the window wins); average pooling divides the sum of the positions inside
// by kh * kw (count_include_pad, padding counts as zeros) or by their number (TensorFlow's, FID Inception's).
struct PoolParams {
  int64_t N = 0, H = 0, W = 0, C = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t Ho = 0, Wo = 0;
  bool count_include_pad = true;
};

// Bilinear resizing with align_corners = False and no antialiasing (PyTorch's F.interpolate(mode="bilinear"),
// which pytorch-fid uses to bring images to 299x299): output row o reads input rows i0 = floor(s) and
// i1 = min(i0 + 1, H - 1) with weights 1 - l, l, where s = max(0, (o + 0.5) * H / Ho - 0.5) and l = s - i0
// (coordinates in f64); columns likewise. out = (1-ly) ((1-lx) x00 + lx x01) + ly ((1-lx) x10 + lx x11).
struct ResizeParams {
  int64_t N = 0, H = 0, W = 0, C = 0, Ho = 0, Wo = 0;
};

}  // namespace iris

namespace iris::cpu {
// `argmax` (i64 [N, Ho, Wo, C], or undefined when not needed): the flat index y * W + x of the maximum (the
// first in window order among equals).
void max_pool2d(const Tensor& x, Tensor& out, Tensor& argmax, const PoolParams& p);
// dx[n, y, x, c] = sum of gout over the outputs whose argmax is (y, x).
void max_pool2d_backward(const Tensor& gout, const Tensor& argmax, Tensor& dx, const PoolParams& p);
void avg_pool2d(const Tensor& x, Tensor& out, const PoolParams& p);
// dx[n, y, x, c] = sum of gout / divisor over the outputs whose window holds (y, x).
void avg_pool2d_backward(const Tensor& gout, Tensor& dx, const PoolParams& p);
void resize_bilinear(const Tensor& x, Tensor& out, const ResizeParams& p);
// dx[n, y, x, c] = sum over outputs (o, q) of wy(o, y) wx(q, x) gout[n, o, q, c] (the forward's weights).
void resize_bilinear_backward(const Tensor& gout, Tensor& dx, const ResizeParams& p);
}  // namespace iris::cpu

namespace iris::cuda {
void max_pool2d(const Tensor& x, Tensor& out, Tensor& argmax, const PoolParams& p, Stream stream);
void max_pool2d_backward(const Tensor& gout, const Tensor& argmax, Tensor& dx, const PoolParams& p,
                         Stream stream);
void avg_pool2d(const Tensor& x, Tensor& out, const PoolParams& p, Stream stream);
void avg_pool2d_backward(const Tensor& gout, Tensor& dx, const PoolParams& p, Stream stream);
void resize_bilinear(const Tensor& x, Tensor& out, const ResizeParams& p, Stream stream);
void resize_bilinear_backward(const Tensor& gout, Tensor& dx, const ResizeParams& p, Stream stream);
}  // namespace iris::cuda
