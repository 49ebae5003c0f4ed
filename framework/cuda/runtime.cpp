#include "framework/cuda/runtime.h"

#include <cstring>

#include "framework/core/device_backend.h"
#include "framework/core/error.h"
#include "framework/cuda/allocator.h"
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

// ---- the table the core reaches CUDA through (framework/core/device_backend.h) ---------------------------

namespace {

void memory_usage(int device, size_t* current, size_t* peak) {
  const MemoryStats s = memory_stats(device);
  *current = s.allocated;
  *peak = s.peak_allocated;
}

void* event_create(int device) {
  DeviceGuard guard(device);
  cudaEvent_t ev;
  IRIS_CUDA_CHECK(cudaEventCreate(&ev));
  return ev;
}

void event_record(void* event, int device) {
  IRIS_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), compute_stream(device)));
}

float event_elapsed_ms(void* start, void* stop) {
  IRIS_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop)));
  float ms = 0;
  IRIS_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(stop)));
  return ms;
}

void event_destroy(void* event) noexcept {
  (void)cudaEventDestroy(static_cast<cudaEvent_t>(event));  // in destructors: nothing to report to
}

constexpr DeviceBackend kBackend{device_alloc,        device_free,         pinned_alloc,
                                 pinned_free,         synchronize,         memory_usage,
                                 reset_peak_memory,   event_create,        event_record,
                                 event_elapsed_ms,    event_destroy,       graph_capture_begin,
                                 graph_capture_end,   graph_launch,        graph_destroy};

}  // namespace

}  // namespace cuda

// The core's way to CUDA (declared in framework/core/device_backend.h; a build without CUDA defines it in
// device_backend.cpp, returning nullptr).
const DeviceBackend* cuda_backend() {
  return &cuda::kBackend;
}

}  // namespace iris
