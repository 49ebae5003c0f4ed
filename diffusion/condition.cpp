#include "diffusion/condition.h"

#include <cmath>

#include "framework/iris.h"

namespace iris::diffusion {

namespace {
// The dense [out, in] matrix of a 1-D resampling (row i: output i's weights over the inputs).
Tensor resample_matrix(int64_t in, int64_t out, data::Filter filter, DType dtype, Device device) {
  const data::ResampleWeights rw =
      data::resample_weights(static_cast<int>(in), static_cast<int>(out), filter);
  std::vector<double> m(static_cast<size_t>(in * out), 0.0);
  for (int64_t i = 0; i < out; ++i)
    for (int k = 0; k < rw.taps[i]; ++k) m[i * in + rw.first[i] + k] += rw.w[i * rw.max_taps + k];
  return Tensor::from_vector(m, {out, in}, dtype, device);
}

// Applies per-axis matrices: along W with mw [*, W_out, W_in] and along H with mh [*, H_out, H_in], where
// * is 1 (shared) or N (per sample). x: [N, h, w, C].
Tensor apply_separable(const Tensor& x, const Tensor& mh, const Tensor& mw) {
  // Width: [N, h, w, C] -> [N, h, C, w] (@ mw^T) -> [N, h, C, W] -> [N, h, W, C]
  const Tensor mwt = mw.transpose(-1, -2).unsqueeze(1);  // [*, 1, w, W]
  Tensor y = matmul(x.permute({0, 1, 3, 2}), mwt).permute({0, 1, 3, 2});
  // Height: [N, h, W, C] -> [N, W, C, h] (@ mh^T) -> [N, W, C, H] -> [N, H, W, C]
  const Tensor mht = mh.transpose(-1, -2).unsqueeze(1);  // [*, 1, h, H]
  return matmul(y.permute({0, 2, 3, 1}), mht).permute({0, 3, 1, 2}).contiguous();
}
}  // namespace

Tensor resize_tensor(const Tensor& x, int64_t H, int64_t W, data::Filter filter) {
  check_defined(x, "resize_tensor");
  IRIS_CHECK(x.dim() == 4, "resize_tensor: expected [N, h, w, C], got ", x.summary());
  IRIS_CHECK(H > 0 && W > 0, "resize_tensor: invalid output size ", H, "x", W);
  if (x.size(1) == H && x.size(2) == W) return x;
  const DType dt = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  const Tensor mh = resample_matrix(x.size(1), H, filter, dt, x.device()).unsqueeze(0);
  const Tensor mw = resample_matrix(x.size(2), W, filter, dt, x.device()).unsqueeze(0);
  return apply_separable(x.to(dt), mh, mw);
}

std::vector<double> blur_matrix(int64_t n, double sigma) {
  std::vector<double> m(static_cast<size_t>(n * n), 0.0);
  if (sigma <= 0 || n == 1) {
    for (int64_t i = 0; i < n; ++i) m[i * n + i] = 1.0;
    return m;
  }
  const int64_t radius = std::min<int64_t>(n - 1, static_cast<int64_t>(std::ceil(3.0 * sigma)));
  std::vector<double> k(static_cast<size_t>(2 * radius + 1));
  double total = 0;
  for (int64_t d = -radius; d <= radius; ++d)
    total += k[d + radius] = std::exp(-0.5 * d * d / (sigma * sigma));
  for (double& v : k) v /= total;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = -radius; d <= radius; ++d) {
      int64_t j = i + d;
      // reflect without repeating the edge: -1 -> 1, n -> n - 2 (radius <= n - 1 keeps one reflection enough)
      if (j < 0) j = -j;
      if (j >= n) j = 2 * (n - 1) - j;
      m[i * n + j] += k[d + radius];
    }
  return m;
}

Tensor gaussian_blur(const Tensor& x, const std::vector<double>& sigma) {
  check_defined(x, "gaussian_blur");
  IRIS_CHECK(x.dim() == 4 && static_cast<int64_t>(sigma.size()) == x.size(0),
             "gaussian_blur: expected [N, h, w, C] "
             "and N sigmas, got ",
             x.summary(), " and ", sigma.size(), " sigmas");
  const int64_t N = x.size(0), h = x.size(1), w = x.size(2);
  std::vector<double> mh, mw;
  for (int64_t i = 0; i < N; ++i) {
    const auto bh = blur_matrix(h, sigma[i]), bw = blur_matrix(w, sigma[i]);
    mh.insert(mh.end(), bh.begin(), bh.end());
    mw.insert(mw.end(), bw.begin(), bw.end());
  }
  const DType dt = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  return apply_separable(x.to(dt), Tensor::from_vector(mh, {N, h, h}, dt, x.device()),
                         Tensor::from_vector(mw, {N, w, w}, dt, x.device()));
}

Tensor blur_augment(const Tensor& x, const BlurAugment& a, Generator& gen) {
  IRIS_CHECK(a.prob >= 0 && a.prob <= 1 && a.sigma_lo >= 0 && a.sigma_lo <= a.sigma_hi,
             "blur augmentation: probability must be in [0, 1] and 0 <= sigma_lo <= sigma_hi, got p=", a.prob,
             " sigma=[", a.sigma_lo, ", ", a.sigma_hi, "]");
  if (a.prob == 0) return x;
  const int64_t N = x.size(0);
  // [N, 2] uniforms on the CPU: column 0 decides, column 1 places sigma in its range.
  const auto u = rand({N, 2}, gen, DType::f64, Device::cpu()).to_vector<double>();
  std::vector<double> sigma(static_cast<size_t>(N), 0.0);
  bool any = false;
  for (int64_t i = 0; i < N; ++i)
    if (u[2 * i] < a.prob) {
      sigma[i] = a.sigma_lo + (a.sigma_hi - a.sigma_lo) * u[2 * i + 1];
      any = any || sigma[i] > 0;
    }
  return any ? gaussian_blur(x, sigma) : x;
}

}  // namespace iris::diffusion
