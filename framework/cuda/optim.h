// CUDA optimizer kernels: the twins of framework/cpu/optim.h (same signature and contract).
#pragma once

#include "framework/core/tensor.h"
#include "framework/cpu/optim.h"

namespace iris::cuda {

// See cpu::adamw_update. One fused elementwise kernel on the device's compute stream.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const cpu::AdamWStep& step);

}  // namespace iris::cuda
