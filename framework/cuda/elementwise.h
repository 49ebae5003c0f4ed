// CUDA elementwise kernels: the same contracts as framework/cpu/elementwise.h.
// - `out` is contiguous, allocated by the caller with the broadcast shape of the inputs;
// - inputs have out's dtype (copy also converts) and any strides; they are broadcast to out's shape;
// - all tensors live on one CUDA device; the kernels run on its compute stream and do not synchronise.
#pragma once

#include "framework/core/tensor.h"
#include "framework/ops/functors.h"

namespace iris::cuda {

void unary(UnaryOp op, const Tensor& x, Tensor& out, double a, double b);
void binary(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out, double a, double b);
void compare(CompareOp op, const Tensor& x, const Tensor& y, Tensor& out);      // out: u8
void where(const Tensor& cond, const Tensor& x, const Tensor& y, Tensor& out);  // cond: u8
// dst[...] = convert(src[...]) with src broadcast to dst's shape; dst may be a strided view.
void copy(const Tensor& src, Tensor& dst);
void fill(Tensor& dst, double value);  // dst may be a strided view

}  // namespace iris::cuda
