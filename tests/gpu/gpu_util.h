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

using test::describe;

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

// CHECKs that a CUDA result matches its CPU reference: same shape, NaN/inf exactly where the reference has
// them, relative L2 error at most `tol`. The message names `what`, both tensors and the error.
inline void expect_match(const Tensor& got, const Tensor& ref, double tol, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == ref.shape(), what, ": shape ", shape_str(got.shape()), " vs reference ",
                  shape_str(ref.shape()));
  test::check_rel_l2(got, ref, tol, what, {"cuda", "cpu"});
}

// CHECKs bit-for-bit equality of the values (after conversion to double, which is exact for every dtype but
// large i64), NaN matching NaN.
inline void expect_equal(const Tensor& got, const Tensor& ref, const std::string& what) {
  REQUIRE_MESSAGE(got.shape() == ref.shape(), what, ": shape ", shape_str(got.shape()), " vs reference ",
                  shape_str(ref.shape()));
  test::check_same_values(got, ref, what, {"cuda", "cpu"});
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
