#include "framework/nn/conv_layers.h"

#include "framework/nn/init.h"
#include "framework/ops/conv.h"
#include "framework/ops/embedding.h"
#include "framework/ops/norm.h"

namespace iris::nn {

Conv2d::Conv2d(int64_t cin, int64_t cout, int64_t kernel, Generator& gen, int64_t stride, int64_t padding,
               bool with_bias)
    : stride_(stride), padding_(padding) {
  IRIS_CHECK(cin > 0 && cout > 0 && kernel > 0 && stride > 0 && padding >= 0, "Conv2d: invalid sizes cin=", cin,
             " cout=", cout, " kernel=", kernel, " stride=", stride, " padding=", padding);
  weight = register_parameter("weight", Tensor::empty({cout, kernel, kernel, cin}));
  init::kaiming_uniform_(weight, gen);
  if (with_bias) {
    bias = register_parameter("bias", Tensor::empty({cout}));
    init::bias_uniform_(bias, init::fan_in(weight), gen);
  }
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, {stride_, stride_}, {padding_, padding_}); }

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps) : groups_(groups), eps_(eps) {
  IRIS_CHECK(groups > 0 && channels % groups == 0, "GroupNorm: ", channels, " channels cannot be split into ",
             groups, " groups");
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
}

Tensor GroupNorm::forward(const Tensor& x) { return group_norm(x, groups_, weight, bias, eps_); }
Tensor GroupNorm::forward_silu(const Tensor& x) { return group_norm_silu(x, groups_, weight, bias, eps_); }

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen) {
  IRIS_CHECK(num > 0 && dim > 0, "Embedding: invalid size ", num, " x ", dim);
  weight = register_parameter("weight", Tensor::empty({num, dim}));
  init::normal_(weight, gen, 0.0, 1.0);
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight, indices); }

}  // namespace iris::nn
