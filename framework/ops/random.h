// Random tensors and dropout, drawn from a Generator (framework/core/generator.h). The same generator state
// gives the same numbers on every device and at any thread count.
#pragma once

#include "framework/core/generator.h"
#include "framework/core/tensor.h"

namespace iris {

// U[lo, hi) and N(mean, std^2). Each draw advances the generator by ceil(n / 4) blocks, n the elements per
// stream (all of them, or those of one sample for a per-sample generator, whose streams must number
// shape[0]).
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::f32, Device device = Device::cpu(),
            double lo = 0.0, double hi = 1.0);
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32, Device device = Device::cpu(),
             double mean = 0.0, double std = 1.0);

// Inverted dropout: in training, zeroes each element with probability p and scales the rest by 1/(1-p);
// identity otherwise (or when p == 0).
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);

}  // namespace iris
