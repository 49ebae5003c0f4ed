#include "framework/cuda/allocator.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>

#include "framework/core/device.h"
#include "framework/cuda/check.h"
#include "framework/cuda/context.h"

namespace iris::cuda {

namespace {

struct DevicePool {
  cudaMemPool_t pool = nullptr;
  std::atomic<size_t> allocated{0};
  std::atomic<size_t> peak{0};
  std::atomic<uint64_t> allocs{0}, frees{0};
};

constexpr int kMaxDevices = 64;
std::array<std::atomic<DevicePool*>, kMaxDevices> g_pools{};
std::mutex g_pool_mutex;

DevicePool& pool_of(int device) {
  if (device >= 0 && device < kMaxDevices) {
    if (DevicePool* p = g_pools[device].load(std::memory_order_acquire)) return *p;
  }
  Context& ctx = context(device);  // validates the index
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  DevicePool* p = g_pools[device].load(std::memory_order_acquire);
  if (p) return *p;
  int supported = 0;
  IRIS_CUDA_CHECK(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, ctx.device));
  IRIS_CHECK(supported, "cuda:", device, " does not support stream-ordered memory pools (cudaMallocAsync)");
  auto* dp = new DevicePool();  // never deleted, like the contexts
  cudaMemPoolProps props = {};
  props.allocType = cudaMemAllocationTypePinned;
  props.handleTypes = cudaMemHandleTypeNone;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  IRIS_CUDA_CHECK(cudaMemPoolCreate(&dp->pool, &props));
  // Keep everything freed in the pool: returning memory to the driver at every synchronisation would make
  // the next step pay for cudaMalloc again.
  uint64_t threshold = UINT64_MAX;
  IRIS_CUDA_CHECK(cudaMemPoolSetAttribute(dp->pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  g_pools[device].store(dp, std::memory_order_release);
  return *dp;
}

uint64_t pool_attr(cudaMemPool_t pool, cudaMemPoolAttr attr) {
  uint64_t v = 0;
  IRIS_CUDA_CHECK(cudaMemPoolGetAttribute(pool, attr, &v));
  return v;
}

// "12.3 MiB" or "4.56 GiB".
std::string mib(double bytes) {
  char buf[64];
  if (bytes >= 1024.0 * 1024.0 * 1024.0)
    std::snprintf(buf, sizeof(buf), "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  else
    std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

// Sets the current device for a scope without ever throwing (for the free path).
class QuietDeviceGuard {
 public:
  explicit QuietDeviceGuard(int device) {
    if (cudaGetDevice(&prev_) != cudaSuccess || prev_ == device) {
      prev_ = -1;
      return;
    }
    (void)cudaSetDevice(device);
  }
  ~QuietDeviceGuard() {
    if (prev_ >= 0) (void)cudaSetDevice(prev_);
  }

 private:
  int prev_ = -1;
};

}  // namespace

void* device_alloc(size_t bytes, int device) {
  DevicePool& dp = pool_of(device);
  Context& ctx = context(device);
  DeviceGuard guard(device);
  void* ptr = nullptr;
  cudaError_t err = cudaMallocFromPoolAsync(&ptr, bytes, dp.pool, ctx.compute);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    // Give the cached blocks back to the driver (they may be fragmented or the wrong size) and retry once.
    release_cached_memory(device);
    ptr = nullptr;
    err = cudaMallocFromPoolAsync(&ptr, bytes, dp.pool, ctx.compute);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
      IRIS_THROW("CUDA out of memory on cuda:", device, ": asked for ", bytes, " bytes (", mib(double(bytes)),
                 "); the pool holds ", mib(double(dp.allocated.load())), " in live tensors and ",
                 mib(double(pool_attr(dp.pool, cudaMemPoolAttrReservedMemCurrent))),
                 " reserved (after releasing its cache); the device has ", mib(double(free_b)), " free of ",
                 mib(double(total_b)), " [", cudaGetErrorName(err), "]");
    }
  }
  const size_t now = dp.allocated.fetch_add(bytes) + bytes;
  size_t peak = dp.peak.load();
  while (now > peak && !dp.peak.compare_exchange_weak(peak, now)) {
  }
  dp.allocs.fetch_add(1);
  return ptr;
}

void device_free(void* ptr, size_t bytes, int device) noexcept {
  if (!ptr) return;
  DevicePool* dp =
      (device >= 0 && device < kMaxDevices) ? g_pools[device].load(std::memory_order_acquire) : nullptr;
  Context* ctx = nullptr;
  try {
    ctx = &context(device);
  } catch (...) {
  }
  if (!dp || !ctx) {
    std::fprintf(stderr, "iris: device_free of %p on cuda:%d, which has no pool (a bug in Iris)\n", ptr,
                 device);
    return;
  }
  QuietDeviceGuard guard(device);
  const cudaError_t err = cudaFreeAsync(ptr, ctx->compute);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    // At process exit the runtime may already be gone; the driver frees everything then anyway.
    if (err != cudaErrorCudartUnloading && err != cudaErrorContextIsDestroyed)
      std::fprintf(stderr, "iris: cudaFreeAsync(%p, %zu bytes) on cuda:%d failed: %s (%s)\n", ptr, bytes,
                   device, cudaGetErrorName(err), cudaGetErrorString(err));
  }
  dp->allocated.fetch_sub(bytes);
  dp->frees.fetch_add(1);
}

void* pinned_alloc(size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t err = cudaHostAlloc(&ptr, bytes, cudaHostAllocDefault);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    IRIS_THROW("could not allocate ", bytes, " bytes (", mib(double(bytes)),
               ") of pinned host memory: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")");
  }
  return ptr;
}

void pinned_free(void* ptr) noexcept {
  if (!ptr) return;
  // An asynchronous copy may still be reading or writing the block: wait for every device's streams.
  for (int d = 0; d < kMaxDevices; ++d) {
    if (!g_pools[d].load(std::memory_order_acquire)) continue;  // a device with no pool has no work queued
    try {
      Context& ctx = context(d);
      if (cudaStreamSynchronize(ctx.compute) != cudaSuccess) (void)cudaGetLastError();
      if (cudaStreamSynchronize(ctx.comm) != cudaSuccess) (void)cudaGetLastError();
    } catch (...) {
    }
  }
  const cudaError_t err = cudaFreeHost(ptr);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (err != cudaErrorCudartUnloading)
      std::fprintf(stderr, "iris: cudaFreeHost(%p) failed: %s\n", ptr, cudaGetErrorString(err));
  }
}

MemoryStats memory_stats(int device) {
  DevicePool& dp = pool_of(device);
  MemoryStats s;
  s.allocated = dp.allocated.load();
  s.peak_allocated = dp.peak.load();
  s.reserved = pool_attr(dp.pool, cudaMemPoolAttrReservedMemCurrent);
  s.peak_reserved = pool_attr(dp.pool, cudaMemPoolAttrReservedMemHigh);
  s.alloc_count = dp.allocs.load();
  s.free_count = dp.frees.load();
  return s;
}

void reset_peak_memory(int device) {
  DevicePool& dp = pool_of(device);
  dp.peak.store(dp.allocated.load());
  uint64_t zero = 0;  // the only value the high-water attributes accept: resets them to the current value
  IRIS_CUDA_CHECK(cudaMemPoolSetAttribute(dp.pool, cudaMemPoolAttrReservedMemHigh, &zero));
  IRIS_CUDA_CHECK(cudaMemPoolSetAttribute(dp.pool, cudaMemPoolAttrUsedMemHigh, &zero));
}

void release_cached_memory(int device) {
  DevicePool& dp = pool_of(device);
  Context& ctx = context(device);
  DeviceGuard guard(device);
  // Frees are stream-ordered: only after the stream has run them is the memory unused and releasable.
  IRIS_CUDA_CHECK(cudaStreamSynchronize(ctx.compute));
  IRIS_CUDA_CHECK(cudaMemPoolTrimTo(dp.pool, 0));
}

}  // namespace iris::cuda
