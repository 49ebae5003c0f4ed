// CUDA pooling and bilinear resizing (framework/kernels/pool.h): one thread per output element (grid-stride
// loop) running pool_math.h's one-element functions, the code the CPU kernels run: bit-identical results.
// Simple rather than fast: these ops serve FID's Inception network, whose time goes to its convolutions.
#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/pool.h"
#include "framework/kernels/pool_math.h"

namespace iris::cuda {

namespace {

template <class T>
__global__ void max_pool_kernel(const T* x, T* out, int64_t* argmax, PoolParams p, int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    pool_math::max_pool_one(x, out, argmax, p, e);
}
template <class T>
__global__ void max_pool_backward_kernel(const T* g, const int64_t* argmax, T* dx, PoolParams p,
                                         int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    pool_math::max_pool_backward_one(g, argmax, dx, p, e);
}
template <class T>
__global__ void avg_pool_kernel(const T* x, T* out, PoolParams p, int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    pool_math::avg_pool_one(x, out, p, e);
}
template <class T>
__global__ void avg_pool_backward_kernel(const T* g, T* dx, PoolParams p, int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    pool_math::avg_pool_backward_one(g, dx, p, e);
}
template <class T>
__global__ void resize_kernel(const T* x, T* out, ResizeParams p, int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    pool_math::resize_one(x, out, p, e);
}
template <class T>
__global__ void resize_backward_kernel(const T* g, T* dx, ResizeParams p, int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    pool_math::resize_backward_one(g, dx, p, e);
}

// Runs launch(T{}, blocks) for the floating dtype of `out` on its device, then checks the launch.
template <class L>
void launch(const Tensor& out, const char* what, L&& l) {
  const int64_t total = out.numel();
  if (total == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  dispatch_floating(out.dtype(), what, [&](auto tag) {
    l(tag, grid_for(total, ctx), total);
    IRIS_CUDA_CHECK_LAUNCH(what);
  });
}

}  // namespace

void max_pool2d(const Tensor& x, Tensor& out, Tensor& argmax, const PoolParams& p, Stream stream) {
  launch(out, "cuda::max_pool2d", [&](auto tag, unsigned blocks, int64_t total) {
    using T = decltype(tag);
    max_pool_kernel<T><<<blocks, kThreads, 0, stream>>>(
        x.data<T>(), out.data<T>(), argmax.defined() ? argmax.data<int64_t>() : nullptr, p, total);
  });
}

void max_pool2d_backward(const Tensor& gout, const Tensor& argmax, Tensor& dx, const PoolParams& p,
                         Stream stream) {
  launch(dx, "cuda::max_pool2d_backward", [&](auto tag, unsigned blocks, int64_t total) {
    using T = decltype(tag);
    max_pool_backward_kernel<T>
        <<<blocks, kThreads, 0, stream>>>(gout.data<T>(), argmax.data<int64_t>(), dx.data<T>(), p, total);
  });
}

void avg_pool2d(const Tensor& x, Tensor& out, const PoolParams& p, Stream stream) {
  launch(out, "cuda::avg_pool2d", [&](auto tag, unsigned blocks, int64_t total) {
    using T = decltype(tag);
    avg_pool_kernel<T><<<blocks, kThreads, 0, stream>>>(x.data<T>(), out.data<T>(), p, total);
  });
}

void avg_pool2d_backward(const Tensor& gout, Tensor& dx, const PoolParams& p, Stream stream) {
  launch(dx, "cuda::avg_pool2d_backward", [&](auto tag, unsigned blocks, int64_t total) {
    using T = decltype(tag);
    avg_pool_backward_kernel<T><<<blocks, kThreads, 0, stream>>>(gout.data<T>(), dx.data<T>(), p, total);
  });
}

void resize_bilinear(const Tensor& x, Tensor& out, const ResizeParams& p, Stream stream) {
  launch(out, "cuda::resize_bilinear", [&](auto tag, unsigned blocks, int64_t total) {
    using T = decltype(tag);
    resize_kernel<T><<<blocks, kThreads, 0, stream>>>(x.data<T>(), out.data<T>(), p, total);
  });
}

void resize_bilinear_backward(const Tensor& gout, Tensor& dx, const ResizeParams& p, Stream stream) {
  launch(dx, "cuda::resize_bilinear_backward", [&](auto tag, unsigned blocks, int64_t total) {
    using T = decltype(tag);
    resize_backward_kernel<T><<<blocks, kThreads, 0, stream>>>(gout.data<T>(), dx.data<T>(), p, total);
  });
}

}  // namespace iris::cuda
