// The CUDA reduction and softmax kernels (framework/cuda/reduce.cu, softmax.cu). Their contracts, shared with
// the CPU backend, are declared once in framework/kernels/reduce.h and softmax.h, where every CUDA kernel
// takes the stream it runs on as its last argument.
//
// The overloads below take no stream and run on the compute stream of their output's device. They keep older
// callers that name the CUDA kernels directly (tests/gpu, the GPU benchmarks of tools/) compiling unchanged;
// new code passes the stream (the op layer passes cuda::compute_stream(device)).
#pragma once

#include "framework/kernels/reduce.h"
#include "framework/kernels/softmax.h"

namespace iris::cuda {

inline void reduce(ReduceOp op, const Tensor& x, Tensor& out, const std::vector<int64_t>& axes,
                   int64_t correction) {
  reduce(op, x, out, axes, correction, compute_stream(out.device().index));
}
inline void softmax(const Tensor& x, Tensor& y, bool log) {
  softmax(x, y, log, compute_stream(y.device().index));
}
inline void softmax_backward(const Tensor& y, const Tensor& g, Tensor& dx, bool log) {
  softmax_backward(y, g, dx, log, compute_stream(dx.device().index));
}

}  // namespace iris::cuda
