#include "framework/cuda/runtime.h"

#include <cstring>

#include "framework/core/error.h"
#include "framework/cuda/check.h"
#include "framework/cuda/context.h"

namespace iris {

// Defined here (rather than in core/device.cpp) in CUDA builds. A machine without a driver or a device gives
// false / 0; nothing here throws.
int cuda_device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

bool cuda_available() {
  return cuda_device_count() > 0;
}

namespace cuda {

void memcpy_between(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  IRIS_ASSERT(dst != nullptr && src != nullptr);
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  if (dst_device.is_cuda() && src_device.is_cpu()) {  // host -> device
    Context& ctx = context(dst_device.index);
    DeviceGuard guard(ctx.device);
    IRIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx.compute));
    debug_sync("memcpy host->device", __FILE__, __LINE__);
    return;
  }
  if (dst_device.is_cpu() && src_device.is_cuda()) {  // device -> host: the host reads dst next
    Context& ctx = context(src_device.index);
    DeviceGuard guard(ctx.device);
    IRIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx.compute));
    IRIS_CUDA_CHECK(cudaStreamSynchronize(ctx.compute));
    return;
  }
  if (dst_device.index == src_device.index) {  // within one device: stream-ordered, no host wait
    Context& ctx = context(dst_device.index);
    DeviceGuard guard(ctx.device);
    IRIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.compute));
    debug_sync("memcpy device->device", __FILE__, __LINE__);
    return;
  }
  // Between two devices: the source must be complete before the copy (its stream), and the copy must finish
  // before the source can be freed on its own stream; rare enough to simply synchronise both sides.
  Context& sctx = context(src_device.index);
  Context& dctx = context(dst_device.index);
  {
    DeviceGuard guard(sctx.device);
    IRIS_CUDA_CHECK(cudaStreamSynchronize(sctx.compute));
  }
  DeviceGuard guard(dctx.device);
  IRIS_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dctx.device, src, sctx.device, bytes, dctx.compute));
  IRIS_CUDA_CHECK(cudaStreamSynchronize(dctx.compute));
}

void synchronize(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  IRIS_CUDA_CHECK(cudaStreamSynchronize(ctx.compute));
  IRIS_CUDA_CHECK(cudaStreamSynchronize(ctx.comm));
}

}  // namespace cuda
}  // namespace iris
