// The CPU kernel profile behind `iris bench --profile`: off, it records nothing; on, each kernel an op
// dispatches is counted once per call with a positive time, kernels it calls itself are not counted again,
// and a reset empties the table.
#include "framework/core/kernel_profile.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {
const KernelProfileRow* row_of(const std::vector<KernelProfileRow>& rows, const std::string& kernel) {
  for (const auto& r : rows)
    if (r.kernel == kernel) return &r;
  return nullptr;
}
}  // namespace

TEST_CASE("kernel profiling counts the kernels ops dispatch on the CPU, once per call") {
  reset_kernel_profile();
  const Tensor x = randn({2, 9, 9, 3}, 1, DType::f32), w = randn({4, 3, 3, 3}, 2, DType::f32);
  (void)conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  CHECK(kernel_profile().empty());  // off by default
  set_kernel_profiling(true);
  (void)conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  (void)conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  // bf16 convolution converts and calls the f32 kernel itself: still one conv2d_forward call.
  (void)conv2d(x.to(DType::bf16), w.to(DType::bf16), Tensor(), {1, 1}, {1, 1});
  set_kernel_profiling(false);
  (void)conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  const auto rows = kernel_profile();
  const KernelProfileRow* conv = row_of(rows, "conv2d_forward");
  REQUIRE(conv != nullptr);
  CHECK(conv->calls == 3);
  CHECK(conv->ms > 0);
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i - 1].ms >= rows[i].ms);  // most time first
  reset_kernel_profile();
  CHECK(kernel_profile().empty());
}
