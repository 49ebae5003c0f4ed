#include "framework/optim/schedule.h"

#include <cmath>
#include <numbers>

#include "framework/core/error.h"

namespace iris::optim {

LRSchedule::LRSchedule(const LRScheduleOptions& o) : opt_(o) {
  IRIS_CHECK(std::isfinite(o.base_lr) && o.base_lr >= 0, "LRSchedule: base_lr must be finite and >= 0, got ",
             o.base_lr);
  IRIS_CHECK(o.warmup_steps >= 0, "LRSchedule: warmup_steps must be >= 0, got ", o.warmup_steps);
  IRIS_CHECK(o.warmup_start_factor >= 0 && o.warmup_start_factor <= 1,
             "LRSchedule: warmup_start_factor must be in [0, 1], got ", o.warmup_start_factor);
  if (o.decay == LRScheduleOptions::Decay::cosine) {
    IRIS_CHECK(o.total_steps > o.warmup_steps, "LRSchedule: cosine decay needs total_steps (", o.total_steps,
               ") > warmup_steps (", o.warmup_steps, ")");
    IRIS_CHECK(std::isfinite(o.final_lr) && o.final_lr >= 0,
               "LRSchedule: final_lr must be finite and >= 0, got ", o.final_lr);
  }
}

double LRSchedule::lr_at(int64_t step) const {
  IRIS_CHECK(step >= 0, "LRSchedule::lr_at: negative step ", step);
  const double base = opt_.base_lr;
  const int64_t W = opt_.warmup_steps;
  if (step < W) {
    const double f0 = opt_.warmup_start_factor;
    return base * (f0 + (1.0 - f0) * static_cast<double>(step) / static_cast<double>(W));
  }
  if (opt_.decay == LRScheduleOptions::Decay::constant) return base;
  const int64_t T = opt_.total_steps;
  if (step >= T) return opt_.final_lr;
  const double progress = static_cast<double>(step - W) / static_cast<double>(T - W);
  return opt_.final_lr + (base - opt_.final_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

void LRSchedule::load_state(int64_t step) {
  IRIS_CHECK(step >= 0, "LRSchedule::load_state: negative step ", step);
  step_ = step;
}

}  // namespace iris::optim
