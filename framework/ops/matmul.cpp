// matmul and linear: shape checks, batch broadcasting, autocast, dispatch, backward.
#include "framework/ops/matmul.h"

#include "framework/kernels/matmul.h"
#include "framework/autograd/node.h"
#include "framework/ops/autocast.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"

namespace iris {

using autograd::NeedGrad;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// The product of two operands already of one dtype and device, without autograd.
Tensor matmul_forward(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  const int64_t B = shape_numel(batch);
  // b shared by every batch and a contiguous: fold the batch into M for one large GEMM.
  if (batch_b.empty() && a.is_contiguous()) {
    Tensor a2 = a.detach().view({1, B * M, K}), b2 = b.detach().unsqueeze(0), o2 = out.view({1, B * M, N});
    IRIS_DISPATCH_DEVICE(a.device(), bmm, a2, b2, o2, 1.0, 0.0);
    return out;
  }
  auto as3 = [&](const Tensor& t, int64_t rows, int64_t cols) {
    Shape full = batch;
    full.push_back(rows);
    full.push_back(cols);
    Tensor e = t.detach().expand(full);
    // Collapse the batch axes; a reshape of an expanded view may copy, which is fine.
    return e.reshape({B, rows, cols});
  };
  Tensor a3 = as3(a, M, K), b3 = as3(b, K, N), o3 = out.view({B, M, N});
  IRIS_DISPATCH_DEVICE(a.device(), bmm, a3, b3, o3, 1.0, 0.0);
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  check_defined(a_in, "matmul", "first operand");
  check_defined(b_in, "matmul", "second operand");
  check_same_device("matmul", {&a_in, &b_in});
  check_floating(a_in, "matmul");
  check_floating(b_in, "matmul");
  IRIS_CHECK(a_in.dim() >= 2 && b_in.dim() >= 2, "matmul: operands must be at least 2-D, got ", a_in.summary(),
             " and ", b_in.summary());
  IRIS_CHECK(a_in.size(-1) == b_in.size(-2), "matmul: inner dimensions differ: ", shape_str(a_in.shape()), " @ ",
             shape_str(b_in.shape()));
  Tensor a = autocast_input(a_in), b = autocast_input(b_in);
  if (a.dtype() != b.dtype()) {
    const DType dt = promote_floating(a.dtype(), b.dtype());
    a = a.to(dt);
    b = b.to(dt);
  }
  Tensor out = matmul_forward(a, b);
  if (autograd::any_requires_grad({&a, &b})) {
    SavedTensor sa(b.requires_grad() ? a : Tensor()), sb(a.requires_grad() ? b : Tensor());
    autograd::record("matmul", out, {&a, &b},
                     [sa, sb, sha = a.shape(), shb = b.shape()](const Tensor& g, NeedGrad need) -> Grads {
                       Tensor ga, gb;
                       if (need[0]) ga = sum_to(matmul_forward(g, sb.get().transpose(-1, -2)), sha);
                       if (need[1]) gb = sum_to(matmul_forward(sa.get().transpose(-1, -2), g), shb);
                       return {ga, gb};
                     });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_defined(x, "linear", "input");
  check_defined(weight, "linear", "weight");
  IRIS_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ", weight.summary());
  IRIS_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", shape_str(x.shape()),
             " does not end in the weight's input size ", weight.size(1), " (weight ", shape_str(weight.shape()),
             ")");
  Tensor x2 = x.dim() == 1 ? x.unsqueeze(0) : x;
  Tensor y = matmul(x2, weight.transpose(0, 1));
  if (bias.defined()) {
    IRIS_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias ", bias.summary(),
               " does not match the weight's output size ", weight.size(0));
    y = add(y, bias.dtype() == y.dtype() ? bias : bias.to(y.dtype()));
  }
  return x.dim() == 1 ? y.squeeze(0) : y;
}

}  // namespace iris
