// Optimizer kernel contract (CPU: framework/cpu/optim.cpp; CUDA: framework/cuda/optim.cu, plus multi-tensor
// variants that update many tensors in a few launches).
//
// Arithmetic: the CUDA kernels round every operation on its own (no fused multiply-add), in the order the CPU
// kernel writes it, so the GPU results equal the CPU's bit for bit (the CPU build does not contract either),
// and the per-tensor and multi-tensor kernels equal each other.
#pragma once

#include <vector>

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris {

// The scalars of one AdamW step for one tensor. bias_correction1/2 = 1 - beta^t for the tensor's step t.
struct AdamWStep {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double bias_correction1 = 1.0;
  double bias_correction2 = 1.0;
};

// One tensor of a multi-tensor AdamW step: contiguous param, grad, m, v of equal numel, all f32 or all f64,
// on one CUDA device, and the scalars of its own step.
struct AdamWTensor {
  Tensor param, grad, m, v;
  AdamWStep step;
};

}  // namespace iris

namespace iris::cpu {

using iris::AdamWStep;  // the names these types had when each backend declared its own (cpu::AdamWStep)

// In place, elementwise over contiguous tensors of equal numel (param, grad, m, v all f32, or all f64):
//   p <- p * (1 - lr * wd)                                   (decoupled weight decay; none when wd = 0)
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g^2
//   p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// Arithmetic in the tensors' dtype. Each element is independent: results do not depend on the threads.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& step);

// adamw_update on every item (CPU tensors; f32 and f64 items may be mixed), as one parallel region over
// 16384-element chunks of all of them: a model's hundreds of small tensors (biases, norms) would otherwise
// each pay a call and a fork/join of the thread pool. The same arithmetic per element as adamw_update.
void adamw_update_multi(std::vector<AdamWTensor>& items);

}  // namespace iris::cpu

namespace iris::cuda {

using iris::AdamWTensor;  // cuda::AdamWTensor, as before

// As cpu::adamw_update: one fused elementwise kernel.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& step,
                  Stream stream);

// adamw_update on every item (items on one device; f32 and f64 items may be mixed). The descriptors travel as
// kernel arguments (no host-to-device copy, no synchronisation): up to 64 tensors and 8 distinct step
// scalar sets per launch, each tensor cut into 16384-element chunks, one block per chunk.
void adamw_update_multi(const std::vector<AdamWTensor>& items, Stream stream);

// shadow <- (shadow * decay) + (param * (1 - decay)) for every pair (contiguous, equal numel, one dtype per
// pair: f32 or f64, all on one CUDA device), with decay and 1 - decay rounded to the dtype first: the same
// arithmetic as add(mul(shadow, decay), mul(param, 1 - decay)). Up to 128 pairs per launch.
void ema_update_multi(const std::vector<Tensor>& shadows, const std::vector<Tensor>& params, double decay,
                      Stream stream);

}  // namespace iris::cuda
