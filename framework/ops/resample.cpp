// upsample_nearest2x and avg_pool2x: checks, dispatch and backward (each is the other's adjoint up to a
// factor of 4: the gradient of nearest upsampling sums 2x2 blocks, that of average pooling spreads g / 4).
#include "framework/ops/resample.h"

#include "framework/autograd/node.h"
#include "framework/kernels/resample.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/image_checks.h"

namespace iris {

using autograd::NeedGrad;
using Grads = std::vector<Tensor>;

Tensor upsample_nearest2x(const Tensor& x_in) {
  check_image(x_in, "upsample_nearest2x");
  const Tensor x = x_in.contiguous();
  const Shape& s = x.shape();
  Tensor out = Tensor::empty({s[0], 2 * s[1], 2 * s[2], s[3]}, x.dtype(), x.device());
  if (out.numel() > 0) IRIS_DISPATCH_DEVICE(x.device(), upsample_nearest2x, x, out);
  autograd::record("upsample_nearest2x", out, {&x},
                   [in = s, dt = x.dtype()](const Tensor& g, NeedGrad) -> Grads {
                     const Tensor gc = g.to(dt).contiguous();
                     Tensor dx = Tensor::empty(in, dt, gc.device());
                     if (dx.numel() > 0)
                       IRIS_DISPATCH_DEVICE(gc.device(), upsample_nearest2x_backward, gc, dx);
                     return {dx};
                   });
  return out;
}

Tensor avg_pool2x(const Tensor& x_in) {
  check_image(x_in, "avg_pool2x");
  const Shape& s = x_in.shape();
  IRIS_CHECK(s[1] % 2 == 0 && s[2] % 2 == 0, "avg_pool2x: H and W must be even, got input ", x_in.summary(),
             " (H = ", s[1], ", W = ", s[2], ")");
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({s[0], s[1] / 2, s[2] / 2, s[3]}, x.dtype(), x.device());
  if (out.numel() > 0) IRIS_DISPATCH_DEVICE(x.device(), avg_pool2x, x, out);
  autograd::record("avg_pool2x", out, {&x}, [in = s, dt = x.dtype()](const Tensor& g, NeedGrad) -> Grads {
    const Tensor gc = g.to(dt).contiguous();
    Tensor dx = Tensor::empty(in, dt, gc.device());
    if (dx.numel() > 0) IRIS_DISPATCH_DEVICE(gc.device(), avg_pool2x_backward, gc, dx);
    return {dx};
  });
  return out;
}

}  // namespace iris
