// The CUDA optimizer kernels (framework/cuda/optim.cu). Their contract, shared with the CPU backend, is
// declared once in framework/kernels/optim.h, where every CUDA kernel takes the stream it runs on as its last
// argument.
//
// The overloads below take no stream and run on the compute stream of the tensors' device. They keep older
// callers that name the CUDA kernels directly (tests/gpu, the GPU benchmarks of tools/) compiling unchanged;
// new code passes the stream.
#pragma once

#include <vector>

#include "framework/kernels/optim.h"

namespace iris::cuda {

inline void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& step) {
  adamw_update(param, grad, m, v, step, compute_stream(param.device().index));
}

// The stream of the first item's device; none (nullptr) when there is no usable first item, which the kernel
// then reports (or, for an empty list, ignores) before it would launch anything.
inline Stream multi_tensor_stream(const Tensor& first) {
  return first.defined() && first.device().is_cuda() ? compute_stream(first.device().index) : nullptr;
}
inline void adamw_update_multi(const std::vector<AdamWTensor>& items) {
  adamw_update_multi(items, items.empty() ? nullptr : multi_tensor_stream(items[0].param));
}
inline void ema_update_multi(const std::vector<Tensor>& shadows, const std::vector<Tensor>& params,
                             double decay) {
  ema_update_multi(shadows, params, decay, shadows.empty() ? nullptr : multi_tensor_stream(shadows[0]));
}

}  // namespace iris::cuda
