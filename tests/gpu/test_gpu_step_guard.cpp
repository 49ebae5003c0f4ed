// The training step's device-side update decision (diffusion/step_guard.h) on a GPU: the same decisions,
// statistics and skip reports, bit for bit, as on the CPU (where tests/diffusion/test_step_guard.cpp holds it
// to the host guard it replaced), and AdamW/EMA under the device flag (framework/optim/device_step.h) follow
// the CPU's weights.
#include <cmath>
#include <cstring>
#include <limits>

#include "diffusion/step_guard.h"
#include "framework/iris.h"
#include "framework/optim/device_step.h"
#include "tests/common/flagged_updates.h"
#include "tests/gpu/gpu_util.h"

using namespace iris;
using namespace iris::diffusion;

namespace {
bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof(double)) == 0;
}
}  // namespace

TEST_CASE("gpu StepGuard decides and keeps statistics bit for bit as on the CPU") {
  IRIS_GPU_TEST_BEGIN();
  StepGuard cpu_guard(2.0, 3, Device::cpu());
  StepGuard gpu_guard(2.0, 3, gputest::gpu());
  for (int64_t i = 0; i < 130; ++i) {
    double norm = 1.0 + 0.003 * static_cast<double>(i) + 0.1 * std::sin(0.7 * static_cast<double>(i));
    if (i % 13 == 6) norm *= 5.0;  // spikes
    if (i == 50) norm = std::numeric_limits<double>::infinity();
    if (i == 90) norm = std::nan("");
    const Tensor a = cpu_guard.decide(i, Tensor::full({1}, norm, DType::f64));
    const Tensor b = gpu_guard.decide(i, Tensor::full({1}, norm, DType::f64, gputest::gpu()));
    REQUIRE(b.device() == gputest::gpu());
    REQUIRE(a.item() == b.item());
    if (i % 10 == 9) {
      const StepGuard::Window wa = cpu_guard.close_window(), wb = gpu_guard.close_window();
      CHECK(wa.skipped == wb.skipped);
      CHECK(same_bits(wa.norm_sum, wb.norm_sum));
      CHECK(wa.warnings == wb.warnings);
    }
  }
  const StepGuard::Stats sa = cpu_guard.stats(), sb = gpu_guard.stats();
  CHECK(same_bits(sa.mean, sb.mean));
  CHECK(same_bits(sa.var, sb.var));
  CHECK(sa.count == sb.count);
  CHECK(sa.skipped == sb.skipped);
  CHECK(sa.skipped >= 2);
}

TEST_CASE("gpu AdamW and EMA under a device apply flag equal unconditional updates on the kept steps") {
  IRIS_GPU_TEST_BEGIN();
  test::check_flagged_updates_match_kept_steps(gputest::gpu());
}
