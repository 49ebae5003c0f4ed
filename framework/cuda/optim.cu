// Fused AdamW update on the GPU: one pass over (param, grad, m, v) per tensor, the same arithmetic as
// cpu::adamw_update (scalars derived once in double, then used in the tensors' precision).
#include <cmath>

#include "framework/cuda/loops.cuh"
#include "framework/cuda/optim.h"

namespace iris::cuda {

namespace {
template <class T>
struct AdamWScalars {
  T decay, b1, one_minus_b1, b2, one_minus_b2, step_size, sqrt_bc2, eps;
  bool decays;
};

template <class T>
__global__ void adamw_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                             int64_t n, AdamWScalars<T> s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T gi = g[i];
    const T mi = s.b1 * m[i] + s.one_minus_b1 * gi;
    const T vi = s.b2 * v[i] + s.one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T pi = s.decays ? p[i] * s.decay : p[i];
    p[i] = pi - s.step_size * mi / (sqrt(vi) / s.sqrt_bc2 + s.eps);
  }
}

template <class T>
AdamWScalars<T> scalars(const cpu::AdamWStep& st) {
  return {static_cast<T>(1.0 - st.lr * st.weight_decay),
          static_cast<T>(st.beta1),
          static_cast<T>(1.0 - st.beta1),
          static_cast<T>(st.beta2),
          static_cast<T>(1.0 - st.beta2),
          static_cast<T>(st.lr / st.bias_correction1),
          static_cast<T>(std::sqrt(st.bias_correction2)),
          static_cast<T>(st.eps),
          st.weight_decay != 0.0};
}
}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const cpu::AdamWStep& step) {
  const int64_t n = param.numel();
  if (n == 0) return;
  Context& ctx = context(param.device().index);
  DeviceGuard guard(ctx.device);
  if (param.dtype() == DType::f32) {
    adamw_kernel<float><<<grid_for(n, ctx), kThreads, 0, ctx.compute>>>(
        param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), n, scalars<float>(step));
  } else if (param.dtype() == DType::f64) {
    adamw_kernel<double><<<grid_for(n, ctx), kThreads, 0, ctx.compute>>>(
        param.data<double>(), grad.data<double>(), m.data<double>(), v.data<double>(), n, scalars<double>(step));
  } else {
    IRIS_THROW("adamw_update: expected f32 or f64 tensors, got ", param.summary());
  }
  IRIS_CUDA_CHECK_LAUNCH("cuda::adamw_update");
}

}  // namespace iris::cuda
