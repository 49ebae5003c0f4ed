// Scaled dot-product attention (no mask, no dropout).
#pragma once

#include "framework/core/tensor.h"

namespace iris {

// q: [B, heads, Tq, d], k: [B, heads, Tk, d], v: [B, heads, Tk, dv] -> [B, heads, Tq, dv]
//   = softmax(q kᵀ · scale) v, the softmax over the Tk keys.
// Runs as two batched GEMMs around a softmax; inputs go through autocast (bf16 GEMMs on CUDA) but the
// softmax and its backward always run in f32 (f64 for f64 inputs). Keeps the probabilities for backward.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale);

}  // namespace iris
