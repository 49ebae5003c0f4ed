// cat / stack / split / chunk. cat writes each input into its slice of the output with copy_ (so it works
// on every device with no kernel of its own) and its backward hands each input its slice of the gradient.
// split and chunk are slices, whose backward the view machinery already provides.
#include "framework/ops/join.h"

#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"

namespace iris {

using autograd::NeedGrad;
using Grads = std::vector<Tensor>;

Tensor cat(const std::vector<Tensor>& tensors, int64_t axis_in) {
  IRIS_CHECK(!tensors.empty(), "cat: needs at least one tensor");
  for (size_t i = 0; i < tensors.size(); ++i)
    IRIS_CHECK(tensors[i].defined(), "cat: input ", i, " is an undefined tensor");
  const Tensor& first = tensors[0];
  IRIS_CHECK(first.dim() >= 1, "cat: cannot concatenate 0-d tensors (input 0 is ", first.summary(), ")");
  const int64_t axis = normalize_axis(axis_in, first.dim(), "cat");
  Shape out_shape = first.shape();
  out_shape[axis] = 0;
  std::vector<int64_t> offsets;  // start of each input along the axis
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    IRIS_CHECK(t.dtype() == first.dtype(), "cat: input ", i, " is ", t.summary(), " but input 0 is ",
               first.summary(), "; convert them to one dtype first");
    IRIS_CHECK(t.device() == first.device(), "cat: input ", i, " is on ", t.device().str(),
               " but input 0 on ", first.device().str());
    bool match = t.dim() == first.dim();
    for (int64_t d = 0; match && d < t.dim(); ++d) match = d == axis || t.shape()[d] == first.shape()[d];
    IRIS_CHECK(match, "cat: input ", i, " has shape ", shape_str(t.shape()), " but input 0 has ",
               shape_str(first.shape()), "; they must agree on every axis except ", axis);
    offsets.push_back(out_shape[axis]);
    out_shape[axis] += t.shape()[axis];
  }
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  {
    NoGradGuard ng;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const int64_t n = tensors[i].shape()[axis];
      if (n > 0) out.slice(axis, offsets[i], offsets[i] + n).copy_(tensors[i]);
    }
  }
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) sizes.push_back(t.shape()[axis]);
  autograd::record("cat", out, tensors, [axis, offsets, sizes](const Tensor& g, NeedGrad need) -> Grads {
    Grads grads(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i)
      if (need[i]) grads[i] = g.slice(axis, offsets[i], offsets[i] + sizes[i]);
    return grads;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t axis_in) {
  IRIS_CHECK(!tensors.empty(), "stack: needs at least one tensor");
  for (size_t i = 0; i < tensors.size(); ++i) {
    IRIS_CHECK(tensors[i].defined(), "stack: input ", i, " is an undefined tensor");
    IRIS_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: input ", i, " has shape ",
               shape_str(tensors[i].shape()), " but input 0 has ", shape_str(tensors[0].shape()),
               "; all must be equal");
  }
  const int64_t axis = normalize_axis(axis_in, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> expanded;
  expanded.reserve(tensors.size());
  for (const Tensor& t : tensors) expanded.push_back(t.unsqueeze(axis));
  return cat(expanded, axis);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis_in) {
  check_defined(x, "split");
  IRIS_CHECK(x.dim() >= 1, "split: cannot split the 0-d tensor ", x.summary());
  const int64_t axis = normalize_axis(axis_in, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    IRIS_CHECK(s >= 0, "split: negative piece size ", s, " for ", x.summary());
    total += s;
  }
  IRIS_CHECK(total == x.shape()[axis], "split: piece sizes add up to ", total, " but axis ", axis, " of ",
             x.summary(), " has ", x.shape()[axis]);
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.slice(axis, start, start + s));
    start += s;
  }
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t axis_in) {
  check_defined(x, "chunk");
  IRIS_CHECK(n >= 1, "chunk: number of chunks must be positive, got ", n);
  IRIS_CHECK(x.dim() >= 1, "chunk: cannot split the 0-d tensor ", x.summary());
  const int64_t axis = normalize_axis(axis_in, x.dim(), "chunk");
  const int64_t size = x.shape()[axis];
  if (size == 0) return split(x, std::vector<int64_t>(static_cast<size_t>(n), 0), axis);
  const int64_t per = (size + n - 1) / n;
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < size; start += per) sizes.push_back(std::min(per, size - start));
  return split(x, sizes, axis);
}

}  // namespace iris
