// Parameter initialisation, drawn from a Generator (framework/ops/random.h) so that a model built from the
// same seed is identical on every device and at any thread count.
//
// Fans follow PyTorch for our layouts: a weight's first axis is its output axis (linear [out, in], conv
// [Cout, kh, kw, Cin]), so fan_in = numel / shape[0] (in, or kh*kw*Cin) and fan_out = shape[0] * receptive
// field (out, or Cout*kh*kw). Every function writes in place under NoGradGuard and returns its argument.
#pragma once

#include <cmath>

#include "framework/core/generator.h"
#include "framework/core/tensor.h"

namespace iris::nn::init {

int64_t fan_in(const Tensor& weight);   // weight with at least 2 axes
int64_t fan_out(const Tensor& weight);  // weight with at least 2 axes

Tensor& uniform_(Tensor& t, Generator& gen, double lo, double hi);
Tensor& normal_(Tensor& t, Generator& gen, double mean = 0.0, double std = 1.0);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);  // e.g. the last layer of a residual branch, so it starts as the identity

// U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)). PyTorch's default for Linear and
// Conv2d weights is a = sqrt(5), giving b = 1 / sqrt(fan_in).
Tensor& kaiming_uniform_(Tensor& weight, Generator& gen, double a = std::sqrt(5.0));
// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& weight, Generator& gen, double gain = 1.0);
// PyTorch's default bias for Linear and Conv2d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (zeros if fan_in is 0).
Tensor& bias_uniform_(Tensor& bias, int64_t fan_in, Generator& gen);

}  // namespace iris::nn::init
