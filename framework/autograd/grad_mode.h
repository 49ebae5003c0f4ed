// Thread-local switches that ops consult: whether to record autograd history, and the autocast scope.
#pragma once

#include "framework/core/dtype.h"

namespace iris {

bool grad_enabled();
void set_grad_enabled(bool on);

// RAII: no autograd history is recorded inside the scope (inference, optimizer updates, backward itself).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// RAII: grad mode set to `on` for the scope, restored after (checkpoint turns it on to recompute a segment
// inside backward, which otherwise runs under no_grad).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : prev_(grad_enabled()) { set_grad_enabled(on); }
  ~GradModeGuard() { set_grad_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

// Autocast (mixed precision): inside the scope, GEMM, convolution and attention on CUDA tensors run in
// `dtype` (bf16) while norms, softmax, losses, reductions and the optimizer stay f32; parameters stay f32.
bool autocast_enabled();
DType autocast_dtype();
class AutocastGuard {
 public:
  explicit AutocastGuard(bool enabled = true, DType dtype = DType::bf16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

// (The TF32 switch that used to be declared here is with the other numerics settings:
// framework/core/numerics.h.)

}  // namespace iris
