// Gaussian-noise conditioning augmentation (augment.h).
#include "diffusion/augment.h"

#include "diffusion/process.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/random.h"

namespace iris::diffusion {

namespace {
AugmentedCondition augment(const Tensor& z, const NoiseSchedule& schedule, double s_min, double s_max,
                           Generator& gen, const char* who) {
  check_defined(z, who, "z");
  check_floating(z, who);
  IRIS_CHECK(z.dim() >= 1 && z.size(0) >= 1, who, ": expected a batch z [N, ...], got ", z.summary());
  IRIS_CHECK(0.0 <= s_min && s_min <= s_max && s_max <= static_cast<double>(schedule.T()), who,
             ": the augmentation steps must satisfy 0 <= s_min <= s_max <= T = ", schedule.T(),
             ", got s_min = ", s_min, " and s_max = ", s_max);
  const int64_t N = z.size(0);
  const DType level_dtype = z.dtype() == DType::f64 ? DType::f64 : DType::f32;
  AugmentedCondition out;
  out.s = rand({N}, gen, level_dtype, z.device(), s_min, s_max);
  if (s_min == s_max) out.s = Tensor::full({N}, s_min, level_dtype, z.device());  // exact, even for s_max
  out.gamma = schedule.gamma_at(out.s);
  out.z = q_sample(z, out.gamma, randn(z.shape(), gen, z.dtype(), z.device()));
  return out;
}
}  // namespace

AugmentedCondition noise_augment(const Tensor& z, const NoiseSchedule& schedule, double s_min, double s_max,
                                 Generator& gen) {
  return augment(z, schedule, s_min, s_max, gen, "noise_augment");
}

AugmentedCondition noise_augment_at(const Tensor& z, const NoiseSchedule& schedule, double s,
                                    Generator& gen) {
  return augment(z, schedule, s, s, gen, "noise_augment_at");
}

}  // namespace iris::diffusion
