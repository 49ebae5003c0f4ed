// Elementwise kernel contract (CPU: framework/cpu/elementwise.cpp; CUDA: framework/cuda/elementwise_*.cu).
// - `out` is contiguous, allocated by the caller with the broadcast shape of the inputs;
// - inputs have out's dtype (copy also converts) and any strides; they are broadcast to out's shape;
// - CUDA: all tensors live on one device; the kernels run on `stream` and do not synchronise;
// - no autograd here: framework/ops/ records the graph.
#pragma once

#include "framework/core/tensor.h"
#include "framework/kernels/functors.h"
#include "framework/kernels/stream.h"

namespace iris::cpu {
void unary(UnaryOp op, const Tensor& x, Tensor& out, double a, double b);
void binary(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out, double a, double b);
void compare(CompareOp op, const Tensor& x, const Tensor& y, Tensor& out);      // out: u8
void where(const Tensor& cond, const Tensor& x, const Tensor& y, Tensor& out);  // cond: u8
// dst[...] = convert(src[...]) with src broadcast to dst's shape; dst may be a strided view.
void copy(const Tensor& src, Tensor& dst);
void fill(Tensor& dst, double value);  // dst may be a strided view
}  // namespace iris::cpu

namespace iris::cuda {
void unary(UnaryOp op, const Tensor& x, Tensor& out, double a, double b, Stream stream);
void binary(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out, double a, double b, Stream stream);
void compare(CompareOp op, const Tensor& x, const Tensor& y, Tensor& out, Stream stream);
void where(const Tensor& cond, const Tensor& x, const Tensor& y, Tensor& out, Stream stream);
// A copy between contiguous tensors of one dtype is a stream-ordered cudaMemcpyAsync.
void copy(const Tensor& src, Tensor& dst, Stream stream);
void fill(Tensor& dst, double value, Stream stream);
}  // namespace iris::cuda
