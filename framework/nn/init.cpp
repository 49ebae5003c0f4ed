#include "framework/nn/init.h"

#include "framework/autograd/grad_mode.h"
#include "framework/ops/random.h"

namespace iris::nn::init {

namespace {
void check_weight(const Tensor& w, const char* op) {
  check_defined(w, op, "weight");
  IRIS_CHECK(w.dim() >= 2, op, ": fans need a weight with at least 2 axes ([out, ...]), got ", w.summary());
}
void check_target(const Tensor& t, const char* op) {
  check_defined(t, op, "tensor");
  check_floating(t, op);
}
}  // namespace

int64_t fan_in(const Tensor& weight) {
  check_weight(weight, "fan_in");
  return weight.size(0) == 0 ? 0 : weight.numel() / weight.size(0);
}

int64_t fan_out(const Tensor& weight) {
  check_weight(weight, "fan_out");
  // The receptive field is the product of the axes between the output (first) and input (last) axes.
  int64_t receptive = 1;
  for (int64_t i = 1; i + 1 < weight.dim(); ++i) receptive *= weight.size(i);
  return weight.size(0) * receptive;
}

Tensor& uniform_(Tensor& t, Generator& gen, double lo, double hi) {
  check_target(t, "init::uniform_");
  IRIS_CHECK(lo <= hi, "init::uniform_: empty range [", lo, ", ", hi, ") for ", t.summary());
  NoGradGuard no_grad;
  t.copy_(rand(t.shape(), gen, t.dtype(), t.device(), lo, hi));
  return t;
}

Tensor& normal_(Tensor& t, Generator& gen, double mean, double std) {
  check_target(t, "init::normal_");
  IRIS_CHECK(std >= 0, "init::normal_: negative standard deviation ", std, " for ", t.summary());
  NoGradGuard no_grad;
  t.copy_(randn(t.shape(), gen, t.dtype(), t.device(), mean, std));
  return t;
}

Tensor& constant_(Tensor& t, double value) {
  check_target(t, "init::constant_");
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}

Tensor& zeros_(Tensor& t) {
  return constant_(t, 0.0);
}

Tensor& kaiming_uniform_(Tensor& weight, Generator& gen, double a) {
  const int64_t fi = fan_in(weight);
  IRIS_CHECK(fi > 0, "init::kaiming_uniform_: zero fan-in for ", weight.summary());
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fi));
  return uniform_(weight, gen, -bound, bound);
}

Tensor& xavier_uniform_(Tensor& weight, Generator& gen, double gain) {
  const int64_t fi = fan_in(weight), fo = fan_out(weight);
  IRIS_CHECK(fi + fo > 0, "init::xavier_uniform_: zero fans for ", weight.summary());
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fi + fo));
  return uniform_(weight, gen, -bound, bound);
}

Tensor& bias_uniform_(Tensor& bias, int64_t fan_in, Generator& gen) {
  IRIS_CHECK(fan_in >= 0, "init::bias_uniform_: negative fan-in ", fan_in);
  if (fan_in == 0) return zeros_(bias);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return uniform_(bias, gen, -bound, bound);
}

}  // namespace iris::nn::init
