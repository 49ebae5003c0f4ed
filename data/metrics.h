// Image-quality metrics of super-resolution: PSNR, SSIM and SR3's consistency, on 8-bit images and on
// [N, H, W, C] tensors.
//
// Conventions (the choices SR3-style evaluations differ on, fixed here):
//  - Values are compared in [0, 1] units: uint8 v -> v / 255, floats x in [-1, 1] -> (x + 1) / 2 (the model
//    convention of image.h). For uint8 this is PSNR with MAX = 255 and SSIM with L = 255; for floats it is
//    PSNR with MAX = 2 on [-1, 1]. SSIM on floats is computed on (x + 1) / 2 with L = 1, which equals SSIM of
//    the unrounded 8-bit image: SSIM's luminance term is not invariant to shifts, so using L = 2 directly on
//    [-1, 1] values would give a different number than on the saved PNGs. Pass uint8 (e.g. float_to_u8) to
//    measure images exactly as they are written to disk ("after rounding").
//  - All channels count (RGB, not the luma channel), and no border is cropped.
//  - PSNR = 10 log10(MAX^2 / MSE) over every pixel and channel of one image; identical images give +inf.
//  - SSIM follows Wang et al. 2004: an 11x11 Gaussian window with sigma = 1.5 (normalised to sum 1),
//    C1 = (0.01 L)^2, C2 = (0.03 L)^2, population (biased) local variances and covariance, the SSIM map
//    averaged over the positions where the window lies fully inside the image (no padding), then averaged
//    over channels. This is skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
//    use_sample_covariance=False, data_range=255) on uint8 images. Images must be at least 11x11.
//  - Consistency (SR3, Saharia et al. 2021): the MSE between the output downsampled to the low-resolution
//    size with the antialiased bicubic filter of resize.h (in floating point, not rounded) and the
//    low-resolution input, both in [0, 1]. It measures how faithful the output is to its input.
// Results do not depend on the thread count.
#pragma once

#include <vector>

#include "data/image.h"
#include "framework/core/tensor.h"

namespace iris::data {

inline constexpr int kSsimWindow = 11;
inline constexpr double kSsimSigma = 1.5;

// The 1-D Gaussian window of SSIM (11 weights summing to 1); the 2-D window is its outer product.
std::vector<double> ssim_gaussian_window();

// One image pair of the same size and channels.
double psnr(const Image& pred, const Image& truth);
double ssim(const Image& pred, const Image& truth);
// `lowres`: the low-resolution input (h x w, same channels as pred).
double consistency(const Image& pred, const Image& lowres);
double mse01(const Image& a, const Image& b);  // mean squared error in [0, 1] units
// PSNR over the pixels (all their channels) where mask[y * width + x] != 0 (e.g. the bands where the
// windows of a tiled run overlap); NaN when the mask selects no pixel.
double psnr_where(const Image& pred, const Image& truth, const std::vector<uint8_t>& mask);

// Batches: [N, H, W, C] (or [H, W, C], one image), any device. uint8 tensors are 8-bit images; f32/f64
// tensors hold values in [-1, 1]. The two arguments may mix the two kinds. One value per image.
std::vector<double> psnr(const Tensor& pred, const Tensor& truth);
std::vector<double> ssim(const Tensor& pred, const Tensor& truth);
std::vector<double> consistency(const Tensor& pred, const Tensor& lowres);

// SSIM of one plane pair: a, b are [h, w] in the same units, L their dynamic range (1 for [0, 1]).
double ssim_plane(const double* a, const double* b, int h, int w, double L);

}  // namespace iris::data
