#include "framework/kernels/reduce.h"

#include <cmath>
#include <limits>

#include "framework/cpu/parallel.h"
#include "framework/kernels/dispatch.h"

namespace iris::cpu {

namespace {

// Rows are summed in fixed chunks of this many elements whose partial sums are then added in order, so a
// sum has the same rounding whether a row is split over threads or not.
constexpr int64_t kChunk = 4096;

template <class T>
double row_sum(const T* p, int64_t n, int64_t stride) {
  double total = 0;
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t e = std::min(n, c + kChunk);
    double part = 0;
    for (int64_t i = c; i < e; ++i) part += static_cast<double>(load_as<float>(p + i * stride));
    total += part;
  }
  return total;
}
template <>
double row_sum<double>(const double* p, int64_t n, int64_t stride) {
  double total = 0;
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t e = std::min(n, c + kChunk);
    double part = 0;
    for (int64_t i = c; i < e; ++i) part += p[i * stride];
    total += part;
  }
  return total;
}

template <class T>
double load_d(const T* p) {
  return static_cast<double>(load_as<compute_t<T>>(p));
}

// Reduces one row of n elements (stride apart).
template <class T>
double reduce_row(ReduceOp op, const T* p, int64_t n, int64_t stride, int64_t correction) {
  switch (op) {
    case ReduceOp::sum: return row_sum(p, n, stride);
    case ReduceOp::mean: return row_sum(p, n, stride) / static_cast<double>(n);
    case ReduceOp::max: {
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) {
        const double v = load_d(p + i * stride);
        if (v > m || std::isnan(v)) m = v;
        if (std::isnan(m)) break;
      }
      return m;
    }
    case ReduceOp::min: {
      double m = std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) {
        const double v = load_d(p + i * stride);
        if (v < m || std::isnan(v)) m = v;
        if (std::isnan(m)) break;
      }
      return m;
    }
    case ReduceOp::var: {
      const double mu = row_sum(p, n, stride) / static_cast<double>(n);
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double d = load_d(p + i * stride) - mu;
        ss += d * d;
      }
      const double denom = static_cast<double>(n - correction);
      return denom > 0 ? ss / denom : std::numeric_limits<double>::quiet_NaN();
    }
  }
  return 0;
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x_in, Tensor& out, const std::vector<int64_t>& axes, int64_t correction) {
  dispatch_floating(x_in.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    // Reorder x as [kept axes..., reduced axes...] and make it contiguous, so each output is one row.
    std::vector<int64_t> order;
    std::vector<bool> reduced(x_in.dim(), false);
    for (int64_t a : axes) reduced[a] = true;
    for (int64_t i = 0; i < x_in.dim(); ++i)
      if (!reduced[i]) order.push_back(i);
    const bool leading_block = [&] {  // reduced axes are a prefix: reduce down columns without a transpose
      for (size_t i = 0; i < axes.size(); ++i)
        if (axes[i] != static_cast<int64_t>(i)) return false;
      return true;
    }();
    for (int64_t a : axes) order.push_back(a);
    int64_t cols = 1;
    for (int64_t a : axes) cols *= x_in.shape()[a];
    const int64_t rows = out.numel();
    T* o = out.data<T>();

    if (leading_block && x_in.is_contiguous() && op != ReduceOp::var && rows > 1) {
      // x is [cols (reduced), rows (kept)] row-major: out[r] = op over c of x[c, r].
      const T* p = x_in.data<T>();
      parallel_for(0, rows, 256, [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) store_as(o + r, reduce_row(op, p + r, cols, rows, correction));
      });
      return;
    }
    const Tensor x = x_in.detach().permute(order).contiguous();
    const T* p = x.data<T>();
    parallel_for(0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(cols, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) store_as(o + r, reduce_row(op, p + r * cols, cols, 1, correction));
    });
  });
}

}  // namespace iris::cpu
