// Tensor views (sharing storage) and copies/conversions, each with its backward, and the in-place fill_ and
// copy_. Members of Tensor (core/tensor.h), defined in the op layer because they record autograd nodes and
// dispatch to the kernels, which the core must not depend on.
#include <algorithm>
#include <numeric>
#include <optional>

#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"
#include "framework/core/tensor.h"
#include "framework/kernels/elementwise.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/runtime.h"  // memcpy_between
#endif

namespace iris {

using autograd::NeedGrad;
using Grads = std::vector<Tensor>;

namespace {

// Resolves one -1 in a requested shape against a number of elements.
Shape infer_shape(const Shape& requested, int64_t numel, const char* op, const Shape& from) {
  Shape out = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      IRIS_CHECK(infer < 0, op, ": more than one -1 in shape ", shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else {
      IRIS_CHECK(out[i] >= 0, op, ": negative dimension in shape ", shape_str(requested));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    IRIS_CHECK(known > 0 && numel % known == 0, op, ": cannot reshape ", shape_str(from), " into ",
               shape_str(requested));
    out[infer] = numel / known;
  }
  IRIS_CHECK(shape_numel(out) == numel, op, ": cannot reshape ", shape_str(from), " (", numel, " elements) into ",
             shape_str(requested));
  return out;
}

// Strides for viewing (shape, strides) as `to` without copying, or empty if impossible. Works by matching
// groups of axes whose product agrees and which are contiguous among themselves.
std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& to) {
  Shape out(to.size());
  size_t i = 0, j = 0;
  while (i < shape.size() || j < to.size()) {
    // Skip size-1 axes on either side (their stride is free).
    if (j < to.size() && to[j] == 1) {
      out[j] = 1;
      ++j;
      continue;
    }
    if (i < shape.size() && shape[i] == 1) {
      ++i;
      continue;
    }
    if (i >= shape.size() || j >= to.size()) return std::nullopt;
    // Grow a group on each side until the element counts agree.
    size_t i0 = i, j0 = j;
    int64_t a = shape[i++], b = to[j++];
    while (a != b) {
      if (a < b) {
        if (i >= shape.size()) return std::nullopt;
        a *= shape[i++];
      } else {
        if (j >= to.size()) return std::nullopt;
        b *= to[j++];
      }
    }
    // The source group must be contiguous within itself (ignoring size-1 axes).
    int64_t expect = -1;
    for (size_t k = i; k-- > i0;) {
      if (shape[k] == 1) continue;
      if (expect >= 0 && strides[k] != expect) return std::nullopt;
      expect = strides[k] * shape[k];
    }
    int64_t stride = 1;
    for (size_t k = i; k-- > i0;)
      if (shape[k] != 1) {
        stride = strides[k];
        break;
      }
    for (size_t k = j; k-- > j0;) {
      out[k] = stride;
      stride *= to[k];
    }
  }
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  check_defined(*this, "view");
  const Shape to = infer_shape(requested, numel(), "view", shape());
  auto st = view_strides(shape(), strides(), to);
  IRIS_CHECK(st.has_value(), "view: cannot view ", summary(), " with strides ", shape_str(strides()), " as ",
             shape_str(to), " without a copy; use reshape()");
  Tensor out = make_view(*this, to, *st, offset());
  autograd::record("view", out, {this}, [in = shape()](const Tensor& g, NeedGrad) -> Grads {
    return {g.reshape(in)};
  });
  return out;
}

Tensor Tensor::reshape(const Shape& requested) const {
  check_defined(*this, "reshape");
  const Shape to = infer_shape(requested, numel(), "reshape", shape());
  if (view_strides(shape(), strides(), to)) return view(to);
  return contiguous().view(to);
}

Tensor Tensor::permute(const std::vector<int64_t>& order) const {
  check_defined(*this, "permute");
  IRIS_CHECK(static_cast<int64_t>(order.size()) == dim(), "permute: order of ", order.size(),
             " axes for a tensor of ", dim(), " dimensions ", summary());
  Shape sh(order.size()), st(order.size());
  std::vector<int64_t> inverse(order.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t a = normalize_axis(order[i], dim(), "permute");
    IRIS_CHECK(inverse[a] < 0, "permute: axis ", a, " repeated in the order");
    inverse[a] = static_cast<int64_t>(i);
    sh[i] = shape()[a];
    st[i] = strides()[a];
  }
  Tensor out = make_view(*this, sh, st, offset());
  autograd::record("permute", out, {this}, [inverse](const Tensor& g, NeedGrad) -> Grads {
    return {g.permute(inverse)};
  });
  return out;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  check_defined(*this, "transpose");
  std::vector<int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(a, dim(), "transpose")], order[normalize_axis(b, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::slice(int64_t axis, int64_t start, int64_t end, int64_t step) const {
  check_defined(*this, "slice");
  axis = normalize_axis(axis, dim(), "slice");
  IRIS_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape()[axis];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sh = shape(), st = strides();
  sh[axis] = (end - start + step - 1) / step;
  st[axis] *= step;
  Tensor out = make_view(*this, sh, st, offset() + start * strides()[axis]);
  autograd::record("slice", out, {this},
                   [in = shape(), axis, start, end, step](const Tensor& g, NeedGrad) -> Grads {
                     Tensor gi = Tensor::zeros(in, g.dtype(), g.device());
                     gi.slice(axis, start, end, step).copy_(g);
                     return {gi};
                   });
  return out;
}

Tensor Tensor::select(int64_t axis, int64_t index) const {
  check_defined(*this, "select");
  axis = normalize_axis(axis, dim(), "select");
  const int64_t n = shape()[axis];
  IRIS_CHECK(index >= -n && index < n, "select: index ", index, " out of range for axis ", axis, " of ", summary());
  if (index < 0) index += n;
  return slice(axis, index, index + 1).squeeze(axis);
}

Tensor Tensor::expand(const Shape& requested) const {
  check_defined(*this, "expand");
  IRIS_CHECK(static_cast<int64_t>(requested.size()) >= dim(), "expand: cannot expand ", summary(), " to ",
             shape_str(requested), " (fewer dimensions)");
  const size_t lead = requested.size() - shape().size();
  Shape sh(requested.size()), st(requested.size(), 0);
  for (size_t i = 0; i < requested.size(); ++i) {
    if (i < lead) {
      IRIS_CHECK(requested[i] >= 0, "expand: new leading axis ", i, " cannot be -1");
      sh[i] = requested[i];
      continue;
    }
    const int64_t have = shape()[i - lead];
    const int64_t want = requested[i] == -1 ? have : requested[i];
    IRIS_CHECK(have == want || have == 1, "expand: cannot expand ", summary(), " to ", shape_str(requested));
    sh[i] = want;
    st[i] = have == want ? strides()[i - lead] : 0;
  }
  Tensor out = make_view(*this, sh, st, offset());
  autograd::record("expand", out, {this}, [in = shape()](const Tensor& g, NeedGrad) -> Grads {
    return {sum_to(g, in)};
  });
  return out;
}

Tensor Tensor::squeeze(int64_t axis) const {
  check_defined(*this, "squeeze");
  axis = normalize_axis(axis, dim(), "squeeze");
  IRIS_CHECK(shape()[axis] == 1, "squeeze: axis ", axis, " of ", summary(), " has size ", shape()[axis], ", not 1");
  Shape sh = shape();
  sh.erase(sh.begin() + axis);
  return view(sh);
}

Tensor Tensor::unsqueeze(int64_t axis) const {
  check_defined(*this, "unsqueeze");
  axis = normalize_axis(axis, dim() + 1, "unsqueeze");
  Shape sh = shape();
  sh.insert(sh.begin() + axis, 1);
  return view(sh);
}

Tensor Tensor::flatten(int64_t start_axis, int64_t end_axis) const {
  check_defined(*this, "flatten");
  if (dim() == 0) return reshape({1});
  start_axis = normalize_axis(start_axis, dim(), "flatten");
  end_axis = normalize_axis(end_axis, dim(), "flatten");
  IRIS_CHECK(start_axis <= end_axis, "flatten: start axis ", start_axis, " after end axis ", end_axis);
  Shape sh(shape().begin(), shape().begin() + start_axis);
  int64_t n = 1;
  for (int64_t i = start_axis; i <= end_axis; ++i) n *= shape()[i];
  sh.push_back(n);
  sh.insert(sh.end(), shape().begin() + end_axis + 1, shape().end());
  return reshape(sh);
}

// ---- copies and conversions ------------------------------------------------------------------------------

Tensor Tensor::contiguous() const {
  check_defined(*this, "contiguous");
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  check_defined(*this, "clone");
  Tensor out = empty(shape(), dtype(), device());
  {
    NoGradGuard ng;
    out.copy_(*this);
  }
  autograd::record("clone", out, {this}, [](const Tensor& g, NeedGrad) -> Grads { return {g}; });
  return out;
}

Tensor Tensor::to(DType dt) const {
  check_defined(*this, "to");
  if (dt == dtype()) return *this;
  Tensor out = empty(shape(), dt, device());
  {
    NoGradGuard ng;
    out.copy_(*this);
  }
  if (is_floating(dt)) {
    autograd::record("to_dtype", out, {this}, [from = dtype()](const Tensor& g, NeedGrad) -> Grads {
      return {g.to(from)};
    });
  }
  return out;
}

Tensor Tensor::to(Device dev) const {
  check_defined(*this, "to");
  if (dev == device()) return *this;
  Tensor out = empty(shape(), dtype(), dev, /*pinned=*/false);
  {
    NoGradGuard ng;
    out.copy_(*this);
  }
  autograd::record("to_device", out, {this}, [from = device()](const Tensor& g, NeedGrad) -> Grads {
    return {g.to(from)};
  });
  return out;
}

Tensor& Tensor::fill_(double value) {
  check_defined(*this, "fill_");
  IRIS_CHECK(!(requires_grad() && grad_enabled()), "fill_: in-place write to ", summary(),
             " which requires grad; do it under NoGradGuard");
  IRIS_DISPATCH_DEVICE(device(), fill, *this, value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src_in) {
  check_defined(*this, "copy_", "destination");
  check_defined(src_in, "copy_", "source");
  IRIS_CHECK(!(requires_grad() && grad_enabled()), "copy_: in-place write to ", summary(),
             " which requires grad; do it under NoGradGuard");
  (void)broadcast_shapes(src_in.shape(), shape(), "copy_");
  IRIS_CHECK(broadcast_shapes(src_in.shape(), shape(), "copy_") == shape(), "copy_: source ", src_in.summary(),
             " does not broadcast to destination ", summary());
  Tensor src = src_in.detach();
  if (src.device() == device()) {
    IRIS_DISPATCH_DEVICE(device(), copy, src, *this);
  } else {
#ifdef IRIS_WITH_CUDA
    // Across devices: materialise the source contiguously, in our dtype and shape, on its own device; move
    // the bytes; then copy into this (possibly strided) view on our device.
    Tensor staged = empty(shape(), dtype(), src.device());
    IRIS_DISPATCH_DEVICE(src.device(), copy, src, staged);
    Tensor landed = is_contiguous() ? *this : empty(shape(), dtype(), device());
    cuda::memcpy_between(landed.data_ptr(), device(), staged.data_ptr(), staged.device(), staged.nbytes());
    if (!landed.same(*this)) IRIS_DISPATCH_DEVICE(device(), copy, landed, *this);
#else
    IRIS_THROW("copy_: cannot copy between ", src.device().str(), " and ", device().str(),
               ": this build of Iris has no CUDA support");
#endif
  }
  storage()->bump_version();
  return *this;
}

}  // namespace iris
