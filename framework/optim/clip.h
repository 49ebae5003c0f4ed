// Gradient clipping by the global L2 norm.
#pragma once

#include <vector>

#include "framework/core/tensor.h"

namespace iris::optim {

// norm = sqrt(sum over every defined gradient of sum(g^2)), reduced per tensor in f32 (f64 for f64
// gradients) and summed in f64 on the gradients' device(s), then read once on the host. When the norm is
// finite and above max_norm, every gradient is scaled in place by max_norm / (norm + 1e-6). A non-finite norm
// leaves the gradients untouched and is returned, so the caller can skip the step. Returns the norm before
// clipping (0 without any gradient).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// The same global norm, without clipping.
double grad_norm(const std::vector<Tensor>& params);

}  // namespace iris::optim
