// Helpers of the GPU suite (test_gpu). Every test case starts with IRIS_GPU_TEST_BEGIN(): without a CUDA
// device (or in a build without CUDA) it prints "skipped: no CUDA device", which ctest's
// SKIP_REGULAR_EXPRESSION turns into a skipped test, and returns.
//
// The suite compares every CUDA kernel with its CPU twin on the same inputs. Kernel-level checks call
// iris::cuda::<kernel> directly on outputs poisoned beforehand (NaN, or a sentinel for integers), so an
// element the kernel forgot to write fails; those parts are compiled only when IRIS_WITH_CUDA is defined.
#pragma once

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/common/test_util.h"

#define IRIS_GPU_TEST_BEGIN()             \
  do {                                    \
    if (!::iris::cuda_available()) {      \
      MESSAGE("skipped: no CUDA device"); \
      return;                             \
    }                                     \
  } while (0)

namespace iris::gputest {

inline Device gpu() {
  return Device::cuda(0);
}

// Relative L2 tolerances for CUDA vs CPU on the same inputs.
inline double tol_for(DType t) {
  return t == DType::bf16 ? 2e-2 : (t == DType::f32 ? 1e-5 : 1e-12);
}

inline std::string describe(const Tensor& t) {
  return t.defined() ? t.summary() + " strides " + shape_str(t.strides()) : std::string("undefined");
}

// A CUDA tensor whose every element is NaN (floating dtypes) or 171 (integers): what a kernel leaves
// unwritten stays visibly wrong.
inline Tensor poisoned(const Shape& shape, DType dt, Device dev = gpu()) {
  return Tensor::full(shape, is_floating(dt) ? std::nan("") : 171.0, dt, dev);
}

// Fills the allocator's cache with a NaN block and frees it, so that the next allocations of an op-level test
// (whose outputs the op allocates) likely start out as NaN too.
inline void poison_pool() {
  Tensor t = Tensor::full({int64_t{1} << 24}, std::nan(""), DType::f32, gpu());
  (void)t;
}

// CHECKs that a CUDA result matches its CPU reference: same shape, NaN exactly where the reference has NaN,
// relative L2 error at most `tol`. The message names `what`, both tensors and the error.
inline void expect_match(const Tensor& got, const Tensor& ref, double tol, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == ref.shape(), what, ": shape ", shape_str(got.shape()), " vs reference ",
                  shape_str(ref.shape()));
  const std::vector<double> g = got.to_vector<double>(), r = ref.to_vector<double>();
  int64_t nan_bad = 0, first_nan_bad = -1;
  double num = 0, den = 0, worst = 0;
  int64_t worst_i = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool gn = std::isnan(g[i]), rn = std::isnan(r[i]);
    if (gn || rn) {
      if (gn != rn && nan_bad++ == 0) first_nan_bad = static_cast<int64_t>(i);
      continue;
    }
    if (std::isinf(g[i]) || std::isinf(r[i])) {
      if (g[i] != r[i] && nan_bad++ == 0) first_nan_bad = static_cast<int64_t>(i);
      continue;
    }
    const double d = g[i] - r[i];
    num += d * d;
    den += r[i] * r[i];
    if (std::abs(d) > worst) {
      worst = std::abs(d);
      worst_i = static_cast<int64_t>(i);
    }
  }
  const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  CHECK_MESSAGE(nan_bad == 0, what, ": ", nan_bad, " elements NaN/inf on one side only (first at ",
                first_nan_bad, ": cuda ", (first_nan_bad >= 0 ? g[first_nan_bad] : 0.0), " vs cpu ",
                (first_nan_bad >= 0 ? r[first_nan_bad] : 0.0), "); cuda ", describe(got), " vs cpu ",
                describe(ref));
  CHECK_MESSAGE(rel <= tol, what, ": relative L2 error ", rel, " > ", tol, " (worst element ", worst_i,
                ": cuda ", (worst_i >= 0 ? g[worst_i] : 0.0), " vs cpu ", (worst_i >= 0 ? r[worst_i] : 0.0),
                "); cuda ", describe(got), " vs cpu ", describe(ref));
}

// CHECKs bit-for-bit equality of the values (after conversion to double, which is exact for every dtype but
// large i64), NaN matching NaN.
inline void expect_equal(const Tensor& got, const Tensor& ref, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == ref.shape(), what, ": shape ", shape_str(got.shape()), " vs reference ",
                  shape_str(ref.shape()));
  const std::vector<double> g = got.to_vector<double>(), r = ref.to_vector<double>();
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same = (std::isnan(g[i]) && std::isnan(r[i])) || g[i] == r[i];
    if (!same && bad++ == 0) first = static_cast<int64_t>(i);
  }
  CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", g.size(), " elements differ (first at ", first, ": cuda ",
                (first >= 0 ? g[first] : 0.0), " vs cpu ", (first >= 0 ? r[first] : 0.0), "); cuda ",
                describe(got), " vs cpu ", describe(ref));
}

// The same values as `t` placed at element offset 1 of a fresh buffer on `dev`: contiguous but not 16-byte
// aligned (exercises the kernels' unaligned paths).
inline Tensor misaligned(const Tensor& t, Device dev = gpu()) {
  Tensor buf = Tensor::zeros({t.numel() + 1}, t.dtype(), dev);
  Tensor view = buf.slice(0, 1, t.numel() + 1).view(t.shape());
  NoGradGuard ng;
  view.copy_(t);
  return view;
}

inline std::string cat_shape(const Shape& s) {
  return shape_str(s);
}

}  // namespace iris::gputest
