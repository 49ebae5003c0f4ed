#include "framework/nn/layers.h"

#include "framework/nn/init.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/matmul.h"
#include "framework/ops/random.h"

namespace iris::nn {

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, bool with_bias)
    : in_(in_features), out_(out_features) {
  IRIS_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got in = ", in_features,
             ", out = ", out_features);
  weight = register_parameter("weight", Tensor::empty({out_features, in_features}));
  init::kaiming_uniform_(weight, gen);
  if (with_bias) {
    bias = register_parameter("bias", Tensor::empty({out_features}));
    init::bias_uniform_(bias, in_features, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  check_defined(x, "Linear");
  IRIS_CHECK(x.dim() >= 1 && x.size(-1) == in_, "Linear: expected [..., ", in_, "], got ", x.summary(),
             " (weight [", out_, ", ", in_, "])");
  return linear(x, weight, bias);
}

Dropout::Dropout(double p) : p_(p) {
  IRIS_CHECK(p >= 0.0 && p < 1.0, "Dropout: probability must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x, Generator& gen) {
  return dropout(x, p_, gen, is_training());
}

Tensor SiLU::forward(const Tensor& x) {
  return silu(x);
}
Tensor Tanh::forward(const Tensor& x) {
  return tanh(x);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& layer : layers_) h = layer->forward(h);
  return h;
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  IRIS_CHECK(i < layers_.size(), "Sequential: index ", i, " out of range for ", layers_.size(), " layers");
  return layers_[i];
}

}  // namespace iris::nn
