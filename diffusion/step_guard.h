// The update decision of one training step, made on the device (train.spike_zscore, non-finite norms).
//
// Device-side step decisions: a training step never reads a value back to the host. The global gradient norm
// (framework/optim/clip.h, *_tensor), the spike guard's test and statistics, and the resulting apply flag are
// f64 [1] tensors on the training device; optim::step_if and optim::update_if (framework/optim/device_step.h)
// consume the flag. What the
// user sees of them (the window's mean norm, the count of skipped updates, a warning per skipped step naming
// it) is recorded on the device step by step and read back once, when the logging window closes
// (close_window). Checkpoints read the statistics (stats()) when they are written.
//
// The arithmetic is the host guard's, operation for operation in f64 (IEEE add, mul, div and sqrt round the
// same on the CPU and a GPU), so the decisions, the statistics and therefore the trained weights are the
// same bits as when the guard ran on the host (tests/system/test_spike_guard.cpp, test_step_guard.cpp).
//
// Left for a GPU session (issue 15): on a CUDA device, step_if/update_if still read the flag back (one
// synchronisation per step). Removing that read needs the multi-tensor kernels to take the flag by pointer and
// return early when it is 0, and the step-dependent scalars to come from the device: per-parameter step
// counts t and the EMA's update count n as device counters advanced by the flag; EMA's decay
// min(decay, (1 + n) / (10 + n)) computed in the kernel (a correctly rounded division: exact); AdamW's
// bias corrections 1 - beta^t looked up in a table of host std::pow values (pow is not correctly rounded on
// the GPU, so computing it there would change bits), uploaded ahead of the largest t the host can see.
// The guard's ~20 small ops are also one fused scalar kernel there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::diffusion {

class StepGuard {
 public:
  // zscore <= 0 turns the spike test off (non-finite norms are still skipped); warmup: norms observed before
  // the test applies. State lives on `device`.
  StepGuard(double zscore, int64_t warmup, Device device);

  // The gradient-norm statistics: mean and variance of the norms of the updates made, exact for the first
  // 100 norms, then exponential moving averages (decay 0.99) so that they follow the norm as training goes on.
  struct Stats {
    double mean = 0, var = 0;
    int64_t count = 0;    // norms observed (updates made)
    int64_t skipped = 0;  // updates skipped (spikes and non-finite norms)
  };
  Stats stats() const;  // reads the device values (a synchronisation: for checkpoints and logs)
  void set_stats(const Stats& s);

  // Step `step`'s decision from its pre-clipping gradient norm (f64 [1] on the device): returns the apply
  // flag (f64 [1], 1 = update, 0 = skip) and, where it is 1, folds the norm into the statistics; where 0,
  // counts a skip. No host read.
  Tensor decide(int64_t step, const Tensor& norm);

  // What the steps decided since the last call, read back at once.
  struct Window {
    double norm_sum = 0;                // sum of the finite norms
    int64_t skipped = 0;                // updates skipped
    std::vector<std::string> warnings;  // "step N: <why>, update skipped", in step order
  };
  Window close_window();

 private:
  double zscore_;
  int64_t warmup_;
  Device device_;
  Tensor mean_, var_, count_, skipped_;  // f64 [1] each, on device_
  Tensor norm_sum_;                      // f64 [1]: this window's finite norms
  // Per step of the window: its number and [norm, mean, var, apply, spike] as they were at the decision.
  std::vector<std::pair<int64_t, Tensor>> records_;
};

}  // namespace iris::diffusion
