#include "framework/kernels/optim.h"

#include <cmath>

#include "framework/cpu/parallel.h"

namespace iris::cpu {

namespace {
template <class T>
void adamw_loop(T* p, const T* g, T* m, T* v, int64_t n, const AdamWStep& s) {
  // Scalars derived once in double, then used in the tensors' precision.
  const T decay = static_cast<T>(1.0 - s.lr * s.weight_decay);
  const T b1 = static_cast<T>(s.beta1), one_minus_b1 = static_cast<T>(1.0 - s.beta1);
  const T b2 = static_cast<T>(s.beta2), one_minus_b2 = static_cast<T>(1.0 - s.beta2);
  const T step_size = static_cast<T>(s.lr / s.bias_correction1);
  const T sqrt_bc2 = static_cast<T>(std::sqrt(s.bias_correction2));
  const T eps = static_cast<T>(s.eps);
  const bool decays = s.weight_decay != 0.0;
  parallel_for(0, n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const T gi = g[i];
      const T mi = b1 * m[i] + one_minus_b1 * gi;
      const T vi = b2 * v[i] + one_minus_b2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      T pi = decays ? p[i] * decay : p[i];
      p[i] = pi - step_size * mi / (std::sqrt(vi) / sqrt_bc2 + eps);
    }
  });
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

}  // namespace iris::cpu
