// Tensor: a handle (shared, like a smart pointer) to shape, strides and offset over a refcounted Storage,
// with a dtype, a device and the autograd metadata of the value.
//
// Copying a Tensor copies the handle, never the data. Views (reshape, permute, slice, expand, ...) share the
// storage; contiguous()/clone() copy. Every op checks its arguments and throws iris::Error naming the op and
// the shapes on misuse.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/device.h"
#include "framework/core/dtype.h"
#include "framework/core/error.h"
#include "framework/core/shape.h"
#include "framework/core/storage.h"

namespace iris {

namespace autograd {
class Node;
}
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories --------------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu(),
                      bool pinned = false);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());  // 0-d
  // [0, 1, ..., n-1] scaled: start + i * step for i < n.
  static Tensor arange(int64_t n, DType dtype = DType::f32, Device device = Device::cpu(), double start = 0,
                       double step = 1);
  // Copies host values (converted to `dtype`, default the C++ type's) into a new tensor.
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype, Device device);
  static Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

  // ---- metadata ---------------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return shape_numel(shape()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const;
  void* data_ptr() const;  // address of element 0 of this view (device memory for CUDA tensors)
  template <class T>
  T* data() const;  // typed data_ptr(); checks the dtype
  std::string str() const;      // values and metadata, abbreviated for large tensors
  std::string summary() const;  // "f32[2, 3] cpu"

  // ---- views (share storage; differentiable) ----------------------------------------------------------
  Tensor view(const Shape& shape) const;     // requires compatible strides; -1 infers one axis
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor slice(int64_t axis, int64_t start, int64_t end, int64_t step = 1) const;  // Python-style bounds
  Tensor select(int64_t axis, int64_t index) const;                                 // removes the axis
  Tensor expand(const Shape& shape) const;                                          // -1 keeps an axis
  Tensor squeeze(int64_t axis) const;
  Tensor unsqueeze(int64_t axis) const;
  Tensor flatten(int64_t start_axis = 0, int64_t end_axis = -1) const;

  // ---- copies and conversions (differentiable) --------------------------------------------------------
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;    // itself when already of that dtype
  Tensor to(Device device) const;  // itself when already there
  Tensor to(Device device, DType dtype) const { return to(device).to(dtype); }
  Tensor cpu() const { return to(Device::cpu()); }
  double item() const;  // the value of a one-element tensor, as a double
  template <class T>
  std::vector<T> to_vector() const;  // all values in row-major order, converted to T, on the host

  // ---- in-place (not differentiable; bump the storage version) ----------------------------------------
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);  // src broadcast to this shape, converted to this dtype, any device

  // ---- autograd ---------------------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);  // leaves only
  bool is_leaf() const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  Tensor grad() const;  // undefined until a backward pass reached this leaf
  void set_grad(const Tensor& g);
  // Runs the backward pass from this tensor. `seed` defaults to 1 for a one-element tensor.
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // same storage, no autograd history
  // Called (during backward) once this leaf's gradient for the pass is final: data parallelism hooks in here.
  void register_grad_ready_hook(std::function<void(const Tensor&)> hook) const;

  // Replaces storage, shape, strides, dtype and device with those of `other`, keeping this tensor's identity
  // (its autograd flags and hooks): how Module::to(device) moves parameters that others hold handles to.
  void set_data(const Tensor& other);

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;

  // Autograd: a leaf has requires_grad and no grad_fn; a result of differentiable ops has a grad_fn.
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;
  Tensor grad;
  std::vector<std::function<void(const Tensor&)>> grad_ready_hooks;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Makes a tensor over existing storage; the building block of every view.
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset);

// Throws naming `op` unless `t` is defined.
void check_defined(const Tensor& t, const char* op, const char* what = "input");
// Throws naming `op` unless all tensors live on the same device.
void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors);
// Throws naming `op` unless `t` has a floating dtype.
void check_floating(const Tensor& t, const char* op);

}  // namespace iris
