// Antialiased separable resampling of images and [N, H, W, C] float tensors, and the geometric helpers of
// the data pipeline (crops, flips).
//
// Coordinates: output pixel i of n_out covers [i, i+1) * s of the input, s = n_in / n_out; its centre maps
// to input position (i + 0.5) * s (pixel j's centre is at j + 0.5).
//  - bicubic: the Keys cubic (a = -0.5, support 2). When downsampling (s > 1) the kernel is stretched by s
//    (support 2s), which low-pass filters before decimation: this is the "antialiased bicubic" of
//    PIL / torchvision (antialias=True) that SR3 uses to make low-resolution inputs. Taps falling outside the
//    image are clamped to the edge pixel; weights are normalised to sum to 1.
//  - area: each output pixel is the average of the input area it covers, weighting partly covered pixels
//    by the covered fraction. Integer factors give exact block means (2x: the mean of each 2x2 block).
//  - nearest: the input pixel under the output centre (integer upsampling replicates pixels exactly).
// Both antialiased filters keep a constant image constant. The width is resampled first, then the height,
// each pass splitting its work over output rows, so results do not depend on the thread count. uint8 images
// are computed in float and rounded to nearest, clamped to [0, 255].
#pragma once

#include <cstdint>

#include "data/image.h"
#include "framework/core/tensor.h"

namespace iris::data {

enum class Filter { bicubic, area, nearest };
const char* filter_name(Filter f);
Filter filter_from_name(const std::string& name);  // "bicubic", "area", "nearest"

// The Keys cubic convolution kernel with a = -0.5.
double keys_cubic(double x);

// 1-D resampling weights: output i reads inputs first[i] .. first[i] + taps[i] - 1 with weights
// w[i * max_taps + k]. Exposed for tests and for GPU kernels that want the same weights.
struct ResampleWeights {
  int in_size = 0, out_size = 0, max_taps = 0;
  std::vector<int> first, taps;
  std::vector<double> w;
};
ResampleWeights resample_weights(int in_size, int out_size, Filter filter);

Image resize(const Image& img, int out_height, int out_width, Filter filter = Filter::bicubic);
// x: [N, H, W, C] or [H, W, C], f32 or f64, any device (computed on the CPU; the result returns to x's
// device), computed in x's precision. Not differentiable (a data-pipeline operation).
Tensor resize(const Tensor& x, int64_t out_height, int64_t out_width, Filter filter = Filter::bicubic);

// Crops: [top, top + h) x [left, left + w), which must lie inside the image.
Image crop(const Image& img, int top, int left, int h, int w);
Image center_crop(const Image& img, int h, int w);  // offsets (H - h) / 2 and (W - w) / 2, rounded down
Image center_square_crop(const Image& img);         // the largest centred square
// A uniformly placed h x w crop; the offsets are a pure function of (seed, stream) (Philox).
Image random_crop(const Image& img, int h, int w, uint64_t seed, uint64_t stream = 0);
Image hflip(const Image& img);

}  // namespace iris::data
