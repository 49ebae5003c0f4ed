// Reductions and softmax: checks, dispatch and backward.
#include "framework/ops/reduce.h"

#include <algorithm>

#include "framework/kernels/reduce.h"
#include "framework/kernels/softmax.h"
#include "framework/autograd/node.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/elementwise.h"

namespace iris {

using autograd::NeedGrad;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

struct Plan {
  std::vector<int64_t> axes;  // sorted, unique, normalised
  Shape out_shape;            // without the reduced axes
  Shape keep_shape;           // with the reduced axes as size 1
  int64_t count = 1;          // elements reduced into each output
};

Plan plan_reduction(const Tensor& x, const std::vector<int64_t>& axes_in, const char* op) {
  check_defined(x, op);
  check_floating(x, op);
  Plan p;
  if (axes_in.empty()) {
    for (int64_t i = 0; i < x.dim(); ++i) p.axes.push_back(i);
  } else {
    for (int64_t a : axes_in) p.axes.push_back(normalize_axis(a, x.dim(), op));
    std::sort(p.axes.begin(), p.axes.end());
    IRIS_CHECK(std::adjacent_find(p.axes.begin(), p.axes.end()) == p.axes.end(), op, ": repeated axis for ",
               x.summary());
  }
  for (int64_t i = 0; i < x.dim(); ++i) {
    const bool red = std::binary_search(p.axes.begin(), p.axes.end(), i);
    if (red) p.count *= x.shape()[i];
    if (!red) p.out_shape.push_back(x.shape()[i]);
    p.keep_shape.push_back(red ? 1 : x.shape()[i]);
  }
  return p;
}

Tensor run_reduce(ReduceOp op, const Tensor& x, const Plan& p, int64_t correction = 0) {
  Tensor out = Tensor::empty(p.out_shape, x.dtype(), x.device());
  if (p.axes.empty()) {  // a 0-d input: nothing to reduce
    out.copy_(x.detach().reshape(p.out_shape));
    if (op == ReduceOp::var) out.fill_(correction > 0 ? std::nan("") : 0.0);
    return out;
  }
  IRIS_CHECK(p.count > 0 || op == ReduceOp::sum, "reduction over an empty axis of ", x.summary());
  IRIS_DISPATCH_DEVICE(x.device(), reduce, op, x, out, p.axes, correction);
  return out;
}

Tensor finish(const Tensor& out, const Plan& p, bool keepdim) { return keepdim ? out.view(p.keep_shape) : out; }

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  const Plan p = plan_reduction(x, axes, "sum");
  Tensor out = run_reduce(ReduceOp::sum, x, p);
  autograd::record("sum", out, {&x}, [p, in = x.shape()](const Tensor& g, NeedGrad) -> Grads {
    return {g.reshape(p.keep_shape).expand(in).contiguous()};
  });
  return finish(out, p, keepdim);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  const Plan p = plan_reduction(x, axes, "mean");
  Tensor out = run_reduce(ReduceOp::mean, x, p);
  autograd::record("mean", out, {&x}, [p, in = x.shape()](const Tensor& g, NeedGrad) -> Grads {
    return {mul(g.reshape(p.keep_shape), 1.0 / static_cast<double>(p.count)).expand(in).contiguous()};
  });
  return finish(out, p, keepdim);
}

namespace {
Tensor extreme(ReduceOp op, const char* name, const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  const Plan p = plan_reduction(x, axes, name);
  IRIS_CHECK(p.count > 0, name, ": reduction over an empty axis of ", x.summary());
  Tensor out = run_reduce(op, x, p);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor sx(x), sout(out);
    autograd::record(name, out, {&x}, [p, sx, sout](const Tensor& g, NeedGrad) -> Grads {
      // Gradient to every element equal to the extreme, split evenly between ties.
      const Tensor mask = eq(sx.get(), sout.get().reshape(p.keep_shape)).to(g.dtype());
      const Tensor count = sum(mask, p.axes, true);
      return {mul(mask, div(g.reshape(p.keep_shape), count))};
    });
  }
  return finish(out, p, keepdim);
}
}  // namespace

Tensor max(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  return extreme(ReduceOp::max, "max", x, axes, keepdim);
}
Tensor min(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  return extreme(ReduceOp::min, "min", x, axes, keepdim);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim, int64_t correction) {
  const Plan p = plan_reduction(x, axes, "var");
  IRIS_CHECK(correction >= 0, "var: negative correction ", correction);
  Tensor out = run_reduce(ReduceOp::var, x, p, correction);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor sx(x);
    autograd::record("var", out, {&x}, [p, sx, correction](const Tensor& g, NeedGrad) -> Grads {
      // d var / dx_i = 2 (x_i - mean) / (n - correction)
      const Tensor& xv = sx.get();
      const Tensor centered = sub(xv, mean(xv, p.axes, true));
      const double scale = 2.0 / static_cast<double>(p.count - correction);
      return {mul(centered, mul(g.reshape(p.keep_shape), scale))};
    });
  }
  return finish(out, p, keepdim);
}

namespace {
Tensor softmax_impl(const Tensor& x_in, bool log, const char* name) {
  check_defined(x_in, name);
  check_floating(x_in, name);
  IRIS_CHECK(x_in.dim() >= 1, name, ": needs at least one axis, got ", x_in.summary());
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  IRIS_DISPATCH_DEVICE(x.device(), softmax, x, y, log);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor sy(y);
    autograd::record(name, y, {&x}, [sy, log](const Tensor& g, NeedGrad) -> Grads {
      const Tensor& yv = sy.get();
      const Tensor gc = g.to(yv.dtype()).contiguous();
      Tensor dx = Tensor::empty(yv.shape(), yv.dtype(), yv.device());
      IRIS_DISPATCH_DEVICE(yv.device(), softmax_backward, yv, gc, dx, log);
      return {dx};
    });
  }
  return y;
}
}  // namespace

Tensor softmax(const Tensor& x) { return softmax_impl(x, false, "softmax"); }
Tensor log_softmax(const Tensor& x) { return softmax_impl(x, true, "log_softmax"); }

}  // namespace iris
