// Random tensors and dropout.
#include "framework/ops/random.h"

#include "framework/kernels/random.h"
#include "framework/autograd/node.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/elementwise.h"

namespace iris {

using autograd::NeedGrad;
using autograd::SavedTensor;

namespace {
Tensor draw(const char* op, Distribution dist, const Shape& shape, Generator& gen, DType dtype, Device device,
            double a, double b) {
  IRIS_CHECK(is_floating(dtype), op, ": expected a floating dtype, got ", dtype_name(dtype));
  Tensor out = Tensor::empty(shape, dtype, device);
  std::vector<uint64_t> single{gen.stream()};
  const std::vector<uint64_t>& streams = gen.is_per_sample() ? gen.streams() : single;
  const int64_t N = static_cast<int64_t>(streams.size());
  if (gen.is_per_sample())
    IRIS_CHECK(!shape.empty() && shape[0] == N, op, ": a per-sample generator of ", N,
               " streams needs a shape starting with ", N, ", got ", shape_str(shape));
  const int64_t per_stream = N ? shape_numel(shape) / N : 0;
  const uint64_t offset = gen.advance(static_cast<uint64_t>((per_stream + 3) / 4));
  if (out.numel() == 0) return out;
  IRIS_DISPATCH_DEVICE(device, philox_fill, out, dist, gen.seed(), streams.data(), N, offset, a, b);
  return out;
}
}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype, Device device, double lo, double hi) {
  return draw("rand", Distribution::uniform, shape, gen, dtype, device, lo, hi);
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device, double mean, double std) {
  return draw("randn", Distribution::normal, shape, gen, dtype, device, mean, std);
}

Tensor rand_like(const Tensor& t, Generator& gen) { return rand(t.shape(), gen, t.dtype(), t.device()); }
Tensor randn_like(const Tensor& t, Generator& gen) { return randn(t.shape(), gen, t.dtype(), t.device()); }

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  check_defined(x, "dropout");
  IRIS_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  // keep = (u >= p) / (1 - p), drawn in x's dtype on x's device; the mask is the backward too.
  const Tensor u = rand(x.shape(), gen, DType::f32, x.device());
  const Tensor keep = mul(ge(u, Tensor::scalar(p, DType::f32, x.device())).to(x.dtype()), 1.0 / (1.0 - p));
  return mul(x, keep);
}

}  // namespace iris
