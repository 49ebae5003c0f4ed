// Lookups by integer index: embedding tables, and picking one element per row (used by cross_entropy).
#pragma once

#include "framework/core/tensor.h"

namespace iris {

// weight: [V, D] floating; indices: i32 or i64 of any shape (0-d included) -> [...indices shape, D] with
// out[..., :] = weight[indices[...], :]. An index outside [0, V) is an iris::Error naming it and V.
// Differentiable in weight (a deterministic scatter-add: rows hit several times sum in index order).
Tensor embedding(const Tensor& weight, const Tensor& indices);

// x: [..., C] floating; index: i32 or i64 with x's shape minus its last axis -> out[...] = x[...,
// index[...]]. An index outside [0, C) is an iris::Error. Differentiable in x.
Tensor gather_last(const Tensor& x, const Tensor& index);

namespace detail {
// gather_last whose messages name `op` and call the indices' range `what` (e.g. cross_entropy's "classes").
Tensor gather_last(const Tensor& x, const Tensor& index, const char* op, const char* what);
}  // namespace detail

}  // namespace iris
