// The CUDA elementwise kernels (framework/cuda/elementwise_*.cu). Their contract, shared with the CPU
// backend, is declared once in framework/kernels/elementwise.h, where every CUDA kernel takes the stream it
// runs on as its last argument.
//
// The overloads below take no stream and run on the compute stream of their output's device. They keep older
// callers that name the CUDA kernels directly (tests/gpu, the GPU benchmarks of tools/) compiling unchanged;
// new code passes the stream (the op layer passes cuda::compute_stream(device)).
#pragma once

#include "framework/kernels/elementwise.h"

namespace iris::cuda {

inline void unary(UnaryOp op, const Tensor& x, Tensor& out, double a, double b) {
  unary(op, x, out, a, b, compute_stream(out.device().index));
}
inline void binary(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out, double a, double b) {
  binary(op, x, y, out, a, b, compute_stream(out.device().index));
}
inline void compare(CompareOp op, const Tensor& x, const Tensor& y, Tensor& out) {
  compare(op, x, y, out, compute_stream(out.device().index));
}
inline void where(const Tensor& cond, const Tensor& x, const Tensor& y, Tensor& out) {
  where(cond, x, y, out, compute_stream(out.device().index));
}
inline void copy(const Tensor& src, Tensor& dst) {
  copy(src, dst, compute_stream(dst.device().index));
}
inline void fill(Tensor& dst, double value) {
  fill(dst, value, compute_stream(dst.device().index));
}

}  // namespace iris::cuda
