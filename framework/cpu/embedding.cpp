// CPU lookup kernels: embedding rows (forward, deterministic scatter-add backward) and per-row gathers.
#include "framework/kernels/embedding.h"

#include <algorithm>
#include <vector>

#include "framework/cpu/parallel.h"
#include "framework/kernels/dispatch.h"

namespace iris::cpu {

void check_indices(const Tensor& indices, int64_t limit, const char* op, const char* what) {
  dispatch_index(indices.dtype(), op, [&](auto tag) {
    using I = decltype(tag);
    const I* p = indices.data<I>();
    const int64_t n = indices.numel();
    // A serial scan: cheap next to any use of the indices, and it reports the first bad one.
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = static_cast<int64_t>(p[i]);
      if (v < 0 || v >= limit)
        IRIS_THROW(op, ": index ", v, " at flat position ", i, " of indices ", indices.summary(),
                   " is outside [0, ", limit, "): ", what, " = ", limit);
    }
  });
}

void embedding_forward(const Tensor& weight, const Tensor& indices, Tensor& out) {
  const int64_t D = weight.shape()[1];
  const int64_t n = indices.numel();
  dispatch_all(weight.dtype(), [&](auto wtag) {
    using T = decltype(wtag);
    const T* w = weight.data<T>();
    T* o = out.data<T>();
    dispatch_index(indices.dtype(), "embedding", [&](auto itag) {
      using I = decltype(itag);
      const I* idx = indices.data<I>();
      parallel_for(0, n, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          const T* src = w + static_cast<int64_t>(idx[i]) * D;
          std::copy(src, src + D, o + i * D);
        }
      });
    });
  });
}

void embedding_backward(const Tensor& gout, const Tensor& indices, Tensor& dweight) {
  const int64_t V = dweight.shape()[0], D = dweight.shape()[1];
  const int64_t n = indices.numel();
  // Bucket the positions by row (a stable counting sort: positions stay in increasing order within a row),
  // then let each row sum its own positions. Work is split over rows of the weight, never over indices, so
  // no two threads add into one row and the order of each sum is fixed.
  std::vector<int64_t> start(static_cast<size_t>(V + 1), 0);
  std::vector<int64_t> order(static_cast<size_t>(n));
  dispatch_index(indices.dtype(), "embedding_backward", [&](auto itag) {
    using I = decltype(itag);
    const I* idx = indices.data<I>();
    for (int64_t i = 0; i < n; ++i) ++start[static_cast<size_t>(idx[i]) + 1];
    for (int64_t r = 0; r < V; ++r) start[r + 1] += start[r];
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[next[static_cast<size_t>(idx[i])]++] = i;
  });
  dispatch_floating(dweight.dtype(), "embedding_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = gout.data<T>();
    T* dw = dweight.data<T>();
    parallel_for(0, V, std::max<int64_t>(1, 4096 / std::max<int64_t>(D, 1)), [&](int64_t lo, int64_t hi) {
      std::vector<double> acc(static_cast<size_t>(D));
      for (int64_t r = lo; r < hi; ++r) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t k = start[r]; k < start[r + 1]; ++k) {
          const T* gr = g + order[k] * D;
          for (int64_t j = 0; j < D; ++j) acc[j] += static_cast<double>(load_as<compute_t<T>>(gr + j));
        }
        for (int64_t j = 0; j < D; ++j) store_as(dw + r * D + j, acc[j]);
      }
    });
  });
}

void gather_last(const Tensor& x, const Tensor& index, Tensor& out) {
  const int64_t R = index.numel();
  const int64_t C = R > 0 ? x.numel() / R : 0;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    dispatch_index(index.dtype(), "gather_last", [&](auto itag) {
      using I = decltype(itag);
      const I* idx = index.data<I>();
      parallel_for(0, R, 8192, [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) op[r] = xp[r * C + static_cast<int64_t>(idx[r])];
      });
    });
  });
}

void gather_last_backward(const Tensor& gout, const Tensor& index, Tensor& dx) {
  const int64_t R = index.numel();
  const int64_t C = R > 0 ? dx.numel() / R : 0;
  dispatch_all(dx.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* g = gout.data<T>();
    T* d = dx.data<T>();
    dispatch_index(index.dtype(), "gather_last_backward", [&](auto itag) {
      using I = decltype(itag);
      const I* idx = index.data<I>();
      parallel_for(0, R, std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
          std::fill(d + r * C, d + (r + 1) * C, T{});
          d[r * C + static_cast<int64_t>(idx[r])] = g[r];
        }
      });
    });
  });
}

}  // namespace iris::cpu
