// Layers over the convolution, normalisation and embedding ops: Conv2d, GroupNorm, Embedding.
#pragma once

#include "framework/core/generator.h"
#include "framework/nn/layers.h"

namespace iris::nn {

// NHWC convolution. weight: [cout, k, k, cin], bias: [cout]. Initialised as PyTorch's nn.Conv2d
// (kaiming_uniform(a = sqrt(5)) weights, U(+-1/sqrt(fan_in)) bias; fan_in = k * k * cin).
class Conv2d : public UnaryModule {
 public:
  Conv2d(int64_t cin, int64_t cout, int64_t kernel, Generator& gen, int64_t stride = 1, int64_t padding = 0,
         bool bias = true);
  Tensor forward(const Tensor& x) override;  // [N, H, W, cin] -> [N, Ho, Wo, cout]

  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  int64_t stride_, padding_;
};

// GroupNorm over channels-last input with affine weight (ones) and bias (zeros), as PyTorch's.
class GroupNorm : public UnaryModule {
 public:
  GroupNorm(int64_t groups, int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  Tensor forward_silu(const Tensor& x);  // silu(norm(x)), fused

  Tensor weight;  // [channels]
  Tensor bias;    // [channels]

 private:
  int64_t groups_;
  double eps_;
};

// A lookup table of `num` vectors of size `dim`, initialised N(0, 1) as PyTorch's nn.Embedding.
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Generator& gen);
  Tensor forward(const Tensor& indices);  // i32/i64 [...] -> [..., dim]

  Tensor weight;  // [num, dim]
};

}  // namespace iris::nn
