// Normalisation ops on channels-last activations.
//
// FiLM / scale-shift conditioning needs no op of its own: it is plain broadcasting,
// x * (1 + scale[N, 1, 1, C]) + shift[N, 1, 1, C], and differentiates through mul/add.
#pragma once

#include "framework/core/tensor.h"

namespace iris {

// GroupNorm over channels-last x: [N, ..., C] (e.g. [N, H, W, C], or [N, C] with no spatial axes).
// Group g of sample n is the C/groups consecutive channels [g*C/groups, (g+1)*C/groups) at every spatial
// position; it is normalised by its own mean and biased variance, then scaled by weight[c] and shifted by
// bias[c] (each [C], or undefined for 1 and 0). Statistics are computed in f32 (f64 for f64 input) and the
// result has x's dtype; weight and bias are used in that statistics dtype (their gradients come back in their
// own dtype). Throws iris::Error when groups does not divide C.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// silu(group_norm(x, ...)) in one pass. Its backward keeps only x, the per-(sample, group) mean and 1/std
// (and weight, bias) and recomputes the normalised value, so the pre-activation is never stored.
Tensor group_norm_silu(const Tensor& x, int64_t groups, const Tensor& weight = Tensor(),
                       const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace iris
