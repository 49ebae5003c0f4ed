// CPU softmax / log_softmax over the last axis and their backward (framework/kernels/softmax.h). One row per
// task of the thread pool, in three passes (max, sum of exp, outputs), in the compute type (float for f32 and
// bf16, double for f64): each row is computed by one thread, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/cpu/parallel.h"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/softmax.h"

namespace iris::cpu {

void softmax(const Tensor& x, Tensor& y, bool log) {
  dispatch_floating(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const int64_t n = x.shape().back();
    const int64_t rows = n ? x.numel() / n : 0;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* xr = xp + r * n;
        T* yr = yp + r * n;
        C m = -std::numeric_limits<C>::infinity();
        for (int64_t i = 0; i < n; ++i) m = std::max(m, load_as<C>(xr + i));
        C s = 0;
        for (int64_t i = 0; i < n; ++i) s += std::exp(load_as<C>(xr + i) - m);
        if (log) {
          const C lse = m + std::log(s);
          for (int64_t i = 0; i < n; ++i) store_as(yr + i, load_as<C>(xr + i) - lse);
        } else {
          const C inv = C(1) / s;
          for (int64_t i = 0; i < n; ++i) store_as(yr + i, std::exp(load_as<C>(xr + i) - m) * inv);
        }
      }
    });
  });
}

void softmax_backward(const Tensor& y, const Tensor& g, Tensor& dx, bool log) {
  dispatch_floating(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const int64_t n = y.shape().back();
    const int64_t rows = n ? y.numel() / n : 0;
    const T* yp = y.data<T>();
    const T* gp = g.data<T>();
    T* dp = dx.data<T>();
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* yr = yp + r * n;
        const T* gr = gp + r * n;
        T* dr = dp + r * n;
        if (log) {  // dx = g - softmax * sum(g)
          C s = 0;
          for (int64_t i = 0; i < n; ++i) s += load_as<C>(gr + i);
          for (int64_t i = 0; i < n; ++i)
            store_as(dr + i, load_as<C>(gr + i) - std::exp(load_as<C>(yr + i)) * s);
        } else {  // dx = y * (g - sum(g * y))
          C s = 0;
          for (int64_t i = 0; i < n; ++i) s += load_as<C>(gr + i) * load_as<C>(yr + i);
          for (int64_t i = 0; i < n; ++i) store_as(dr + i, load_as<C>(yr + i) * (load_as<C>(gr + i) - s));
        }
      }
    });
  });
}

}  // namespace iris::cpu
