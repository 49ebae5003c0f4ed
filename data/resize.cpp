// Separable resampling (bicubic with antialiasing, area, nearest) and crops/flips. See resize.h for the
// conventions.
#include "data/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "framework/core/philox.h"
#include "framework/cpu/parallel.h"

namespace iris::data {

const char* filter_name(Filter f) {
  switch (f) {
    case Filter::bicubic:
      return "bicubic";
    case Filter::area:
      return "area";
    case Filter::nearest:
      return "nearest";
  }
  return "?";
}

Filter filter_from_name(const std::string& name) {
  if (name == "bicubic") return Filter::bicubic;
  if (name == "area") return Filter::area;
  if (name == "nearest") return Filter::nearest;
  IRIS_THROW("unknown resize filter '", name, "' (expected bicubic, area or nearest)");
}

double keys_cubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

ResampleWeights resample_weights(int in_size, int out_size, Filter filter) {
  IRIS_CHECK(in_size > 0 && out_size > 0, "resample_weights: sizes must be positive (", in_size, " -> ",
             out_size, ")");
  ResampleWeights rw;
  rw.in_size = in_size;
  rw.out_size = out_size;
  const double scale = static_cast<double>(in_size) / out_size;
  std::vector<std::vector<double>> dense(static_cast<size_t>(out_size));  // over clamped input indices
  rw.first.resize(static_cast<size_t>(out_size));
  for (int i = 0; i < out_size; ++i) {
    std::vector<double>& row = dense[static_cast<size_t>(i)];
    int lo = 0;
    if (filter == Filter::nearest) {
      lo = static_cast<int>(
          std::min<int64_t>(in_size - 1, (2 * static_cast<int64_t>(i) + 1) * in_size / (2 * out_size)));
      row = {1.0};
    } else if (filter == Filter::area) {
      const double a = static_cast<double>(i) * in_size / out_size;
      const double b = static_cast<double>(i + 1) * in_size / out_size;
      lo = static_cast<int>(std::floor(a));
      const int hi = std::min(in_size - 1, static_cast<int>(std::ceil(b)) - 1);
      double sum = 0;
      for (int j = lo; j <= hi; ++j) {
        const double w = std::min(b, j + 1.0) - std::max(a, static_cast<double>(j));
        row.push_back(std::max(0.0, w));
        sum += row.back();
      }
      for (double& w : row) w /= sum;
    } else {
      // Stretch the kernel by the scale when downsampling: an antialiasing low-pass of the right width.
      const double stretch = std::max(scale, 1.0);
      const double support = 2.0 * stretch;
      const double center = (i + 0.5) * scale;
      const int jlo = static_cast<int>(std::floor(center - support - 0.5));
      const int jhi = static_cast<int>(std::ceil(center + support - 0.5));
      lo = std::clamp(jlo, 0, in_size - 1);
      const int hi = std::clamp(jhi, 0, in_size - 1);
      row.assign(static_cast<size_t>(hi - lo + 1), 0.0);
      double sum = 0;
      for (int j = jlo; j <= jhi; ++j) {
        const double w = keys_cubic((j + 0.5 - center) / stretch);
        row[static_cast<size_t>(std::clamp(j, 0, in_size - 1) - lo)] += w;  // edge pixels clamped
        sum += w;
      }
      for (double& w : row) w /= sum;
      // Drop exact-zero taps at both ends (kernel zeros at integer distances).
      size_t b = 0, e = row.size();
      while (e > b + 1 && row[e - 1] == 0.0) --e;
      while (b + 1 < e && row[b] == 0.0) ++b;
      row = std::vector<double>(row.begin() + static_cast<std::ptrdiff_t>(b),
                                row.begin() + static_cast<std::ptrdiff_t>(e));
      lo += static_cast<int>(b);
    }
    rw.first[static_cast<size_t>(i)] = lo;
    rw.max_taps = std::max(rw.max_taps, static_cast<int>(row.size()));
  }
  rw.taps.resize(static_cast<size_t>(out_size));
  rw.w.assign(static_cast<size_t>(out_size) * rw.max_taps, 0.0);
  for (int i = 0; i < out_size; ++i) {
    const auto& row = dense[static_cast<size_t>(i)];
    rw.taps[static_cast<size_t>(i)] = static_cast<int>(row.size());
    std::copy(row.begin(), row.end(), rw.w.begin() + static_cast<std::ptrdiff_t>(i) * rw.max_taps);
  }
  return rw;
}

namespace {

// Rows per parallel chunk: about a million multiply-adds (~1 ms), so that starting threads pays for itself
// even on a busy machine; typical dataset images (a few hundred pixels wide) resize on one thread.
int64_t row_grain(int64_t macs_per_row) {
  return std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, macs_per_row));
}

// One image [h, w, c] of T -> [oh, ow, c] of T through `tmp` ([h, ow, c]). Either pass is skipped (copied)
// when its size does not change.
template <class T>
void resize_image(const T* src, int h, int w, int c, T* dst, int oh, int ow, Filter filter) {
  std::vector<T> tmp_buf;
  const T* mid = src;  // [h, ow, c]
  if (ow != w) {
    const ResampleWeights rx = resample_weights(w, ow, filter);
    std::vector<T> wx(rx.w.begin(), rx.w.end());
    tmp_buf.resize(static_cast<size_t>(h) * ow * c);
    T* tmp = tmp_buf.data();
    cpu::parallel_for(0, h, row_grain(int64_t{ow} * c * rx.max_taps), [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y) {
        const T* s = src + y * w * c;
        T* d = tmp + y * ow * c;
        for (int x = 0; x < ow; ++x) {
          const T* wk = wx.data() + static_cast<size_t>(x) * rx.max_taps;
          const T* sp = s + static_cast<size_t>(rx.first[x]) * c;
          for (int ch = 0; ch < c; ++ch) {
            T acc = 0;
            for (int k = 0; k < rx.taps[x]; ++k) acc += wk[k] * sp[k * c + ch];
            d[x * c + ch] = acc;
          }
        }
      }
    });
    mid = tmp;
  }
  const size_t row = static_cast<size_t>(ow) * c;
  if (oh == h) {
    std::memcpy(dst, mid, static_cast<size_t>(h) * row * sizeof(T));
    return;
  }
  const ResampleWeights ry = resample_weights(h, oh, filter);
  std::vector<T> wy(ry.w.begin(), ry.w.end());
  cpu::parallel_for(0, oh, row_grain(static_cast<int64_t>(row) * ry.max_taps), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      T* d = dst + y * row;
      std::fill(d, d + row, T(0));
      for (int k = 0; k < ry.taps[y]; ++k) {
        const T wk = wy[static_cast<size_t>(y) * ry.max_taps + k];
        const T* s = mid + static_cast<size_t>(ry.first[y] + k) * row;
        for (size_t e = 0; e < row; ++e) d[e] += wk * s[e];
      }
    }
  });
}

void check_size(int64_t h, int64_t w, const char* op) {
  IRIS_CHECK(h > 0 && w > 0 && h <= (1 << 20) && w <= (1 << 20), op, ": output size ", h, "x", w,
             " must be positive (and at most 2^20)");
}

}  // namespace

Image resize(const Image& img, int out_height, int out_width, Filter filter) {
  check_image(img, "resize");
  check_size(out_height, out_width, "resize");
  if (out_height == img.height && out_width == img.width) return img;
  Image out(out_height, out_width, img.channels);
  std::vector<float> src(img.pixels.begin(), img.pixels.end());
  std::vector<float> dst(out.pixels.size());
  resize_image(src.data(), img.height, img.width, img.channels, dst.data(), out_height, out_width, filter);
  for (size_t i = 0; i < dst.size(); ++i) {
    const float v = std::floor(dst[i] + 0.5f);
    out.pixels[i] = static_cast<uint8_t>(v < 0.f ? 0.f : v > 255.f ? 255.f : v);
  }
  return out;
}

Tensor resize(const Tensor& x, int64_t out_height, int64_t out_width, Filter filter) {
  check_defined(x, "resize");
  IRIS_CHECK(x.dim() == 4 || x.dim() == 3, "resize: expected [N, H, W, C] or [H, W, C], got ", x.summary());
  IRIS_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, "resize: expected f32 or f64, got ",
             x.summary());
  check_size(out_height, out_width, "resize");
  const Tensor host = (x.dim() == 3 ? x.unsqueeze(0) : x).detach().cpu().contiguous();
  const int64_t n = host.size(0), h = host.size(1), w = host.size(2), c = host.size(3);
  IRIS_CHECK(h > 0 && w > 0 && c > 0, "resize: empty image in ", x.summary());
  Tensor out = Tensor::empty({n, out_height, out_width, c}, host.dtype());
  const auto oh = static_cast<int>(out_height), ow = static_cast<int>(out_width);
  for (int64_t i = 0; i < n; ++i) {
    if (host.dtype() == DType::f32) {
      resize_image(host.data<float>() + i * h * w * c, static_cast<int>(h), static_cast<int>(w),
                   static_cast<int>(c), out.data<float>() + i * oh * ow * c, oh, ow, filter);
    } else {
      resize_image(host.data<double>() + i * h * w * c, static_cast<int>(h), static_cast<int>(w),
                   static_cast<int>(c), out.data<double>() + i * oh * ow * c, oh, ow, filter);
    }
  }
  if (x.dim() == 3) out = out.squeeze(0);
  return out.to(x.device());
}

Image crop(const Image& img, int top, int left, int h, int w) {
  check_image(img, "crop");
  IRIS_CHECK(h > 0 && w > 0 && top >= 0 && left >= 0 && top + h <= img.height && left + w <= img.width,
             "crop: window ", h, "x", w, " at (", top, ", ", left, ") does not fit in image ", img.str());
  Image out(h, w, img.channels);
  const size_t row = static_cast<size_t>(w) * img.channels;
  for (int y = 0; y < h; ++y)
    std::memcpy(out.pixels.data() + y * row,
                &img.pixels[(static_cast<size_t>(top + y) * img.width + left) * img.channels], row);
  return out;
}

Image center_crop(const Image& img, int h, int w) {
  check_image(img, "center_crop");
  IRIS_CHECK(h > 0 && w > 0 && h <= img.height && w <= img.width, "center_crop: ", h, "x", w,
             " is larger than image ", img.str());
  return crop(img, (img.height - h) / 2, (img.width - w) / 2, h, w);
}

Image center_square_crop(const Image& img) {
  check_image(img, "center_square_crop");
  const int s = std::min(img.height, img.width);
  return center_crop(img, s, s);
}

Image random_crop(const Image& img, int h, int w, uint64_t seed, uint64_t stream) {
  check_image(img, "random_crop");
  IRIS_CHECK(h > 0 && w > 0 && h <= img.height && w <= img.width, "random_crop: ", h, "x", w,
             " is larger than image ", img.str());
  const philox::Block b = philox::block(seed, stream, 0);
  // Multiply-shift maps a 32-bit word onto [0, n) (bias below 2^-20 for image-sized n).
  auto pick = [](uint32_t r, int n) {
    return static_cast<int>((static_cast<uint64_t>(r) * static_cast<uint64_t>(n)) >> 32);
  };
  return crop(img, pick(b.v[0], img.height - h + 1), pick(b.v[1], img.width - w + 1), h, w);
}

Image hflip(const Image& img) {
  check_image(img, "hflip");
  Image out(img.height, img.width, img.channels);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < img.channels; ++c) out.at(y, x, c) = img.at(y, img.width - 1 - x, c);
  return out;
}

}  // namespace iris::data
