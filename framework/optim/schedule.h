// Learning-rate schedule: linear warm-up, then constant or cosine decay.
//
// For the step s about to be taken (0 for the first optimizer step):
//   s < W:       lr = base * (f0 + (1 - f0) * s / W)     (f0 = warmup_start_factor; lr(0) = f0 * base)
//   constant:    lr = base for s >= W
//   cosine:      lr = final + (base - final) * (1 + cos(pi * (s - W) / (T - W))) / 2 for W <= s < T,
//                lr = final for s >= T
// with W = warmup_steps and T = total_steps (cosine only; T > W). The warm-up is PyTorch's LinearLR.
#pragma once

#include <cstdint>

namespace iris::optim {

struct LRScheduleOptions {
  enum class Decay { constant, cosine };
  double base_lr = 1e-4;
  int64_t warmup_steps = 0;
  double warmup_start_factor = 0.0;
  Decay decay = Decay::constant;
  int64_t total_steps = 0;  // cosine: the step at which final_lr is reached
  double final_lr = 0.0;    // cosine
};

class LRSchedule {
 public:
  explicit LRSchedule(const LRScheduleOptions& options);

  double lr_at(int64_t step) const;
  // The learning rate for the current step, and moving on to the next one.
  double lr() const { return lr_at(step_); }
  void advance() { ++step_; }
  int64_t step() const { return step_; }

  // The whole state is the step.
  int64_t state() const { return step_; }
  void load_state(int64_t step);

  const LRScheduleOptions& options() const { return opt_; }

 private:
  LRScheduleOptions opt_;
  int64_t step_ = 0;
};

}  // namespace iris::optim
