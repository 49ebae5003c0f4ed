// Conditioning images for super-resolution stages, as differentiable, device-agnostic tensor ops.
//
// SR3 conditions on the low-resolution image upsampled to the target size with the same antialiased
// bicubic filter the data pipeline uses to make low-res images (data/resize.h). Here the separable filter
// is applied as two matrix products (width, then height) with weights from data::resample_weights, so it
// runs on any device and matches data::resize. CDM's Gaussian-blur augmentation is applied the same way,
// with one blur matrix per sample (reflect padding folded into the matrix).
#pragma once

#include "data/resize.h"
#include "framework/core/generator.h"
#include "framework/core/tensor.h"

namespace iris::diffusion {

// x: [N, h, w, C] -> [N, H, W, C] by the separable `filter` (bicubic: antialiased Keys cubic).
Tensor resize_tensor(const Tensor& x, int64_t H, int64_t W, data::Filter filter = data::Filter::bicubic);

// The [n, n] matrix of a 1-D Gaussian blur of standard deviation sigma (pixels), radius ceil(3 sigma)
// (at most n - 1), reflect padding (... 2 1 | 0 1 2 ...), rows normalised to sum to 1; identity for sigma <=
// 0.
std::vector<double> blur_matrix(int64_t n, double sigma);

// Blurs sample i of x [N, h, w, C] with sigma[i] (identity where sigma[i] <= 0), separably.
Tensor gaussian_blur(const Tensor& x, const std::vector<double>& sigma);

struct BlurAugment {
  double prob = 0.0;                      // probability of blurring a sample
  double sigma_lo = 0.4, sigma_hi = 0.6;  // sigma ~ U[lo, hi) for blurred samples
};
// Training-time blur augmentation: each sample is blurred with probability `prob`; the coin and sigma are
// drawn on the CPU from `gen` (a per-sample generator gives each sample its own draws). Returns x itself
// when prob == 0.
Tensor blur_augment(const Tensor& x, const BlurAugment& a, Generator& gen);

}  // namespace iris::diffusion
