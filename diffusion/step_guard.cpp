#include "diffusion/step_guard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/join.h"
#include "framework/optim/device_step.h"

namespace iris::diffusion {

namespace {
constexpr double kDecay = 0.99;  // of the statistics' moving averages, once past the first 100 norms

Tensor f64_of(double v, Device device) {
  return Tensor::full({1}, v, DType::f64, device);
}
// A u8 mask as 0/1 in f64, and back: flags combine by multiplication.
Tensor as_f64(const Tensor& mask) {
  return mask.to(DType::f64);
}
Tensor as_mask(const Tensor& flag) {
  return gt(flag, 0.5);
}
}  // namespace

StepGuard::StepGuard(double zscore, int64_t warmup, Device device)
    : zscore_(zscore), warmup_(warmup), device_(device) {
  set_stats({});
}

void StepGuard::set_stats(const Stats& s) {
  mean_ = f64_of(s.mean, device_);
  var_ = f64_of(s.var, device_);
  count_ = f64_of(static_cast<double>(s.count), device_);  // exact below 2^53
  skipped_ = f64_of(static_cast<double>(s.skipped), device_);
}

StepGuard::Stats StepGuard::stats() const {
  NoGradGuard no_grad;
  const Tensor all = cat({mean_, var_, count_, skipped_}, 0).cpu().contiguous();  // one read back, not four
  const double* v = all.data<double>();
  return {.mean = v[0], .var = v[1], .count = static_cast<int64_t>(v[2]), .skipped = static_cast<int64_t>(v[3])};
}

// Each line is one operation of the host guard this replaces, in its order and precision (f64, no fused
// multiply-add), so every intermediate has the same bits:
//   spike = z > 0 && isfinite(norm) && count >= warmup && norm > mean + z * sqrt(var)
//   apply = isfinite(norm) && !spike
//   where apply:  a = max(1 / (count + 1), 1 - 0.99);  d = norm - mean;  mean += a * d;
//                 var = (1 - a) * (var + a * d * d);  ++count
//   elsewhere:    ++skipped
Tensor StepGuard::decide(int64_t step, const Tensor& norm_in) {
  NoGradGuard no_grad;
  IRIS_CHECK(norm_in.numel() == 1, "StepGuard::decide: expected a one-element norm, got ", norm_in.summary());
  const Tensor norm = norm_in.to(device_, DType::f64).reshape({1});
  const Tensor finite = optim::finite_flag(norm);
  Tensor spike = f64_of(0.0, device_);
  if (zscore_ > 0) {
    const Tensor threshold = add(mean_, mul(sqrt(var_), zscore_));
    const Tensor warmed = rsub(1.0, as_f64(lt(count_, static_cast<double>(warmup_))));
    spike = mul(mul(finite, warmed), as_f64(gt(norm, threshold)));
  }
  const Tensor apply = mul(finite, rsub(1.0, spike));
  records_.emplace_back(step, cat({norm, mean_, var_, apply, spike}, 0));

  const Tensor a = maximum(rdiv(1.0, add(count_, 1.0)), f64_of(1.0 - kDecay, device_));
  const Tensor d = sub(norm, mean_);
  const Tensor mean = add(mean_, mul(a, d));
  const Tensor var = mul(rsub(1.0, a), add(var_, mul(mul(a, d), d)));
  const Tensor applied = as_mask(apply);
  mean_ = where(applied, mean, mean_);
  var_ = where(applied, var, var_);
  count_ = add(count_, apply);
  skipped_ = add(skipped_, rsub(1.0, apply));
  return apply;
}

StepGuard::Window StepGuard::close_window() {
  Window w;
  if (records_.empty()) return w;
  std::vector<Tensor> parts;
  parts.reserve(records_.size());
  for (const auto& r : records_) parts.push_back(r.second);
  const Tensor all = cat(parts, 0).cpu().contiguous();  // the one read back of the window
  const double* v = all.data<double>();
  for (size_t i = 0; i < records_.size(); ++i) {
    const double norm = v[5 * i], mean = v[5 * i + 1], var = v[5 * i + 2];
    const bool applied = v[5 * i + 3] != 0.0, spike = v[5 * i + 4] != 0.0;
    w.norm_sum += std::isfinite(norm) ? norm : 0.0;  // the order and sum the host log used
    if (applied) continue;
    ++w.skipped;
    char why[160];
    if (spike)
      std::snprintf(why, sizeof(why),
                    "gradient norm %.4g is %.1f standard deviations above its running mean %.4g", norm,
                    (norm - mean) / std::max(std::sqrt(var), 1e-30), mean);
    else
      std::snprintf(why, sizeof(why), "non-finite gradient norm");
    w.warnings.push_back("step " + std::to_string(records_[i].first) + ": " + why + ", update skipped");
  }
  records_.clear();
  return w;
}

}  // namespace iris::diffusion
