// Tensor: factories, metadata, autograd metadata, element access and printing.
// Views, conversions, fill_ and copy_ record differentiable ops or run kernels, so they live above the core:
// framework/ops/tensor_views.cpp; backward() is the autograd engine's (framework/autograd/engine.cpp).
#include "framework/core/tensor.h"

#include <cmath>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace iris {

namespace {
const TensorImpl& impl_of(const std::shared_ptr<TensorImpl>& p) {
  IRIS_CHECK(p != nullptr, "use of an undefined tensor (default-constructed, or a gradient not computed)");
  return *p;
}
}  // namespace

// ---- factories ------------------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device, bool pinned) {
  for (int64_t d : shape) IRIS_CHECK(d >= 0, "empty: negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device,
                                            pinned);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::arange(int64_t n, DType dtype, Device device, double start, double step) {
  IRIS_CHECK(n >= 0, "arange: negative length ", n);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i) * step;
  return from_vector(v, {n}, dtype, device);
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  return from_vector(values, shape, dtype_of<T>::value, device);
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
  IRIS_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
             " values do not fill shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(values.size() * sizeof(T), Device::cpu());
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype_of<T>::value;
  if (!values.empty()) std::memcpy(impl->storage->data(), values.data(), values.size() * sizeof(T));
  Tensor host(std::move(impl));
  return host.to(dtype).to(device);
}

#define IRIS_INSTANTIATE_FROM_VECTOR(T)                                                                 \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&, Device);                \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&, DType, Device);         \
  template std::vector<T> Tensor::to_vector<T>() const;
IRIS_INSTANTIATE_FROM_VECTOR(float)
IRIS_INSTANTIATE_FROM_VECTOR(double)
IRIS_INSTANTIATE_FROM_VECTOR(int32_t)
IRIS_INSTANTIATE_FROM_VECTOR(int64_t)
IRIS_INSTANTIATE_FROM_VECTOR(uint8_t)
IRIS_INSTANTIATE_FROM_VECTOR(bf16)

// ---- metadata -------------------------------------------------------------------------------------------

const Shape& Tensor::shape() const { return impl_of(impl_).shape; }
const Shape& Tensor::strides() const { return impl_of(impl_).strides; }
int64_t Tensor::offset() const { return impl_of(impl_).offset; }
DType Tensor::dtype() const { return impl_of(impl_).dtype; }
Device Tensor::device() const { return impl_of(impl_).storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return impl_of(impl_).storage; }

int64_t Tensor::size(int64_t axis) const { return shape()[normalize_axis(axis, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  const Shape& sh = shape();
  const Shape& st = strides();
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (sh[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= sh[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  const TensorImpl& t = impl_of(impl_);
  return static_cast<char*>(t.storage->data()) + t.offset * static_cast<int64_t>(dtype_size(t.dtype));
}

template <class T>
T* Tensor::data() const {
  IRIS_CHECK(dtype() == dtype_of<T>::value, "data<", dtype_name(dtype_of<T>::value), ">() on a tensor of dtype ",
             dtype_name(dtype()));
  return static_cast<T*>(data_ptr());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template bf16* Tensor::data<bf16>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;

std::string Tensor::summary() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

// ---- element access --------------------------------------------------------------------------------------

double Tensor::item() const {
  IRIS_CHECK(numel() == 1, "item: expected a one-element tensor, got ", summary());
  return to_vector<double>()[0];
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = detach().to(Device::cpu()).to(dtype_of<T>::value).contiguous();
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

// ---- autograd --------------------------------------------------------------------------------------------

bool Tensor::requires_grad() const { return impl_of(impl_).requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  IRIS_CHECK(!grad_fn(), "set_requires_grad: ", summary(),
             " is the result of an op (not a leaf); detach() it first to make a new leaf");
  IRIS_CHECK(!on || is_floating(dtype()), "set_requires_grad: only floating tensors can require grad, got ",
             summary());
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return !impl_of(impl_).grad_fn; }
const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return impl_of(impl_).grad_fn; }
Tensor Tensor::grad() const { return impl_of(impl_).grad; }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined())
    IRIS_CHECK(g.shape() == shape(), "set_grad: gradient ", g.summary(), " does not match ", summary());
  impl_->grad = g;
}

Tensor Tensor::detach() const {
  const TensorImpl& t = impl_of(impl_);
  return make_view(*this, t.shape, t.strides, t.offset);
}

void Tensor::register_grad_ready_hook(std::function<void(const Tensor&)> hook) const {
  IRIS_CHECK(is_leaf(), "register_grad_ready_hook: only leaves (parameters) have final gradients");
  impl_->grad_ready_hooks.push_back(std::move(hook));
}

void Tensor::set_data(const Tensor& other) {
  check_defined(*this, "set_data", "target");
  check_defined(other, "set_data", "source");
  impl_->storage = other.storage();
  impl_->shape = other.shape();
  impl_->strides = other.strides();
  impl_->offset = other.offset();
  impl_->dtype = other.dtype();
  if (impl_->grad.defined() && (impl_->grad.device() != other.device() || impl_->grad.shape() != other.shape()))
    impl_->grad = Tensor();
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// ---- checks ----------------------------------------------------------------------------------------------

void check_defined(const Tensor& t, const char* op, const char* what) {
  IRIS_CHECK(t.defined(), op, ": ", what, " is an undefined tensor");
}

void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) {
      first = t;
      continue;
    }
    IRIS_CHECK(t->device() == first->device(), op, ": tensors on different devices: ", first->summary(), " and ",
               t->summary());
  }
}

void check_floating(const Tensor& t, const char* op) {
  IRIS_CHECK(is_floating(t.dtype()), op, ": expected a floating tensor (f32, f64 or bf16), got ", t.summary());
}

// ---- printing --------------------------------------------------------------------------------------------

namespace {
void print_values(std::ostream& os, const std::vector<double>& v, const Shape& shape, size_t axis, int64_t base,
                  bool integral) {
  const int64_t n = shape[axis];
  int64_t inner = 1;
  for (size_t i = axis + 1; i < shape.size(); ++i) inner *= shape[i];
  const bool elide = n > 8;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (elide && i == 3) {
      os << (axis + 1 == shape.size() ? "..., " : "...,\n");
      i = n - 4;
      continue;
    }
    if (axis + 1 == shape.size()) {
      const double x = v[base + i];
      if (integral)
        os << static_cast<int64_t>(x);
      else
        os << std::setprecision(6) << x;
    } else {
      print_values(os, v, shape, axis + 1, base + i * inner, integral);
    }
    if (i + 1 < n) os << (axis + 1 == shape.size() ? ", " : ",\n");
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(" << summary() << (requires_grad() ? ", requires_grad" : "") << ")\n";
  const std::vector<double> v = to_vector<double>();
  if (dim() == 0)
    os << v[0];
  else if (numel() == 0)
    os << "[]";
  else
    print_values(os, v, shape(), 0, 0, !is_floating(dtype()));
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace iris
