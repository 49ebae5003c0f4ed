// CPU optimizer kernels (a CUDA twin in framework/cuda/optim.h must have the same signature and contract).
#pragma once

#include "framework/core/tensor.h"

namespace iris::cpu {

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

// In place, elementwise over contiguous tensors of equal numel (param, grad, m, v all f32, or all f64):
//   p <- p * (1 - lr * wd)                                   (decoupled weight decay; none when wd = 0)
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g^2
//   p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// Arithmetic in the tensors' dtype. Each element is independent: results do not depend on the threads.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& step);

}  // namespace iris::cpu
