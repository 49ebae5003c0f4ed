// CPU pooling and bilinear resizing (framework/kernels/pool.h): each output element computed by
// pool_math.h's one-element functions, the same code the CUDA kernels run, split over output elements.
#include "framework/kernels/pool.h"
#include "framework/cpu/parallel.h"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/pool_math.h"

namespace iris::cpu {

namespace {

// f(e) for every element e of `out` ([N, *, *, C]), in parallel over chunks of elements.
template <class F>
void for_each_element(const Tensor& out, F&& f) {
  parallel_for(0, out.numel(), 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t e = lo; e < hi; ++e) f(e);
  });
}

}  // namespace

void max_pool2d(const Tensor& x, Tensor& out, Tensor& argmax, const PoolParams& p) {
  dispatch_floating(out.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    int64_t* ap = argmax.defined() ? argmax.data<int64_t>() : nullptr;
    for_each_element(out, [&](int64_t e) { pool_math::max_pool_one(xp, op, ap, p, e); });
  });
}

void max_pool2d_backward(const Tensor& gout, const Tensor& argmax, Tensor& dx, const PoolParams& p) {
  dispatch_floating(dx.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* gp = gout.data<T>();
    const int64_t* ap = argmax.data<int64_t>();
    T* dp = dx.data<T>();
    for_each_element(dx, [&](int64_t e) { pool_math::max_pool_backward_one(gp, ap, dp, p, e); });
  });
}

void avg_pool2d(const Tensor& x, Tensor& out, const PoolParams& p) {
  dispatch_floating(out.dtype(), "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for_each_element(out, [&](int64_t e) { pool_math::avg_pool_one(xp, op, p, e); });
  });
}

void avg_pool2d_backward(const Tensor& gout, Tensor& dx, const PoolParams& p) {
  dispatch_floating(dx.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* gp = gout.data<T>();
    T* dp = dx.data<T>();
    for_each_element(dx, [&](int64_t e) { pool_math::avg_pool_backward_one(gp, dp, p, e); });
  });
}

void resize_bilinear(const Tensor& x, Tensor& out, const ResizeParams& p) {
  dispatch_floating(out.dtype(), "resize_bilinear", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for_each_element(out, [&](int64_t e) { pool_math::resize_one(xp, op, p, e); });
  });
}

void resize_bilinear_backward(const Tensor& gout, Tensor& dx, const ResizeParams& p) {
  dispatch_floating(dx.dtype(), "resize_bilinear_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* gp = gout.data<T>();
    T* dp = dx.data<T>();
    for_each_element(dx, [&](int64_t e) { pool_math::resize_backward_one(gp, dp, p, e); });
  });
}

}  // namespace iris::cpu
