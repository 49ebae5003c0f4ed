// The CUDA lookup kernels (framework/cuda/embedding.cu). Their contract, shared with the CPU backend, is
// declared once in framework/kernels/embedding.h, where every CUDA kernel takes the stream it runs on as its
// last argument.
//
// The overloads below take no stream and run on the compute stream of their output's device. They keep older
// callers that name the CUDA kernels directly (tests/gpu, the GPU benchmarks of tools/) compiling unchanged;
// new code passes the stream (the op layer passes cuda::compute_stream(device)).
#pragma once

#include "framework/kernels/embedding.h"

namespace iris::cuda {

inline void embedding_forward(const Tensor& weight, const Tensor& indices, Tensor& out) {
  embedding_forward(weight, indices, out, compute_stream(out.device().index));
}
inline void embedding_backward(const Tensor& gout, const Tensor& indices, Tensor& dweight) {
  embedding_backward(gout, indices, dweight, compute_stream(dweight.device().index));
}
inline void gather_last(const Tensor& x, const Tensor& index, Tensor& out) {
  gather_last(x, index, out, compute_stream(out.device().index));
}
inline void gather_last_backward(const Tensor& gout, const Tensor& index, Tensor& dx) {
  gather_last_backward(gout, index, dx, compute_stream(dx.device().index));
}

}  // namespace iris::cuda
