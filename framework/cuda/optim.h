// CUDA optimizer kernels: the twin of framework/cpu/optim.h (same signature and contract), plus multi-tensor
// variants that update many tensors in a few launches.
//
// Arithmetic: every operation is rounded on its own (no fused multiply-add), in the order the CPU kernel
// writes it, so the GPU results equal the CPU's bit for bit (the CPU build does not contract either), and the
// per-tensor and multi-tensor kernels equal each other.
#pragma once

#include <vector>

#include "framework/core/tensor.h"
#include "framework/cpu/optim.h"

namespace iris::cuda {

// See cpu::adamw_update. One fused elementwise kernel on the device's compute stream.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const cpu::AdamWStep& step);

// One tensor of a multi-tensor AdamW step: contiguous param, grad, m, v of equal numel, all f32 or all f64,
// on one CUDA device, and the scalars of its own step.
struct AdamWTensor {
  Tensor param, grad, m, v;
  cpu::AdamWStep step;
};
// adamw_update on every item (items on one device; f32 and f64 items may be mixed). The descriptors travel as
// kernel arguments (no host-to-device copy, no synchronisation): up to 64 tensors and 8 distinct step
// scalar sets per launch, each tensor cut into 16384-element chunks, one block per chunk.
void adamw_update_multi(const std::vector<AdamWTensor>& items);

// shadow <- (shadow * decay) + (param * (1 - decay)) for every pair (contiguous, equal numel, one dtype per
// pair: f32 or f64, all on one CUDA device), with decay and 1 - decay rounded to the dtype first: the same
// arithmetic as add(mul(shadow, decay), mul(param, 1 - decay)). Up to 128 pairs per launch.
void ema_update_multi(const std::vector<Tensor>& shadows, const std::vector<Tensor>& params, double decay);

}  // namespace iris::cuda
