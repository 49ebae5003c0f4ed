// max_pool2d, avg_pool2d and resize_bilinear: checks, dispatch and backward (each backward a gather kernel
// of framework/kernels/pool.h; max pooling keeps the forward's argmax for it when a gradient is needed).
#include "framework/ops/pool.h"

#include "framework/autograd/node.h"
#include "framework/kernels/pool.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/image_checks.h"

namespace iris {

using autograd::NeedGrad;
using Grads = std::vector<Tensor>;

namespace {

PoolParams pool_params(const Tensor& x, std::array<int64_t, 2> k, std::array<int64_t, 2> s,
                       std::array<int64_t, 2> pad, const char* op) {
  check_image(x, op);
  IRIS_CHECK(k[0] >= 1 && k[1] >= 1 && s[0] >= 1 && s[1] >= 1 && pad[0] >= 0 && pad[1] >= 0, op,
             ": kernel and stride must be positive and padding >= 0, got kernel [", k[0], ", ", k[1],
             "], stride [", s[0], ", ", s[1], "], padding [", pad[0], ", ", pad[1], "]");
  IRIS_CHECK(pad[0] <= k[0] / 2 && pad[1] <= k[1] / 2, op, ": padding [", pad[0], ", ", pad[1],
             "] is more than half the window [", k[0], ", ", k[1], "]");
  PoolParams p;
  p.N = x.size(0), p.H = x.size(1), p.W = x.size(2), p.C = x.size(3);
  p.kh = k[0], p.kw = k[1], p.sh = s[0], p.sw = s[1], p.ph = pad[0], p.pw = pad[1];
  IRIS_CHECK(p.H + 2 * p.ph >= p.kh && p.W + 2 * p.pw >= p.kw, op, ": the window [", p.kh, ", ", p.kw,
             "] is larger than the padded input ", x.summary());
  p.Ho = (p.H + 2 * p.ph - p.kh) / p.sh + 1;
  p.Wo = (p.W + 2 * p.pw - p.kw) / p.sw + 1;
  return p;
}

}  // namespace

Tensor max_pool2d(const Tensor& x_in, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding) {
  const PoolParams p = pool_params(x_in, kernel, stride, padding, "max_pool2d");
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({p.N, p.Ho, p.Wo, p.C}, x.dtype(), x.device());
  const bool grad = autograd::any_requires_grad({&x});
  Tensor argmax = grad ? Tensor::empty(out.shape(), DType::i64, x.device()) : Tensor();
  if (out.numel() > 0) IRIS_DISPATCH_DEVICE(x.device(), max_pool2d, x, out, argmax, p);
  if (grad)
    autograd::record("max_pool2d", out, {&x},
                     [p, argmax, dt = x.dtype()](const Tensor& g, NeedGrad) -> Grads {
                       const Tensor gc = g.to(dt).contiguous();
                       Tensor dx = Tensor::empty({p.N, p.H, p.W, p.C}, dt, gc.device());
                       if (dx.numel() > 0)
                         IRIS_DISPATCH_DEVICE(gc.device(), max_pool2d_backward, gc, argmax, dx, p);
                       return {dx};
                     });
  return out;
}

Tensor avg_pool2d(const Tensor& x_in, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding, bool count_include_pad) {
  PoolParams p = pool_params(x_in, kernel, stride, padding, "avg_pool2d");
  p.count_include_pad = count_include_pad;
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({p.N, p.Ho, p.Wo, p.C}, x.dtype(), x.device());
  if (out.numel() > 0) IRIS_DISPATCH_DEVICE(x.device(), avg_pool2d, x, out, p);
  autograd::record("avg_pool2d", out, {&x}, [p, dt = x.dtype()](const Tensor& g, NeedGrad) -> Grads {
    const Tensor gc = g.to(dt).contiguous();
    Tensor dx = Tensor::empty({p.N, p.H, p.W, p.C}, dt, gc.device());
    if (dx.numel() > 0) IRIS_DISPATCH_DEVICE(gc.device(), avg_pool2d_backward, gc, dx, p);
    return {dx};
  });
  return out;
}

Tensor resize_bilinear(const Tensor& x_in, int64_t out_h, int64_t out_w) {
  check_image(x_in, "resize_bilinear");
  IRIS_CHECK(out_h >= 1 && out_w >= 1, "resize_bilinear: the output size must be positive, got ", out_h, "x",
             out_w);
  IRIS_CHECK(x_in.size(1) >= 1 && x_in.size(2) >= 1, "resize_bilinear: empty image ", x_in.summary());
  const Tensor x = x_in.contiguous();
  const ResizeParams p{
      .N = x.size(0), .H = x.size(1), .W = x.size(2), .C = x.size(3), .Ho = out_h, .Wo = out_w};
  Tensor out = Tensor::empty({p.N, p.Ho, p.Wo, p.C}, x.dtype(), x.device());
  if (out.numel() > 0) IRIS_DISPATCH_DEVICE(x.device(), resize_bilinear, x, out, p);
  autograd::record("resize_bilinear", out, {&x}, [p, dt = x.dtype()](const Tensor& g, NeedGrad) -> Grads {
    const Tensor gc = g.to(dt).contiguous();
    Tensor dx = Tensor::empty({p.N, p.H, p.W, p.C}, dt, gc.device());
    if (dx.numel() > 0) IRIS_DISPATCH_DEVICE(gc.device(), resize_bilinear_backward, gc, dx, p);
    return {dx};
  });
  return out;
}

}  // namespace iris
