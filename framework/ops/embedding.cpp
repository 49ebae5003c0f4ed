// embedding and gather_last: checks, index validation, dispatch and backward.
#include "framework/ops/embedding.h"

#include "framework/autograd/node.h"
#include "framework/kernels/embedding.h"
#include "framework/ops/dispatch.h"

namespace iris {

using autograd::NeedGrad;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {
void check_index_tensor(const Tensor& indices, const char* op, const char* what) {
  check_defined(indices, op, what);
  IRIS_CHECK(indices.dtype() == DType::i32 || indices.dtype() == DType::i64, op, ": ", what,
             " must be i32 or i64, got ", indices.summary());
}

// Index validation runs on the host, where a bad index can raise an iris::Error naming it: CUDA indices are
// copied there first (a synchronising copy, meant for the small label tensors: class labels, cross-entropy
// targets, a few hundred bytes).
void check_indices(const Tensor& indices, int64_t limit, const char* op, const char* what) {
  if (indices.device().is_cpu()) return cpu::check_indices(indices, limit, op, what);
  if (indices.numel() == 0) return;
  cpu::check_indices(indices.to(Device::cpu()), limit, op, what);
}
}  // namespace

Tensor embedding(const Tensor& weight_in, const Tensor& indices_in) {
  const char* op = "embedding";
  check_defined(weight_in, op, "weight");
  check_floating(weight_in, op);
  check_index_tensor(indices_in, op, "indices");
  check_same_device(op, {&weight_in, &indices_in});
  IRIS_CHECK(weight_in.dim() == 2, op, ": weight must be [V, D], got ", weight_in.summary());
  const int64_t V = weight_in.size(0), D = weight_in.size(1);
  const Tensor indices = indices_in.contiguous();
  check_indices(indices, V, op, "V (rows of the weight)");
  const Tensor weight = weight_in.contiguous();

  Shape out_shape = indices.shape();
  out_shape.push_back(D);
  Tensor out = Tensor::empty(out_shape, weight.dtype(), weight.device());
  if (out.numel() > 0) IRIS_DISPATCH_DEVICE(weight.device(), embedding_forward, weight, indices, out);

  if (autograd::any_requires_grad({&weight})) {
    SavedTensor sidx(indices);
    autograd::record(op, out, {&weight},
                     [sidx, V, D, dt = weight.dtype()](const Tensor& g, NeedGrad) -> Grads {
                       const Tensor& idx = sidx.get();
                       const Tensor gc = g.to(dt).contiguous();
                       Tensor dw = Tensor::empty({V, D}, dt, gc.device());
                       if (dw.numel() > 0) IRIS_DISPATCH_DEVICE(gc.device(), embedding_backward, gc, idx, dw);
                       return {dw};
                     });
  }
  return out;
}

namespace detail {
Tensor gather_last(const Tensor& x_in, const Tensor& index_in, const char* op, const char* what) {
  check_defined(x_in, op);
  check_floating(x_in, op);
  check_index_tensor(index_in, op, "index");
  check_same_device(op, {&x_in, &index_in});
  IRIS_CHECK(x_in.dim() >= 1, op, ": input must have at least one axis, got ", x_in.summary());
  const Shape rows(x_in.shape().begin(), x_in.shape().end() - 1);
  IRIS_CHECK(index_in.shape() == rows, op, ": index ", index_in.summary(), " must have the shape ",
             shape_str(rows), " of input ", x_in.summary(), " without its last axis");
  const int64_t C = x_in.size(-1);
  const Tensor index = index_in.contiguous();
  check_indices(index, C, op, what);
  const Tensor x = x_in.contiguous();

  Tensor out = Tensor::empty(rows, x.dtype(), x.device());
  if (out.numel() > 0) IRIS_DISPATCH_DEVICE(x.device(), gather_last, x, index, out);
  if (autograd::any_requires_grad({&x})) {
    SavedTensor sidx(index);
    autograd::record(op, out, {&x},
                     [sidx, shape = x.shape(), dt = x.dtype()](const Tensor& g, NeedGrad) -> Grads {
                       const Tensor gc = g.to(dt).contiguous();
                       Tensor dx = Tensor::empty(shape, dt, gc.device());
                       if (dx.numel() > 0)
                         IRIS_DISPATCH_DEVICE(gc.device(), gather_last_backward, gc, sidx.get(), dx);
                       return {dx};
                     });
  }
  return out;
}
}  // namespace detail

Tensor gather_last(const Tensor& x, const Tensor& index) {
  return detail::gather_last(x, index, "gather_last", "C (size of the last axis)");
}

}  // namespace iris
