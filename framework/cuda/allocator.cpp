#include "framework/cuda/allocator.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <vector>

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

// ---- pinned host memory -----------------------------------------------------------------------------------
// cudaHostAlloc and cudaFreeHost are slow and cudaFreeHost synchronises the device, so freed blocks are kept
// and reused. A block may be reused only once the copies that used it have run: when a block is freed, an
// event is recorded on every stream that could still have a copy of it queued (each device's compute and
// comm streams); a later allocation takes a cached block only when all its events have fired.

namespace {

struct PinnedBlock {
  void* ptr = nullptr;
  size_t bytes = 0;
  std::vector<cudaEvent_t> pending;  // fired when the work queued before the free has run
};

std::mutex g_pinned_mutex;
std::unordered_map<void*, size_t> g_pinned_sizes;  // every block cudaHostAlloc gave us and we still hold
std::vector<PinnedBlock> g_pinned_cache;           // freed blocks, oldest first
size_t g_pinned_cached_bytes = 0;
uint64_t g_pinned_allocs = 0, g_pinned_reuses = 0;
constexpr size_t kPinnedCacheLimit = size_t{4} << 30;  // past this, the oldest cached blocks are released

// True when every event of `b` has fired (destroying those that have).
bool pinned_block_idle(PinnedBlock& b) {
  while (!b.pending.empty()) {
    const cudaError_t q = cudaEventQuery(b.pending.back());
    if (q == cudaErrorNotReady) return false;
    if (q != cudaSuccess) (void)cudaGetLastError();  // a failed stream will not touch the block again
    cudaEventDestroy(b.pending.back());
    b.pending.pop_back();
  }
  return true;
}

void pinned_release(PinnedBlock& b) noexcept {
  for (cudaEvent_t e : b.pending) {
    if (cudaEventSynchronize(e) != cudaSuccess) (void)cudaGetLastError();
    cudaEventDestroy(e);
  }
  b.pending.clear();
  const cudaError_t err = cudaFreeHost(b.ptr);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (err != cudaErrorCudartUnloading)
      std::fprintf(stderr, "iris: cudaFreeHost(%p) failed: %s\n", b.ptr, cudaGetErrorString(err));
  }
}

// Events recorded now on every stream that may have a copy of a host block queued. False when one cannot be
// recorded (then the caller synchronises instead).
bool record_pending(std::vector<cudaEvent_t>& events) noexcept {
  for (int d = 0; d < kMaxDevices; ++d) {
    if (!g_pools[d].load(std::memory_order_acquire)) continue;  // a device with no pool has no work queued
    try {
      Context& ctx = context(d);
      for (cudaStream_t stream : {ctx.compute, ctx.comm}) {
        cudaEvent_t e = nullptr;
        if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) {
          (void)cudaGetLastError();
          return false;
        }
        events.push_back(e);
        if (cudaEventRecord(e, stream) != cudaSuccess) {
          (void)cudaGetLastError();
          return false;
        }
      }
    } catch (...) {
      return false;
    }
  }
  return true;
}

}  // namespace

void* pinned_alloc(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(g_pinned_mutex);
    // The smallest idle cached block that fits, and is at most twice the request (a small request must not
    // hold on to a large block).
    size_t best = g_pinned_cache.size();
    for (size_t i = 0; i < g_pinned_cache.size(); ++i) {
      PinnedBlock& b = g_pinned_cache[i];
      if (b.bytes < bytes || b.bytes > 2 * std::max<size_t>(bytes, 1)) continue;
      if (best < g_pinned_cache.size() && g_pinned_cache[best].bytes <= b.bytes) continue;
      if (pinned_block_idle(b)) best = i;
    }
    if (best < g_pinned_cache.size()) {
      void* ptr = g_pinned_cache[best].ptr;
      g_pinned_cached_bytes -= g_pinned_cache[best].bytes;
      g_pinned_cache.erase(g_pinned_cache.begin() + static_cast<std::ptrdiff_t>(best));
      ++g_pinned_reuses;
      return ptr;
    }
  }
  void* ptr = nullptr;
  const cudaError_t err = cudaHostAlloc(&ptr, std::max<size_t>(bytes, 1), cudaHostAllocDefault);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    IRIS_THROW("could not allocate ", bytes, " bytes (", mib(double(bytes)),
               ") of pinned host memory: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")");
  }
  std::lock_guard<std::mutex> lock(g_pinned_mutex);
  g_pinned_sizes[ptr] = std::max<size_t>(bytes, 1);
  ++g_pinned_allocs;
  return ptr;
}

void pinned_free(void* ptr) noexcept {
  if (!ptr) return;
  PinnedBlock b;
  b.ptr = ptr;
  {
    std::lock_guard<std::mutex> lock(g_pinned_mutex);
    const auto it = g_pinned_sizes.find(ptr);
    if (it == g_pinned_sizes.end()) {
      std::fprintf(stderr, "iris: pinned_free(%p): not a block of pinned_alloc\n", ptr);
      return;
    }
    b.bytes = it->second;
  }
  if (!record_pending(b.pending)) {
    // Cannot tell when the copies finish (the runtime is shutting down, or a stream failed): free it now,
    // after waiting for everything queued.
    std::lock_guard<std::mutex> lock(g_pinned_mutex);
    g_pinned_sizes.erase(ptr);
    pinned_release(b);
    return;
  }
  std::lock_guard<std::mutex> lock(g_pinned_mutex);
  g_pinned_cache.push_back(std::move(b));
  g_pinned_cached_bytes += g_pinned_cache.back().bytes;
  while (g_pinned_cached_bytes > kPinnedCacheLimit && g_pinned_cache.size() > 1) {
    PinnedBlock old = std::move(g_pinned_cache.front());
    g_pinned_cache.erase(g_pinned_cache.begin());
    g_pinned_cached_bytes -= old.bytes;
    g_pinned_sizes.erase(old.ptr);
    pinned_release(old);
  }
}

PinnedStats pinned_stats() {
  std::lock_guard<std::mutex> lock(g_pinned_mutex);
  return {g_pinned_cached_bytes, g_pinned_cache.size(), g_pinned_allocs, g_pinned_reuses};
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
