// conv2d: argument checks, dtype handling, dispatch to the device kernels and the backward formula.
#include "framework/ops/conv.h"

#include <functional>

#include "framework/autograd/node.h"
#include "framework/kernels/conv.h"
#include "framework/ops/autocast.h"
#include "framework/ops/dispatch.h"

namespace iris {

using autograd::NeedGrad;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

ConvParams make_conv_params(const Shape& xs, const Shape& ws, std::array<int64_t, 2> stride,
                            std::array<int64_t, 2> padding, const char* op) {
  IRIS_CHECK(xs.size() == 4, op, ": input must be 4-D [N, H, W, Cin], got ", shape_str(xs));
  IRIS_CHECK(ws.size() == 4, op, ": weight must be 4-D [Cout, kh, kw, Cin], got ", shape_str(ws));
  IRIS_CHECK(xs[3] == ws[3], op, ": input channels differ: input ", shape_str(xs), " has Cin = ", xs[3],
             " but weight ", shape_str(ws), " expects Cin = ", ws[3]);
  IRIS_CHECK(ws[0] > 0 && ws[1] > 0 && ws[2] > 0 && ws[3] > 0, op, ": weight ", shape_str(ws),
             " must have no empty axis");
  IRIS_CHECK(stride[0] > 0 && stride[1] > 0, op, ": stride must be positive, got [", stride[0], ", ",
             stride[1], "]");
  IRIS_CHECK(padding[0] >= 0 && padding[1] >= 0, op, ": padding must be non-negative, got [", padding[0],
             ", ", padding[1], "]");
  ConvParams p;
  p.N = xs[0];
  p.H = xs[1];
  p.W = xs[2];
  p.Cin = xs[3];
  p.Cout = ws[0];
  p.kh = ws[1];
  p.kw = ws[2];
  p.sh = stride[0];
  p.sw = stride[1];
  p.ph = padding[0];
  p.pw = padding[1];
  IRIS_CHECK(p.H + 2 * p.ph >= p.kh && p.W + 2 * p.pw >= p.kw, op, ": kernel ", p.kh, "x", p.kw,
             " is larger than the padded input (input ", shape_str(xs), ", padding [", p.ph, ", ", p.pw,
             "])");
  p.Ho = (p.H + 2 * p.ph - p.kh) / p.sh + 1;
  p.Wo = (p.W + 2 * p.pw - p.kw) / p.sw + 1;
  return p;
}

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding) {
  check_defined(x_in, "conv2d", "input");
  check_defined(w_in, "conv2d", "weight");
  check_same_device("conv2d", {&x_in, &w_in});
  check_floating(x_in, "conv2d");
  check_floating(w_in, "conv2d");
  const ConvParams p = make_conv_params(x_in.shape(), w_in.shape(), stride, padding);
  if (bias_in.defined()) {
    check_same_device("conv2d", {&x_in, &bias_in});
    check_floating(bias_in, "conv2d");
    IRIS_CHECK(bias_in.dim() == 1 && bias_in.size(0) == p.Cout, "conv2d: bias ", bias_in.summary(),
               " does not match the weight's Cout = ", p.Cout, " (weight ", shape_str(w_in.shape()), ")");
  }

  // Autocast first (a CUDA f32 input becomes bf16), then one compute dtype for all three operands.
  Tensor x = autocast_input(x_in), w = autocast_input(w_in);
  const DType dt = promote_floating(x.dtype(), w.dtype());
  x = x.to(dt).contiguous();
  w = w.to(dt).contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.to(dt).contiguous() : Tensor();

  Tensor out = Tensor::empty({p.N, p.Ho, p.Wo, p.Cout}, dt, x.device());
  IRIS_DISPATCH_DEVICE(x.device(), conv2d_forward, x, w, bias, out, p);

  if (autograd::any_requires_grad({&x, &w, &bias})) {
    // Each gradient needs only the other operand: save x for dW, w for dx.
    SavedTensor sx(w.requires_grad() ? x : Tensor()), sw(x.requires_grad() ? w : Tensor());
    autograd::record("conv2d", out, {&x, &w, &bias},
                     [sx, sw, p, dt](const Tensor& g, NeedGrad need) -> Grads {
                       const Tensor gc = g.to(dt).contiguous();
                       Tensor dx, dw, db;
                       if (need[0]) {
                         const Tensor& wv = sw.get();
                         dx = Tensor::empty({p.N, p.H, p.W, p.Cin}, dt, gc.device());
                         IRIS_DISPATCH_DEVICE(gc.device(), conv2d_backward_data, gc, wv, dx, p);
                       }
                       if (need[1]) {
                         const Tensor& xv = sx.get();
                         dw = Tensor::empty({p.Cout, p.kh, p.kw, p.Cin}, dt, gc.device());
                         IRIS_DISPATCH_DEVICE(gc.device(), conv2d_backward_weight, gc, xv, dw, p);
                       }
                       if (need[2]) {
                         db = Tensor::empty({p.Cout}, dt, gc.device());
                         IRIS_DISPATCH_DEVICE(gc.device(), conv2d_backward_bias, gc, db, p);
                       }
                       return {dx, dw, db};
                     });
  }
  return out;
}

}  // namespace iris
