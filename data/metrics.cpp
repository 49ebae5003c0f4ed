// PSNR, SSIM and consistency (conventions in metrics.h). Everything is computed in double precision on the
// host, in [0, 1] units.
#include "data/metrics.h"

#include <cmath>
#include <limits>

#include "data/resize.h"
#include "framework/core/error.h"
#include "framework/cpu/parallel.h"

namespace iris::data {

namespace {

// A batch as host doubles in [0, 1]: [n, h, w, c], row-major.
struct Unit {
  int64_t n = 0, h = 0, w = 0, c = 0;
  std::vector<double> v;
  const double* image(int64_t i) const { return v.data() + i * h * w * c; }
};

Unit to_unit(const Tensor& t, const char* op, const char* what) {
  check_defined(t, op, what);
  IRIS_CHECK(t.dim() == 3 || t.dim() == 4, op, ": ", what, " must be [N, H, W, C] or [H, W, C], got ",
             t.summary());
  IRIS_CHECK(t.dtype() == DType::u8 || t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": ", what,
             " must be uint8 (8-bit images) or f32/f64 (values in [-1, 1]), got ", t.summary());
  const Tensor x = t.dim() == 3 ? t.unsqueeze(0) : t;
  Unit u;
  u.n = x.size(0);
  u.h = x.size(1);
  u.w = x.size(2);
  u.c = x.size(3);
  u.v = x.detach().to_vector<double>();
  if (t.dtype() == DType::u8) {
    for (double& e : u.v) e /= 255.0;
  } else {
    for (double& e : u.v) e = (e + 1.0) * 0.5;
  }
  return u;
}

void check_same(const Unit& a, const Unit& b, const char* op, const Tensor& ta, const Tensor& tb) {
  IRIS_CHECK(a.n == b.n && a.h == b.h && a.w == b.w && a.c == b.c, op,
             ": prediction and reference differ in shape: ", ta.summary(), " vs ", tb.summary());
}

double mse_of(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = a[i] - b[i];
    s += d * d;
  }
  return s / static_cast<double>(n);
}

double psnr_from_mse(double mse) {
  return mse == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(1.0 / mse);
}

Tensor image_tensor(const Image& img, const char* op, const char* what) {
  check_image(img, std::string(op) + " " + what);
  return stack_images({img});
}

}  // namespace

std::vector<double> ssim_gaussian_window() {
  std::vector<double> g(kSsimWindow);
  const int r = kSsimWindow / 2;
  double sum = 0;
  for (int k = 0; k < kSsimWindow; ++k) {
    const double x = k - r;
    g[static_cast<size_t>(k)] = std::exp(-x * x / (2 * kSsimSigma * kSsimSigma));
    sum += g[static_cast<size_t>(k)];
  }
  for (double& e : g) e /= sum;
  return g;
}

// The five local moments (means of a, b, a^2, b^2, ab under the window) by separable filtering: a
// horizontal pass over every row into [h, ow] buffers, then a vertical pass for each valid output row. Work
// is split over rows and the per-row sums of the SSIM map are added in row order, so the result does not
// depend on the thread count.
double ssim_plane(const double* a, const double* b, int h, int w, double L) {
  IRIS_CHECK(h >= kSsimWindow && w >= kSsimWindow, "ssim: images are ", h, "x", w, "; the ", kSsimWindow, "x",
             kSsimWindow, " window needs at least ", kSsimWindow, "x", kSsimWindow);
  const std::vector<double> g = ssim_gaussian_window();
  const int oh = h - kSsimWindow + 1, ow = w - kSsimWindow + 1;
  const size_t plane = static_cast<size_t>(h) * ow;
  std::vector<double> horiz(5 * plane);  // [5][h][ow]: a, b, aa, bb, ab
  cpu::parallel_for(0, h, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t y = lo; y < hi; ++y) {
      const double* ra = a + y * w;
      const double* rb = b + y * w;
      for (int x = 0; x < ow; ++x) {
        double m[5] = {0, 0, 0, 0, 0};
        for (int k = 0; k < kSsimWindow; ++k) {
          const double gk = g[static_cast<size_t>(k)], va = ra[x + k], vb = rb[x + k];
          m[0] += gk * va;
          m[1] += gk * vb;
          m[2] += gk * va * va;
          m[3] += gk * vb * vb;
          m[4] += gk * va * vb;
        }
        for (int q = 0; q < 5; ++q) horiz[q * plane + static_cast<size_t>(y) * ow + x] = m[q];
      }
    }
  });
  const double c1 = (0.01 * L) * (0.01 * L), c2 = (0.03 * L) * (0.03 * L);
  std::vector<double> row_sum(static_cast<size_t>(oh));
  cpu::parallel_for(0, oh, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t y = lo; y < hi; ++y) {
      double s = 0;
      for (int x = 0; x < ow; ++x) {
        double m[5] = {0, 0, 0, 0, 0};
        for (int k = 0; k < kSsimWindow; ++k) {
          const double gk = g[static_cast<size_t>(k)];
          const size_t at = static_cast<size_t>(y + k) * ow + x;
          for (int q = 0; q < 5; ++q) m[q] += gk * horiz[q * plane + at];
        }
        const double mu_a = m[0], mu_b = m[1];
        const double var_a = m[2] - mu_a * mu_a, var_b = m[3] - mu_b * mu_b, cov = m[4] - mu_a * mu_b;
        s += ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) /
             ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2));
      }
      row_sum[static_cast<size_t>(y)] = s;
    }
  });
  double total = 0;
  for (double s : row_sum) total += s;
  return total / (static_cast<double>(oh) * ow);
}

// ---- batches ----------------------------------------------------------------------------------------------

std::vector<double> psnr(const Tensor& pred, const Tensor& truth) {
  const Unit a = to_unit(pred, "psnr", "prediction"), b = to_unit(truth, "psnr", "reference");
  check_same(a, b, "psnr", pred, truth);
  std::vector<double> out(static_cast<size_t>(a.n));
  const int64_t per = a.h * a.w * a.c;
  for (int64_t i = 0; i < a.n; ++i)
    out[static_cast<size_t>(i)] = psnr_from_mse(mse_of(a.image(i), b.image(i), per));
  return out;
}

std::vector<double> ssim(const Tensor& pred, const Tensor& truth) {
  const Unit a = to_unit(pred, "ssim", "prediction"), b = to_unit(truth, "ssim", "reference");
  check_same(a, b, "ssim", pred, truth);
  IRIS_CHECK(a.h >= kSsimWindow && a.w >= kSsimWindow, "ssim: images are ", a.h, "x", a.w, " (",
             pred.summary(), "); the ", kSsimWindow, "x", kSsimWindow, " Gaussian window needs at least ",
             kSsimWindow, "x", kSsimWindow);
  std::vector<double> out(static_cast<size_t>(a.n));
  const size_t hw = static_cast<size_t>(a.h * a.w);
  std::vector<double> pa(hw), pb(hw);
  for (int64_t i = 0; i < a.n; ++i) {
    double sum = 0;
    for (int64_t ch = 0; ch < a.c; ++ch) {
      // De-interleave channel ch of image i into planes.
      const double* ia = a.image(i);
      const double* ib = b.image(i);
      for (size_t p = 0; p < hw; ++p) {
        pa[p] = ia[p * static_cast<size_t>(a.c) + static_cast<size_t>(ch)];
        pb[p] = ib[p * static_cast<size_t>(a.c) + static_cast<size_t>(ch)];
      }
      sum += ssim_plane(pa.data(), pb.data(), static_cast<int>(a.h), static_cast<int>(a.w), 1.0);
    }
    out[static_cast<size_t>(i)] = sum / static_cast<double>(a.c);
  }
  return out;
}

std::vector<double> consistency(const Tensor& pred, const Tensor& lowres) {
  const Unit p = to_unit(pred, "consistency", "prediction"),
             l = to_unit(lowres, "consistency", "low-res input");
  IRIS_CHECK(p.n == l.n && p.c == l.c, "consistency: prediction ", pred.summary(), " and low-res input ",
             lowres.summary(), " differ in count or channels");
  IRIS_CHECK(l.h <= p.h && l.w <= p.w, "consistency: the low-res input ", lowres.summary(),
             " is larger than the prediction ", pred.summary());
  // Downsample the prediction in [0, 1] units (the filter is linear and keeps constants, so this equals
  // downsampling first and converting after).
  const Tensor unit = Tensor::from_vector(p.v, {p.n, p.h, p.w, p.c}, DType::f64, Device::cpu());
  const std::vector<double> down = resize(unit, l.h, l.w, Filter::bicubic).to_vector<double>();
  std::vector<double> out(static_cast<size_t>(p.n));
  const int64_t per = l.h * l.w * l.c;
  for (int64_t i = 0; i < p.n; ++i)
    out[static_cast<size_t>(i)] = mse_of(down.data() + i * per, l.image(i), per);
  return out;
}

// ---- single images ----------------------------------------------------------------------------------------

double psnr(const Image& pred, const Image& truth) {
  return psnr(image_tensor(pred, "psnr", "prediction"), image_tensor(truth, "psnr", "reference"))[0];
}

double ssim(const Image& pred, const Image& truth) {
  return ssim(image_tensor(pred, "ssim", "prediction"), image_tensor(truth, "ssim", "reference"))[0];
}

double consistency(const Image& pred, const Image& lowres) {
  return consistency(image_tensor(pred, "consistency", "prediction"),
                     image_tensor(lowres, "consistency", "low-res input"))[0];
}

double mse01(const Image& a, const Image& b) {
  const Unit ua = to_unit(image_tensor(a, "mse", "first image"), "mse", "first image");
  const Unit ub = to_unit(image_tensor(b, "mse", "second image"), "mse", "second image");
  IRIS_CHECK(a.height == b.height && a.width == b.width && a.channels == b.channels,
             "mse: images differ in size: ", a.str(), " vs ", b.str());
  return mse_of(ua.v.data(), ub.v.data(), static_cast<int64_t>(ua.v.size()));
}

double psnr_where(const Image& pred, const Image& truth, const std::vector<uint8_t>& mask) {
  check_image(pred, "psnr_where prediction");
  check_image(truth, "psnr_where reference");
  IRIS_CHECK(pred.height == truth.height && pred.width == truth.width && pred.channels == truth.channels,
             "psnr_where: images differ in size: ", pred.str(), " vs ", truth.str());
  IRIS_CHECK(mask.size() == static_cast<size_t>(pred.height) * static_cast<size_t>(pred.width),
             "psnr_where: the mask has ", mask.size(), " entries for a ", pred.height, "x", pred.width,
             " image");
  double sum = 0;
  int64_t count = 0;
  const size_t C = static_cast<size_t>(pred.channels);
  for (size_t p = 0; p < mask.size(); ++p) {
    if (!mask[p]) continue;
    for (size_t c = 0; c < C; ++c) {
      const double d = (static_cast<double>(pred.pixels[p * C + c]) - truth.pixels[p * C + c]) / 255.0;
      sum += d * d;
    }
    count += static_cast<int64_t>(C);
  }
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  return psnr_from_mse(sum / static_cast<double>(count));
}

}  // namespace iris::data
