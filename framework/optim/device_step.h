// The forms of a training step's optimizer-side work that leave their results on the device, so that a step
// needs no host read (diffusion/step_guard.h describes the whole design):
//   - the global gradient norm and clipping as f64 [1] tensors (same bits as clip.h's grad_norm and
//     clip_grad_norm, which read the norm back);
//   - AdamW and EMA updates made conditional on an "apply" flag tensor (a 0 flag changes nothing: weights,
//     moments, step and update counts stay exactly as they were).
#pragma once

#include <vector>

#include "framework/core/tensor.h"
#include "framework/optim/adamw.h"
#include "framework/optim/ema.h"

namespace iris::optim {

// The global norm of clip.h's grad_norm as an f64 tensor of shape [1] on the device of the first gradient,
// with no host read (sums of gradients on other devices are copied there). Zero (on the CPU) without any
// gradient. The same bits as grad_norm().
Tensor grad_norm_tensor(const std::vector<Tensor>& params);

// 1 where x is finite, 0 for infinities and NaN: f64, x's shape and device, no host read (x - x is exactly 0
// for finite x and NaN otherwise).
Tensor finite_flag(const Tensor& x);

// clip_grad_norm without a host read: the scale max_norm / (norm + 1e-6) is formed on the device (1 where the
// norm is non-finite or <= max_norm) and every gradient is multiplied by it, rounded to the gradient's dtype
// first as clip_grad_norm's scalar multiply rounds it: the same bits for any norm (x * 1 == x). Returns the
// norm before clipping, f64 [1] on the device (as grad_norm_tensor).
Tensor clip_grad_norm_tensor(const std::vector<Tensor>& params, double max_norm);

// opt.step() when the one-element tensor `apply` is nonzero, else nothing; ema.update() likewise.
//
// The flag is read where it lies: on the CPU that costs no synchronisation (CPU kernels run on the calling
// thread, so the value is already there). A CUDA flag is copied back, which waits for the work queued before
// it: the one host read left in a training step on a GPU, until the multi-tensor kernels take the flag by
// pointer (diffusion/step_guard.h, "Left for a GPU session").
void step_if(AdamW& opt, const Tensor& apply);
void update_if(EMA& ema, const Tensor& apply);

}  // namespace iris::optim
