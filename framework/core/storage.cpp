#include "framework/core/storage.h"

#include "framework/core/device_backend.h"
#include "framework/core/error.h"
#include "framework/core/host_allocator.h"
#include "framework/core/profiling.h"

namespace iris {

namespace {
std::atomic<size_t> g_host_live{0};
std::atomic<size_t> g_host_peak{0};

void count_host_alloc(size_t nbytes) {
  const size_t now = g_host_live.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
  size_t peak = g_host_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_host_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
}  // namespace

HostStorageBytes host_storage_bytes() {
  return {g_host_live.load(std::memory_order_relaxed), g_host_peak.load(std::memory_order_relaxed)};
}

void reset_host_storage_peak() {
  g_host_peak.store(g_host_live.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

Storage::Storage(size_t nbytes, Device device, bool pinned) : nbytes_(nbytes), device_(device) {
  // Device memory and pinned host memory come from the CUDA backend, through the table it registers
  // (core/device_backend.h): the core itself includes nothing of CUDA.
  const DeviceBackend* cuda = cuda_backend();
  if (device.is_cuda()) {
    IRIS_CHECK(cuda != nullptr, "cannot allocate on ", device.str(),
               ": this build of Iris has no CUDA support (IRIS_CUDA=OFF)");
    data_ = nbytes ? cuda->device_alloc(nbytes, device.index) : nullptr;
    return;
  }
  if (pinned && nbytes && cuda != nullptr && cuda_available()) {
    data_ = cuda->pinned_alloc(nbytes);
    pinned_ = true;
    count_host_alloc(nbytes_);
    return;
  }
  if (nbytes == 0) return;
  data_ = host_alloc(nbytes);  // 64-byte aligned, from the block cache (core/host_allocator.h)
  count_host_alloc(nbytes_);
}

Storage::~Storage() {
  if (!data_) return;
  if (!device_.is_cuda()) g_host_live.fetch_sub(nbytes_, std::memory_order_relaxed);
  // A CUDA or pinned block was allocated through the registered backend, so it is there to free it.
  if (device_.is_cuda()) {
    cuda_backend()->device_free(data_, nbytes_, device_.index);
    return;
  }
  if (pinned_) {
    cuda_backend()->pinned_free(data_);
    return;
  }
  host_free(data_, nbytes_);
}

}  // namespace iris
