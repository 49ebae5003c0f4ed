// The CUDA 2x resampling kernels (framework/cuda/resample.cu). Their contract, shared with the CPU backend,
// is declared once in framework/kernels/resample.h, where every CUDA kernel takes the stream it runs on as
// its last argument.
//
// The overloads below take no stream and run on the compute stream of their output's device. They keep older
// callers that name the CUDA kernels directly (tests/gpu, the GPU benchmarks of tools/) compiling unchanged;
// new code passes the stream (the op layer passes cuda::compute_stream(device)).
#pragma once

#include "framework/kernels/resample.h"

namespace iris::cuda {

inline void upsample_nearest2x(const Tensor& small, Tensor& large) {
  upsample_nearest2x(small, large, compute_stream(large.device().index));
}
inline void upsample_nearest2x_backward(const Tensor& glarge, Tensor& dsmall) {
  upsample_nearest2x_backward(glarge, dsmall, compute_stream(dsmall.device().index));
}
inline void avg_pool2x(const Tensor& large, Tensor& small) {
  avg_pool2x(large, small, compute_stream(small.device().index));
}
inline void avg_pool2x_backward(const Tensor& gsmall, Tensor& dlarge) {
  avg_pool2x_backward(gsmall, dlarge, compute_stream(dlarge.device().index));
}

}  // namespace iris::cuda
