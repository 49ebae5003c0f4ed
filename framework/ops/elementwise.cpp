// Elementwise ops: argument checks, dtype promotion, dispatch to the device kernel, and the backward of each.
#include "framework/ops/elementwise.h"

#include "framework/kernels/elementwise.h"
#include "framework/autograd/node.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/reduce.h"

namespace iris {

using autograd::NeedGrad;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// Runs a unary kernel: out has x's shape and dtype.
Tensor run_unary(UnaryOp op, const char* name, const Tensor& x, double a = 0, double b = 0) {
  check_defined(x, name);
  check_floating(x, name);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  IRIS_DISPATCH_DEVICE(x.device(), unary, op, x, out, a, b);
  return out;
}

// Runs a binary kernel on already promoted operands: out has the broadcast shape.
Tensor run_binary(BinaryOp op, const char* name, const Tensor& x, const Tensor& y, double a = 0, double b = 0) {
  const Shape shape = broadcast_shapes(x.shape(), y.shape(), name);
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  IRIS_DISPATCH_DEVICE(x.device(), binary, op, x, y, out, a, b);
  return out;
}

// Checks two operands and converts them to their common floating dtype (differentiably).
std::pair<Tensor, Tensor> promote(const char* name, const Tensor& a, const Tensor& b) {
  check_defined(a, name, "first operand");
  check_defined(b, name, "second operand");
  check_same_device(name, {&a, &b});
  IRIS_CHECK(is_floating(a.dtype()) && is_floating(b.dtype()), name, ": expected floating operands, got ",
             a.summary(), " and ", b.summary());
  const DType dt = promote_floating(a.dtype(), b.dtype());
  return {a.to(dt), b.to(dt)};
}

}  // namespace

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  IRIS_CHECK(lead >= 0, "sum_to: cannot reduce ", g.summary(), " to ", shape_str(shape));
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(i);
  return sum(g, axes, /*keepdim=*/true).reshape(shape);
}

// ---- binary ----------------------------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  auto [x, y] = promote("add", a, b);
  Tensor out = run_binary(BinaryOp::add, "add", x, y);
  autograd::record("add", out, {&x, &y}, [sx = x.shape(), sy = y.shape()](const Tensor& g, NeedGrad need) -> Grads {
    return {need[0] ? sum_to(g, sx) : Tensor(), need[1] ? sum_to(g, sy) : Tensor()};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  auto [x, y] = promote("sub", a, b);
  Tensor out = run_binary(BinaryOp::sub, "sub", x, y);
  autograd::record("sub", out, {&x, &y}, [sx = x.shape(), sy = y.shape()](const Tensor& g, NeedGrad need) -> Grads {
    return {need[0] ? sum_to(g, sx) : Tensor(), need[1] ? sum_to(neg(g), sy) : Tensor()};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  auto [x, y] = promote("mul", a, b);
  Tensor out = run_binary(BinaryOp::mul, "mul", x, y);
  if (autograd::any_requires_grad({&x, &y})) {
    SavedTensor sx(y.requires_grad() ? x : Tensor()), sy(x.requires_grad() ? y : Tensor());
    autograd::record("mul", out, {&x, &y},
                     [sx, sy, shx = x.shape(), shy = y.shape()](const Tensor& g, NeedGrad need) -> Grads {
                       return {need[0] ? sum_to(mul(g, sy.get()), shx) : Tensor(),
                               need[1] ? sum_to(mul(g, sx.get()), shy) : Tensor()};
                     });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  auto [x, y] = promote("div", a, b);
  Tensor out = run_binary(BinaryOp::div, "div", x, y);
  if (autograd::any_requires_grad({&x, &y})) {
    SavedTensor sy(y), sout(y.requires_grad() ? out : Tensor());
    autograd::record("div", out, {&x, &y},
                     [sy, sout, shx = x.shape(), shy = y.shape()](const Tensor& g, NeedGrad need) -> Grads {
                       const Tensor gx = div(g, sy.get());
                       return {need[0] ? sum_to(gx, shx) : Tensor(),
                               need[1] ? sum_to(neg(mul(gx, sout.get())), shy) : Tensor()};
                     });
  }
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  auto [x, y] = promote("pow", a, b);
  Tensor out = run_binary(BinaryOp::pow, "pow", x, y);
  if (autograd::any_requires_grad({&x, &y})) {
    SavedTensor sx(x), sy(y), sout(out);
    autograd::record("pow", out, {&x, &y},
                     [sx, sy, sout, shx = x.shape(), shy = y.shape()](const Tensor& g, NeedGrad need) -> Grads {
                       Tensor gx, gy;
                       // d/dx x^y = y x^(y-1); d/dy x^y = x^y log x
                       if (need[0]) gx = sum_to(mul(g, mul(sy.get(), pow(sx.get(), sub(sy.get(), 1.0)))), shx);
                       if (need[1]) gy = sum_to(mul(g, mul(sout.get(), log(sx.get()))), shy);
                       return {gx, gy};
                     });
  }
  return out;
}

namespace {
// maximum/minimum: the gradient goes to the selected operand; ties split evenly.
Tensor extremum(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  auto [x, y] = promote(name, a, b);
  Tensor out = run_binary(op, name, x, y);
  if (autograd::any_requires_grad({&x, &y})) {
    SavedTensor sx(x), sy(y), sout(out);
    autograd::record(name, out, {&x, &y},
                     [sx, sy, sout, shx = x.shape(), shy = y.shape()](const Tensor& g, NeedGrad need) -> Grads {
                       const Tensor mx = eq(sx.get(), sout.get()).to(g.dtype());
                       const Tensor my = eq(sy.get(), sout.get()).to(g.dtype());
                       const Tensor share = div(g, add(mx, my));
                       return {need[0] ? sum_to(mul(share, mx), shx) : Tensor(),
                               need[1] ? sum_to(mul(share, my), shy) : Tensor()};
                     });
  }
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::maximum, "maximum", a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::minimum, "minimum", a, b); }

// ---- scalar variants ---------------------------------------------------------------------------------------

Tensor add(const Tensor& a, double s) {
  Tensor out = run_unary(UnaryOp::add_scalar, "add", a, s);
  autograd::record("add_scalar", out, {&a}, [](const Tensor& g, NeedGrad) -> Grads { return {g}; });
  return out;
}
Tensor sub(const Tensor& a, double s) { return add(a, -s); }

Tensor mul(const Tensor& a, double s) {
  Tensor out = run_unary(UnaryOp::mul_scalar, "mul", a, s);
  autograd::record("mul_scalar", out, {&a}, [s](const Tensor& g, NeedGrad) -> Grads { return {mul(g, s)}; });
  return out;
}
Tensor div(const Tensor& a, double s) { return mul(a, 1.0 / s); }

Tensor rsub(double s, const Tensor& a) {
  Tensor out = run_unary(UnaryOp::rsub_scalar, "rsub", a, s);
  autograd::record("rsub_scalar", out, {&a}, [](const Tensor& g, NeedGrad) -> Grads { return {neg(g)}; });
  return out;
}

Tensor rdiv(double s, const Tensor& a) {
  Tensor out = run_unary(UnaryOp::rdiv_scalar, "rdiv", a, s);
  if (autograd::any_requires_grad({&a})) {
    SavedTensor sa(a), sout(out);
    autograd::record("rdiv_scalar", out, {&a}, [sa, sout](const Tensor& g, NeedGrad) -> Grads {
      return {neg(div(mul(g, sout.get()), sa.get()))};  // d(s/a) = -s/a^2 = -out/a
    });
  }
  return out;
}

Tensor pow(const Tensor& a, double p) {
  Tensor out = run_unary(UnaryOp::pow_scalar, "pow", a, p);
  if (autograd::any_requires_grad({&a})) {
    SavedTensor sa(a);
    autograd::record("pow_scalar", out, {&a}, [sa, p](const Tensor& g, NeedGrad) -> Grads {
      if (p == 2.0) return {mul(g, mul(sa.get(), 2.0))};
      return {mul(g, mul(pow(sa.get(), p - 1.0), p))};
    });
  }
  return out;
}

// ---- unary -----------------------------------------------------------------------------------------------

namespace {
// A unary op whose backward is one binary "backward helper" kernel on (saved x or y, g).
Tensor unary_with_helper(UnaryOp op, const char* name, const Tensor& x, BinaryOp bwd, bool save_output,
                         double a = 0, double b = 0) {
  Tensor out = run_unary(op, name, x, a, b);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor s(save_output ? out : x);
    autograd::record(name, out, {&x}, [s, bwd, name, a, b](const Tensor& g, NeedGrad) -> Grads {
      const Tensor& v = s.get();
      return {run_binary(bwd, name, v, g.to(v.dtype()), a, b)};
    });
  }
  return out;
}
}  // namespace

Tensor neg(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::neg, "neg", x);
  autograd::record("neg", out, {&x}, [](const Tensor& g, NeedGrad) -> Grads { return {neg(g)}; });
  return out;
}

Tensor abs(const Tensor& x) { return unary_with_helper(UnaryOp::abs, "abs", x, BinaryOp::abs_bwd, false); }

Tensor exp(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::exp, "exp", x);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor s(out);
    autograd::record("exp", out, {&x}, [s](const Tensor& g, NeedGrad) -> Grads { return {mul(g, s.get())}; });
  }
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::log, "log", x);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor s(x);
    autograd::record("log", out, {&x}, [s](const Tensor& g, NeedGrad) -> Grads { return {div(g, s.get())}; });
  }
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::sqrt, "sqrt", x);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor s(out);
    autograd::record("sqrt", out, {&x},
                     [s](const Tensor& g, NeedGrad) -> Grads { return {div(mul(g, 0.5), s.get())}; });
  }
  return out;
}

Tensor rsqrt(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::rsqrt, "rsqrt", x);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor s(out);
    autograd::record("rsqrt", out, {&x}, [s](const Tensor& g, NeedGrad) -> Grads {
      const Tensor& y = s.get();  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
      return {mul(g, mul(mul(y, mul(y, y)), -0.5))};
    });
  }
  return out;
}

Tensor sin(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::sin, "sin", x);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor s(x);
    autograd::record("sin", out, {&x}, [s](const Tensor& g, NeedGrad) -> Grads { return {mul(g, cos(s.get()))}; });
  }
  return out;
}

Tensor cos(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::cos, "cos", x);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor s(x);
    autograd::record("cos", out, {&x},
                     [s](const Tensor& g, NeedGrad) -> Grads { return {neg(mul(g, sin(s.get())))}; });
  }
  return out;
}

Tensor sigmoid(const Tensor& x) {
  return unary_with_helper(UnaryOp::sigmoid, "sigmoid", x, BinaryOp::sigmoid_bwd, true);
}
Tensor tanh(const Tensor& x) { return unary_with_helper(UnaryOp::tanh, "tanh", x, BinaryOp::tanh_bwd, true); }
Tensor silu(const Tensor& x) { return unary_with_helper(UnaryOp::silu, "silu", x, BinaryOp::silu_bwd, false); }
Tensor gelu(const Tensor& x) { return unary_with_helper(UnaryOp::gelu, "gelu", x, BinaryOp::gelu_bwd, false); }
Tensor relu(const Tensor& x) { return unary_with_helper(UnaryOp::relu, "relu", x, BinaryOp::relu_bwd, false); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  IRIS_CHECK(lo <= hi, "clamp: lower bound ", lo, " above upper bound ", hi);
  return unary_with_helper(UnaryOp::clamp, "clamp", x, BinaryOp::clamp_bwd, false, lo, hi);
}

Tensor square(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::square, "square", x);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor s(x);
    autograd::record("square", out, {&x},
                     [s](const Tensor& g, NeedGrad) -> Grads { return {mul(g, mul(s.get(), 2.0))}; });
  }
  return out;
}

Tensor sign(const Tensor& x) { return run_unary(UnaryOp::sign, "sign", x.detach()); }

// ---- comparisons and where -------------------------------------------------------------------------------

namespace {
Tensor run_compare(CompareOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_defined(a, name, "first operand");
  check_defined(b, name, "second operand");
  check_same_device(name, {&a, &b});
  Tensor x = a.detach(), y = b.detach();
  if (x.dtype() != y.dtype()) {
    IRIS_CHECK(is_floating(x.dtype()) && is_floating(y.dtype()), name, ": cannot compare ", a.summary(), " with ",
               b.summary());
    const DType dt = promote_floating(x.dtype(), y.dtype());
    x = x.to(dt);
    y = y.to(dt);
  }
  Tensor out = Tensor::empty(broadcast_shapes(x.shape(), y.shape(), name), DType::u8, x.device());
  IRIS_DISPATCH_DEVICE(x.device(), compare, op, x, y, out);
  return out;
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return run_compare(CompareOp::eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return run_compare(CompareOp::ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return run_compare(CompareOp::lt, "lt", a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return run_compare(CompareOp::le, "le", a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return run_compare(CompareOp::gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return run_compare(CompareOp::ge, "ge", a, b); }
Tensor gt(const Tensor& a, double s) { return gt(a, Tensor::scalar(s, a.dtype(), a.device())); }
Tensor lt(const Tensor& a, double s) { return lt(a, Tensor::scalar(s, a.dtype(), a.device())); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined(cond, "where", "condition");
  IRIS_CHECK(cond.dtype() == DType::u8, "where: the condition must be a u8 mask, got ", cond.summary());
  auto [x, y] = promote("where", a, b);
  check_same_device("where", {&cond, &x});
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), x.shape(), "where"), y.shape(), "where");
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  IRIS_DISPATCH_DEVICE(x.device(), where, cond, x, y, out);
  if (autograd::any_requires_grad({&x, &y})) {
    SavedTensor sc(cond);
    autograd::record("where", out, {&x, &y},
                     [sc, shx = x.shape(), shy = y.shape()](const Tensor& g, NeedGrad need) -> Grads {
                       const Tensor zero = Tensor::zeros({}, g.dtype(), g.device());
                       return {need[0] ? sum_to(where(sc.get(), g, zero), shx) : Tensor(),
                               need[1] ? sum_to(where(sc.get(), zero, g), shy) : Tensor()};
                     });
  }
  return out;
}

}  // namespace iris
