// AdamW and EMA updates on the GPU (framework/kernels/optim.h).
//
// The element update is one function shared by the per-tensor and the multi-tensor kernels, written with
// explicitly rounded operations (__fmul_rn, __fadd_rn, ...: nvcc never fuses those into an FMA) in the CPU
// kernel's order: with the scalars derived in double by the same code, all three give identical bits.
//
// Multi-tensor launches: the tensors' pointers, sizes and step scalars travel in a by-value kernel argument
// (kept under the classic 4 KiB parameter limit, read through __grid_constant__ without a local copy), so a
// step costs no host-to-device copy and no synchronisation. Each tensor is cut into kChunk-element chunks;
// block b finds its tensor by binary search over the tensors' first block numbers, then its threads stride
// through the chunk (coalesced 4- or 8-byte accesses; the update is memory-bound either way).
#include <cmath>

#include "framework/cuda/loops.cuh"
#include "framework/kernels/optim.h"

namespace iris::cuda {

namespace {

// Correctly rounded single operations, never contracted.
__device__ __forceinline__ float mul_rn(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ double mul_rn(double a, double b) {
  return __dmul_rn(a, b);
}
__device__ __forceinline__ float add_rn(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ double add_rn(double a, double b) {
  return __dadd_rn(a, b);
}
__device__ __forceinline__ float sub_rn(float a, float b) {
  return __fsub_rn(a, b);
}
__device__ __forceinline__ double sub_rn(double a, double b) {
  return __dsub_rn(a, b);
}
__device__ __forceinline__ float div_rn(float a, float b) {
  return __fdiv_rn(a, b);
}
__device__ __forceinline__ double div_rn(double a, double b) {
  return __ddiv_rn(a, b);
}
__device__ __forceinline__ float sqrt_rn(float a) {
  return __fsqrt_rn(a);
}
__device__ __forceinline__ double sqrt_rn(double a) {
  return __dsqrt_rn(a);
}

template <class T>
struct AdamWScalars {
  T decay, b1, one_minus_b1, b2, one_minus_b2, step_size, sqrt_bc2, eps;
  bool decays;
};

// The scalars of cpu::adamw_update, derived the same way (in double, then rounded to T).
template <class T>
AdamWScalars<T> scalars(const AdamWStep& st) {
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

// One element, as cpu::adamw_update writes it:
//   m = b1 m + (1 - b1) g;  v = b2 v + ((1 - b2) g) g;  p = p * decay (if decays);
//   p = p - (step_size m) / (sqrt(v) / sqrt_bc2 + eps)
template <class T>
__device__ __forceinline__ void adamw_element(T* p, const T* g, T* m, T* v, int64_t i,
                                              const AdamWScalars<T>& s) {
  const T gi = g[i];
  const T mi = add_rn(mul_rn(s.b1, m[i]), mul_rn(s.one_minus_b1, gi));
  const T vi = add_rn(mul_rn(s.b2, v[i]), mul_rn(mul_rn(s.one_minus_b2, gi), gi));
  m[i] = mi;
  v[i] = vi;
  const T pi = s.decays ? mul_rn(p[i], s.decay) : p[i];
  p[i] = sub_rn(pi, div_rn(mul_rn(s.step_size, mi), add_rn(div_rn(sqrt_rn(vi), s.sqrt_bc2), s.eps)));
}

template <class T>
__global__ void adamw_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                             int64_t n, AdamWScalars<T> s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    adamw_element(p, g, m, v, i, s);
}

// ---- multi-tensor -----------------------------------------------------------------------------------------

constexpr int64_t kChunk = 16384;  // elements per block
constexpr int kMaxAdamTensors = 64, kMaxScalarSets = 8, kMaxEmaTensors = 128;

// Which block of a launch belongs to which tensor: the largest t < count with first_block[t] <= block.
__device__ __forceinline__ int owner_of(const int32_t* first_block, int count, int32_t block) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (first_block[mid] <= block)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

template <class T>
struct AdamWBatch {
  T* p[kMaxAdamTensors];
  const T* g[kMaxAdamTensors];
  T* m[kMaxAdamTensors];
  T* v[kMaxAdamTensors];
  int64_t n[kMaxAdamTensors];
  int32_t first_block[kMaxAdamTensors + 1];  // tensor t owns blocks [first_block[t], first_block[t + 1])
  uint8_t set[kMaxAdamTensors];              // index of the tensor's scalars in `sets`
  AdamWScalars<T> sets[kMaxScalarSets];
  int count;
};
static_assert(sizeof(AdamWBatch<double>) <= 4000, "kernel arguments must stay under 4 KiB");

template <class T>
__global__ void __launch_bounds__(kThreads) adamw_multi_kernel(const __grid_constant__ AdamWBatch<T> b) {
  const auto block = static_cast<int32_t>(blockIdx.x);
  const int t = owner_of(b.first_block, b.count, block);
  const int64_t start = static_cast<int64_t>(block - b.first_block[t]) * kChunk;
  const int64_t end = min(b.n[t], start + kChunk);
  const AdamWScalars<T> s = b.sets[b.set[t]];
  T* p = b.p[t];
  const T* g = b.g[t];
  T* m = b.m[t];
  T* v = b.v[t];
  for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) adamw_element(p, g, m, v, i, s);
}

template <class T>
struct EmaBatch {
  T* shadow[kMaxEmaTensors];
  const T* param[kMaxEmaTensors];
  int64_t n[kMaxEmaTensors];
  int32_t first_block[kMaxEmaTensors + 1];
  T decay, one_minus_decay;
  int count;
};
static_assert(sizeof(EmaBatch<double>) <= 4000, "kernel arguments must stay under 4 KiB");

template <class T>
__global__ void __launch_bounds__(kThreads) ema_multi_kernel(const __grid_constant__ EmaBatch<T> b) {
  const auto block = static_cast<int32_t>(blockIdx.x);
  const int t = owner_of(b.first_block, b.count, block);
  const int64_t start = static_cast<int64_t>(block - b.first_block[t]) * kChunk;
  const int64_t end = min(b.n[t], start + kChunk);
  T* s = b.shadow[t];
  const T* p = b.param[t];
  for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
    s[i] = add_rn(mul_rn(s[i], b.decay), mul_rn(p[i], b.one_minus_decay));
}

bool same_step(const AdamWStep& a, const AdamWStep& b) {
  return a.lr == b.lr && a.beta1 == b.beta1 && a.beta2 == b.beta2 && a.eps == b.eps &&
         a.weight_decay == b.weight_decay && a.bias_correction1 == b.bias_correction1 &&
         a.bias_correction2 == b.bias_correction2;
}

int32_t blocks_for(int64_t n) {
  const int64_t b = (n + kChunk - 1) / kChunk;
  IRIS_CHECK(b < (int64_t{1} << 30), "multi-tensor update: a tensor of ", n, " elements is too large");
  return static_cast<int32_t>(b);
}

// Launches the items of dtype T in batches of at most kMaxAdamTensors tensors and kMaxScalarSets scalar sets.
template <class T>
void adamw_batches(const std::vector<AdamWTensor>& items, Stream stream) {
  AdamWBatch<T> b{};
  std::vector<AdamWStep> steps;  // the steps behind b.sets
  int32_t blocks = 0;
  auto flush = [&] {
    if (b.count == 0) return;
    b.first_block[b.count] = blocks;
    adamw_multi_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(b);
    IRIS_CUDA_CHECK_LAUNCH("cuda::adamw_update_multi");
    b = AdamWBatch<T>{};
    steps.clear();
    blocks = 0;
  };
  for (const AdamWTensor& it : items) {
    if (it.param.dtype() != dtype_of<T>::value) continue;
    const int64_t n = it.param.numel();
    if (n == 0) continue;
    const int32_t nb = blocks_for(n);
    if (b.count == kMaxAdamTensors || blocks > INT32_MAX - nb) flush();
    int set = -1;
    for (size_t k = 0; k < steps.size(); ++k)
      if (same_step(steps[k], it.step)) set = static_cast<int>(k);
    if (set < 0) {
      if (static_cast<int>(steps.size()) == kMaxScalarSets) flush();
      set = static_cast<int>(steps.size());
      steps.push_back(it.step);
      b.sets[set] = scalars<T>(it.step);
    }
    const int c = b.count++;
    b.p[c] = it.param.data<T>();
    b.g[c] = it.grad.data<T>();
    b.m[c] = it.m.data<T>();
    b.v[c] = it.v.data<T>();
    b.n[c] = n;
    b.first_block[c] = blocks;
    b.set[c] = static_cast<uint8_t>(set);
    blocks += nb;
  }
  flush();
}

template <class T>
void ema_batches(const std::vector<Tensor>& shadows, const std::vector<Tensor>& params, double decay,
                 Stream stream) {
  EmaBatch<T> b{};
  int32_t blocks = 0;
  auto flush = [&] {
    if (b.count == 0) return;
    b.first_block[b.count] = blocks;
    b.decay = static_cast<T>(decay);
    b.one_minus_decay = static_cast<T>(1.0 - decay);
    ema_multi_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(b);
    IRIS_CUDA_CHECK_LAUNCH("cuda::ema_update_multi");
    b = EmaBatch<T>{};
    blocks = 0;
  };
  for (size_t i = 0; i < shadows.size(); ++i) {
    if (shadows[i].dtype() != dtype_of<T>::value) continue;
    const int64_t n = shadows[i].numel();
    if (n == 0) continue;
    const int32_t nb = blocks_for(n);
    if (b.count == kMaxEmaTensors || blocks > INT32_MAX - nb) flush();
    const int c = b.count++;
    b.shadow[c] = shadows[i].data<T>();
    b.param[c] = params[i].data<T>();
    b.n[c] = n;
    b.first_block[c] = blocks;
    blocks += nb;
  }
  flush();
}

void check_multi(const Tensor& t, const Tensor& like, int device, const char* op, const char* what,
                 size_t i) {
  IRIS_CHECK(t.defined() && t.device().is_cuda() && t.device().index == device && t.is_contiguous() &&
                 t.dtype() == like.dtype() && t.numel() == like.numel() &&
                 (like.dtype() == DType::f32 || like.dtype() == DType::f64),
             op, ": item ", i, ": ", what, " ", t.defined() ? t.summary() : std::string("undefined"),
             " must be a contiguous f32 or f64 tensor on cuda:", device, " matching ", like.summary());
}

}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& step,
                  Stream stream) {
  const int64_t n = param.numel();
  if (n == 0) return;
  Context& ctx = context(param.device().index);
  DeviceGuard guard(ctx.device);
  if (param.dtype() == DType::f32) {
    adamw_kernel<float><<<grid_for(n, ctx), kThreads, 0, stream>>>(
        param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), n, scalars<float>(step));
  } else if (param.dtype() == DType::f64) {
    adamw_kernel<double><<<grid_for(n, ctx), kThreads, 0, stream>>>(
        param.data<double>(), grad.data<double>(), m.data<double>(), v.data<double>(), n,
        scalars<double>(step));
  } else {
    IRIS_THROW("adamw_update: expected f32 or f64 tensors, got ", param.summary());
  }
  IRIS_CUDA_CHECK_LAUNCH("cuda::adamw_update");
}

void adamw_update_multi(const std::vector<AdamWTensor>& items, Stream stream) {
  if (items.empty()) return;
  const int device = items[0].param.device().index;
  for (size_t i = 0; i < items.size(); ++i) {
    const AdamWTensor& it = items[i];
    check_multi(it.param, it.param, device, "adamw_update_multi", "param", i);
    check_multi(it.grad, it.param, device, "adamw_update_multi", "grad", i);
    check_multi(it.m, it.param, device, "adamw_update_multi", "m", i);
    check_multi(it.v, it.param, device, "adamw_update_multi", "v", i);
  }
  Context& ctx = context(device);
  DeviceGuard guard(ctx.device);
  adamw_batches<float>(items, stream);
  adamw_batches<double>(items, stream);
}

void ema_update_multi(const std::vector<Tensor>& shadows, const std::vector<Tensor>& params, double decay,
                      Stream stream) {
  IRIS_CHECK(shadows.size() == params.size(), "ema_update_multi: ", shadows.size(), " averages but ",
             params.size(), " parameters");
  if (shadows.empty()) return;
  const int device = shadows[0].device().index;
  for (size_t i = 0; i < shadows.size(); ++i) {
    check_multi(shadows[i], shadows[i], device, "ema_update_multi", "average", i);
    check_multi(params[i], shadows[i], device, "ema_update_multi", "parameter", i);
  }
  Context& ctx = context(device);
  DeviceGuard guard(ctx.device);
  ema_batches<float>(shadows, params, decay, stream);
  ema_batches<double>(shadows, params, decay, stream);
}

}  // namespace iris::cuda
