// Training losses. Each returns a 0-d tensor, computed in f32 for bf16 inputs (f64 for f64), and is
// differentiable in every floating input.
#pragma once

#include "framework/core/tensor.h"

namespace iris {

// mean((pred - target)^2) over all elements; pred and target have the same shape.
Tensor mse_loss(const Tensor& pred, const Tensor& target);

// mean(|pred - target|) over all elements. With sample_weights [N] (N = pred's first axis):
// l_n = mean of |pred - target| over the non-batch axes of sample n, loss = sum_n w_n * l_n / N.
// The gradient of |.| at 0 is 0.
Tensor l1_loss(const Tensor& pred, const Tensor& target, const Tensor& sample_weights = Tensor());

// logits: [N, C] floating; labels: [N] i32 or i64 in [0, C) -> mean_n(-log_softmax(logits)[n, labels[n]]).
// An out-of-range label is an iris::Error naming it and C.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);

}  // namespace iris
