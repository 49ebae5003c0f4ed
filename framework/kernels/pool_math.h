// The per-element computations of the pooling and resizing kernels (framework/kernels/pool.h), one
// definition compiled for both backends (IRIS_HD: host and device), so that the CPU and CUDA kernels do the
// same operations in the same order. Each function computes one output element from raw pointers to an
// image's channel-last planes; `e` indexes [N, Ho, Wo, C] (forward) or [N, H, W, C] (backward) row-major.
#pragma once

#include <cmath>
#include <cstdint>

#include "framework/kernels/functors.h"
#include "framework/kernels/pool.h"

namespace iris::pool_math {

// The output rows (or columns) whose window holds input row y: [lo, hi], possibly empty (lo > hi).
IRIS_HD void windows_holding(int64_t y, int64_t k, int64_t s, int64_t pad, int64_t out_size, int64_t& lo,
                             int64_t& hi) {
  const int64_t a = y + pad - k + 1;  // the window of o holds y when o*s - pad <= y < o*s - pad + k
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = (y + pad) / s;
  if (hi > out_size - 1) hi = out_size - 1;
}

IRIS_HD int64_t avg_divisor(const PoolParams& p, int64_t ho, int64_t wo) {
  if (p.count_include_pad) return p.kh * p.kw;
  const int64_t y0 = ho * p.sh - p.ph, x0 = wo * p.sw - p.pw;
  const int64_t y1 = y0 + p.kh < p.H ? y0 + p.kh : p.H, x1 = x0 + p.kw < p.W ? x0 + p.kw : p.W;
  return ((y1 - (y0 > 0 ? y0 : 0))) * (x1 - (x0 > 0 ? x0 : 0));
}

template <class T>
IRIS_HD void max_pool_one(const T* x, T* out, int64_t* argmax, const PoolParams& p, int64_t e) {
  using F = compute_t<T>;
  const int64_t c = e % p.C, wo = (e / p.C) % p.Wo, ho = (e / (p.C * p.Wo)) % p.Ho,
                n = e / (p.C * p.Wo * p.Ho);
  const T* img = x + n * p.H * p.W * p.C + c;
  F best = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t y = ho * p.sh - p.ph + i;
    if (y < 0 || y >= p.H) continue;
    for (int64_t j = 0; j < p.kw; ++j) {
      const int64_t xx = wo * p.sw - p.pw + j;
      if (xx < 0 || xx >= p.W) continue;
      const F v = load_as<F>(img + (y * p.W + xx) * p.C);
      if (at < 0 || v > best || v != v) {  // v != v: a NaN wins, as in PyTorch
        best = v;
        at = y * p.W + xx;
        if (v != v) i = p.kh, j = p.kw;  // nothing replaces a NaN
      }
    }
  }
  store_as(out + e, best);
  if (argmax) argmax[e] = at;
}

template <class T>
IRIS_HD void max_pool_backward_one(const T* g, const int64_t* argmax, T* dx, const PoolParams& p, int64_t e) {
  using F = compute_t<T>;
  const int64_t c = e % p.C, x = (e / p.C) % p.W, y = (e / (p.C * p.W)) % p.H, n = e / (p.C * p.W * p.H);
  int64_t olo, ohi, qlo, qhi;
  windows_holding(y, p.kh, p.sh, p.ph, p.Ho, olo, ohi);
  windows_holding(x, p.kw, p.sw, p.pw, p.Wo, qlo, qhi);
  const int64_t me = y * p.W + x, base = n * p.Ho * p.Wo * p.C + c;
  F sum = 0;
  for (int64_t o = olo; o <= ohi; ++o)
    for (int64_t q = qlo; q <= qhi; ++q) {
      const int64_t k = base + (o * p.Wo + q) * p.C;
      if (argmax[k] == me) sum += load_as<F>(g + k);
    }
  store_as(dx + e, sum);
}

template <class T>
IRIS_HD void avg_pool_one(const T* x, T* out, const PoolParams& p, int64_t e) {
  using F = compute_t<T>;
  const int64_t c = e % p.C, wo = (e / p.C) % p.Wo, ho = (e / (p.C * p.Wo)) % p.Ho,
                n = e / (p.C * p.Wo * p.Ho);
  const T* img = x + n * p.H * p.W * p.C + c;
  F sum = 0;
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t y = ho * p.sh - p.ph + i;
    if (y < 0 || y >= p.H) continue;
    for (int64_t j = 0; j < p.kw; ++j) {
      const int64_t xx = wo * p.sw - p.pw + j;
      if (xx >= 0 && xx < p.W) sum += load_as<F>(img + (y * p.W + xx) * p.C);
    }
  }
  store_as(out + e, sum / static_cast<F>(avg_divisor(p, ho, wo)));
}

template <class T>
IRIS_HD void avg_pool_backward_one(const T* g, T* dx, const PoolParams& p, int64_t e) {
  using F = compute_t<T>;
  const int64_t c = e % p.C, x = (e / p.C) % p.W, y = (e / (p.C * p.W)) % p.H, n = e / (p.C * p.W * p.H);
  int64_t olo, ohi, qlo, qhi;
  windows_holding(y, p.kh, p.sh, p.ph, p.Ho, olo, ohi);
  windows_holding(x, p.kw, p.sw, p.pw, p.Wo, qlo, qhi);
  const int64_t base = n * p.Ho * p.Wo * p.C + c;
  F sum = 0;
  for (int64_t o = olo; o <= ohi; ++o)
    for (int64_t q = qlo; q <= qhi; ++q)
      sum += load_as<F>(g + base + (o * p.Wo + q) * p.C) / static_cast<F>(avg_divisor(p, o, q));
  store_as(dx + e, sum);
}

// Bilinear taps along one axis for output index o: input indices i0, i1 and their weights.
struct Taps {
  int64_t i0, i1;
  double w0, w1;
};
IRIS_HD Taps bilinear_taps(int64_t o, int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  double s = (static_cast<double>(o) + 0.5) * scale - 0.5;
  if (s < 0) s = 0;
  int64_t i0 = static_cast<int64_t>(floor(s));
  if (i0 > in_size - 1) i0 = in_size - 1;
  double l = s - static_cast<double>(i0);
  if (l > 1) l = 1;
  return {i0, i0 < in_size - 1 ? i0 + 1 : i0, 1.0 - l, l};
}

// The weight with which output o reads input i along one axis (0 when it does not).
IRIS_HD double bilinear_weight(const Taps& t, int64_t i) {
  return (t.i0 == i ? t.w0 : 0.0) + (t.i1 == i ? t.w1 : 0.0);
}

// The outputs that may read input i: a superset of those that do (bilinear_weight decides), from the
// inverse of the coordinate map with a margin of one on each side.
IRIS_HD void bilinear_readers(int64_t i, int64_t in_size, int64_t out_size, int64_t& lo, int64_t& hi) {
  const double inv = static_cast<double>(out_size) / static_cast<double>(in_size);
  lo = i <= 1 ? 0 : static_cast<int64_t>(floor((static_cast<double>(i) - 0.5) * inv - 0.5)) - 1;
  hi = static_cast<int64_t>(ceil((static_cast<double>(i) + 1.5) * inv - 0.5)) + 1;
  if (lo < 0) lo = 0;
  if (hi > out_size - 1) hi = out_size - 1;
  if (i == in_size - 1) hi = out_size - 1;  // the clamped taps of the last rows read the last input
}

template <class T>
IRIS_HD void resize_one(const T* x, T* out, const ResizeParams& p, int64_t e) {
  using F = compute_t<T>;
  const int64_t c = e % p.C, q = (e / p.C) % p.Wo, o = (e / (p.C * p.Wo)) % p.Ho, n = e / (p.C * p.Wo * p.Ho);
  const Taps ty = bilinear_taps(o, p.H, p.Ho), tx = bilinear_taps(q, p.W, p.Wo);
  const T* img = x + n * p.H * p.W * p.C + c;
  auto at = [&](int64_t y, int64_t xx) { return load_as<F>(img + (y * p.W + xx) * p.C); };
  const F wy0 = static_cast<F>(ty.w0), wy1 = static_cast<F>(ty.w1), wx0 = static_cast<F>(tx.w0),
          wx1 = static_cast<F>(tx.w1);
  const F v = wy0 * (wx0 * at(ty.i0, tx.i0) + wx1 * at(ty.i0, tx.i1)) +
              wy1 * (wx0 * at(ty.i1, tx.i0) + wx1 * at(ty.i1, tx.i1));
  store_as(out + e, v);
}

template <class T>
IRIS_HD void resize_backward_one(const T* g, T* dx, const ResizeParams& p, int64_t e) {
  using F = compute_t<T>;
  const int64_t c = e % p.C, x = (e / p.C) % p.W, y = (e / (p.C * p.W)) % p.H, n = e / (p.C * p.W * p.H);
  int64_t olo, ohi, qlo, qhi;
  bilinear_readers(y, p.H, p.Ho, olo, ohi);
  bilinear_readers(x, p.W, p.Wo, qlo, qhi);
  const T* gi = g + n * p.Ho * p.Wo * p.C + c;
  F sum = 0;
  for (int64_t o = olo; o <= ohi; ++o) {
    const F wy = static_cast<F>(bilinear_weight(bilinear_taps(o, p.H, p.Ho), y));
    if (wy == 0) continue;
    F row = 0;
    for (int64_t q = qlo; q <= qhi; ++q) {
      const F wx = static_cast<F>(bilinear_weight(bilinear_taps(q, p.W, p.Wo), x));
      if (wx != 0) row += wx * load_as<F>(gi + (o * p.Wo + q) * p.C);
    }
    sum += wy * row;
  }
  store_as(dx + e, sum);
}

}  // namespace iris::pool_math
