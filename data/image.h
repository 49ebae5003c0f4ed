// 8-bit images on the host (grey or RGB, rows top to bottom, channels interleaved: [H, W, C]), PNG and JPEG
// files, and conversions to and from the [N, H, W, C] tensors that models consume.
//
// Pixel convention for models: uint8 v <-> float x = v / 127.5 - 1 in [-1, 1]; back: v = round((x + 1) *
// 127.5) clamped to [0, 255] (NaN becomes 0). The round trip uint8 -> float -> uint8 is exact.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::data {

struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // [height, width, channels], row-major

  Image() = default;
  Image(int h, int w, int c, uint8_t fill = 0);

  size_t size() const { return pixels.size(); }
  uint8_t& at(int y, int x, int c = 0) { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
  uint8_t at(int y, int x, int c = 0) const {
    return pixels[(static_cast<size_t>(y) * width + x) * channels + c];
  }
  std::string str() const;  // "28x28x1"
  bool operator==(const Image&) const = default;
};

// Throws naming `what` unless the sizes are positive, channels is 1 or 3 and pixels has H*W*C bytes.
void check_image(const Image& img, const std::string& what);

// ---- files: errors name the file --------------------------------------------------------------------------
// Readers refuse files whose header claims more pixels than `max_pixels`, before allocating anything.
inline constexpr int64_t kDefaultMaxImagePixels = 100'000'000;
// PNG: any bit depth or colour type is read as 8-bit grey or RGB (16-bit is reduced, palettes expanded, an
// alpha channel composited onto black). Written as 8-bit grey or RGB, losslessly.
Image read_png(const std::string& path, int64_t max_pixels = kDefaultMaxImagePixels);
void write_png(const std::string& path, const Image& img);
std::vector<uint8_t> encode_png(const Image& img);  // the bytes of the PNG file write_png would write
// JPEG: grey or YCbCr files, read as grey or RGB; corrupt-data warnings from libjpeg are errors here.
Image read_jpeg(const std::string& path, int64_t max_pixels = kDefaultMaxImagePixels);
void write_jpeg(const std::string& path, const Image& img, int quality = 95);
// By content (PNG or JPEG signature) for reading, by extension (.png, .jpg, .jpeg) for writing.
Image read_image(const std::string& path, int64_t max_pixels = kDefaultMaxImagePixels);
void write_image(const std::string& path, const Image& img);

// ---- colour
// ------------------------------------------------------------------------------------------------
Image to_rgb(const Image& img);   // grey replicated to three channels; RGB returned as is
Image to_gray(const Image& img);  // luma 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), rounded; grey as is
Image to_channels(const Image& img, int channels);

// ---- tensors
// ------------------------------------------------------------------------------------------------- Images of
// one size -> uint8 [N, H, W, C] and back (any device; results on the CPU for unstack).
Tensor stack_images(const std::vector<Image>& images);
std::vector<Image> unstack_images(const Tensor& u8);
// uint8 [..] -> float in [-1, 1] (f32 or f64) and float [..] -> uint8 with rounding and clamping. Any shape.
Tensor u8_to_float(const Tensor& u8, DType dtype = DType::f32);
Tensor float_to_u8(const Tensor& x);
// The same conversions on raw buffers of n values (used by the loader).
void u8_to_float(const uint8_t* src, float* dst, size_t n);
void float_to_u8(const float* src, uint8_t* dst, size_t n);
// Convenience: images -> f32 [N, H, W, C] in [-1, 1], and float [N, H, W, C] (or [H, W, C]) -> images.
Tensor images_to_tensor(const std::vector<Image>& images);
std::vector<Image> tensor_to_images(const Tensor& x);

}  // namespace iris::data
