#include "framework/kernels/optim.h"

#include <algorithm>
#include <cmath>

#include "framework/cpu/parallel.h"

namespace iris::cpu {

namespace {
// Elements [lo, hi) of one tensor's update.
template <class T>
void adamw_range(T* p, const T* g, T* m, T* v, int64_t lo, int64_t hi, const AdamWStep& s) {
  // Scalars derived once in double, then used in the tensors' precision.
  const T decay = static_cast<T>(1.0 - s.lr * s.weight_decay);
  const T b1 = static_cast<T>(s.beta1), one_minus_b1 = static_cast<T>(1.0 - s.beta1);
  const T b2 = static_cast<T>(s.beta2), one_minus_b2 = static_cast<T>(1.0 - s.beta2);
  const T step_size = static_cast<T>(s.lr / s.bias_correction1);
  const T sqrt_bc2 = static_cast<T>(std::sqrt(s.bias_correction2));
  const T eps = static_cast<T>(s.eps);
  const bool decays = s.weight_decay != 0.0;
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T mi = b1 * m[i] + one_minus_b1 * gi;
    const T vi = b2 * v[i] + one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T pi = decays ? p[i] * decay : p[i];
    p[i] = pi - step_size * mi / (std::sqrt(vi) / sqrt_bc2 + eps);
  }
}

template <class T>
void adamw_loop(T* p, const T* g, T* m, T* v, int64_t n, const AdamWStep& s) {
  parallel_for(0, n, 1 << 14, [&](int64_t lo, int64_t hi) { adamw_range(p, g, m, v, lo, hi, s); });
}

void check_item(const AdamWTensor& t) {
  const DType dt = t.param.dtype();
  IRIS_CHECK((dt == DType::f32 || dt == DType::f64) && t.grad.dtype() == dt && t.m.dtype() == dt &&
                 t.v.dtype() == dt,
             "adamw_update_multi: expected f32 or f64 tensors of one dtype, got ", t.param.summary(), " and ",
             t.grad.summary());
}
}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& step) {
  const int64_t n = param.numel();
  if (param.dtype() == DType::f32) {
    adamw_loop(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), n, step);
  } else if (param.dtype() == DType::f64) {
    adamw_loop(param.data<double>(), grad.data<double>(), m.data<double>(), v.data<double>(), n, step);
  } else {
    IRIS_THROW("adamw_update: expected f32 or f64 tensors, got ", param.summary());
  }
}

void adamw_update_multi(std::vector<AdamWTensor>& items) {
  constexpr int64_t kChunk = 1 << 14;
  struct Chunk {
    size_t item;
    int64_t lo, hi;
  };
  std::vector<Chunk> chunks;
  for (size_t k = 0; k < items.size(); ++k) {
    check_item(items[k]);
    const int64_t n = items[k].param.numel();
    for (int64_t lo = 0; lo < n; lo += kChunk) chunks.push_back({k, lo, std::min(n, lo + kChunk)});
  }
  const int64_t tasks = static_cast<int64_t>(chunks.size());
  const int threads = in_parallel_region() ? 1 : static_cast<int>(std::min<int64_t>(num_threads(), tasks));
  run_parallel(tasks, threads, [&](int64_t c, int) {
    const Chunk& ch = chunks[static_cast<size_t>(c)];
    AdamWTensor& t = items[ch.item];
    if (t.param.dtype() == DType::f32)
      adamw_range(t.param.data<float>(), t.grad.data<float>(), t.m.data<float>(), t.v.data<float>(), ch.lo,
                  ch.hi, t.step);
    else
      adamw_range(t.param.data<double>(), t.grad.data<double>(), t.m.data<double>(), t.v.data<double>(),
                  ch.lo, ch.hi, t.step);
  });
}

}  // namespace iris::cpu
