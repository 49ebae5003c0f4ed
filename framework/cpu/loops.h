// Strided iteration over several operands that share one (broadcast) shape.
//
// for_each_strided calls f(offsets, n, inner) for runs of the innermost (coalesced) axis: `offsets[k]` is the
// element offset of operand k at the run's start, `inner[k]` its stride along the run, `n` the run length.
// Axes are coalesced first, so contiguous operands become one long run.
#pragma once

#include <array>
#include <cstdint>

#include "framework/core/shape.h"
#include "framework/cpu/parallel.h"

namespace iris::cpu {

template <size_t K>
struct StridedShape {
  Shape shape;
  std::array<Shape, K> strides;
};

// Drops size-1 axes and merges axis i into i+1 where every operand is contiguous across them.
template <size_t K>
StridedShape<K> coalesce(const Shape& shape, const std::array<Shape, K>& strides) {
  StridedShape<K> out;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    const bool merge = !out.shape.empty() && [&] {
      for (size_t k = 0; k < K; ++k)
        if (out.strides[k].back() != strides[k][i] * shape[i]) return false;
      return true;
    }();
    if (merge) {
      out.shape.back() *= shape[i];
      for (size_t k = 0; k < K; ++k) out.strides[k].back() = strides[k][i];
    } else {
      out.shape.push_back(shape[i]);
      for (size_t k = 0; k < K; ++k) out.strides[k].push_back(strides[k][i]);
    }
  }
  if (out.shape.empty()) {  // a single element
    out.shape.push_back(1);
    for (size_t k = 0; k < K; ++k) out.strides[k].push_back(0);
  }
  return out;
}

template <size_t K, class F>
void for_each_strided(const Shape& shape, const std::array<Shape, K>& strides, F&& f) {
  if (shape_numel(shape) == 0) return;
  const StridedShape<K> s = coalesce(shape, strides);
  const int64_t nd = static_cast<int64_t>(s.shape.size());
  const int64_t inner = s.shape[nd - 1];
  std::array<int64_t, K> inner_stride;
  for (size_t k = 0; k < K; ++k) inner_stride[k] = s.strides[k][nd - 1];
  const int64_t rows = shape_numel(s.shape) / inner;
  const int64_t grain = std::max<int64_t>(1, 32768 / inner);
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    // Multi-index of row `lo` over the outer axes, then step it like an odometer.
    Shape idx(nd > 1 ? nd - 1 : 0, 0);
    int64_t r = lo;
    for (int64_t d = nd - 2; d >= 0; --d) {
      idx[d] = r % s.shape[d];
      r /= s.shape[d];
    }
    std::array<int64_t, K> off{};
    for (size_t k = 0; k < K; ++k)
      for (int64_t d = 0; d < nd - 1; ++d) off[k] += idx[d] * s.strides[k][d];
    for (int64_t row = lo; row < hi; ++row) {
      f(off, inner, inner_stride);
      for (int64_t d = nd - 2; d >= 0; --d) {
        ++idx[d];
        for (size_t k = 0; k < K; ++k) off[k] += s.strides[k][d];
        if (idx[d] < s.shape[d]) break;
        for (size_t k = 0; k < K; ++k) off[k] -= s.strides[k][d] * s.shape[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace iris::cpu
