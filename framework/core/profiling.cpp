#include "framework/core/profiling.h"

#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "framework/core/error.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/allocator.h"
#include "framework/cuda/check.h"
#include "framework/cuda/context.h"
#include "framework/cuda/runtime.h"
#endif

namespace iris {

void synchronize(Device device) {
#ifdef IRIS_WITH_CUDA
  if (device.is_cuda()) cuda::synchronize(device.index);
#else
  IRIS_CHECK(device.is_cpu(), "synchronize: this build of Iris has no CUDA support");
#endif
}

DeviceTimer::DeviceTimer(Device device) : device_(device) {
#ifdef IRIS_WITH_CUDA
  if (device.is_cuda()) {
    cuda::DeviceGuard guard(device.index);
    for (auto& e : events_) {
      cudaEvent_t ev;
      IRIS_CUDA_CHECK(cudaEventCreate(&ev));
      e = ev;
    }
  }
#endif
}

DeviceTimer::~DeviceTimer() {
#ifdef IRIS_WITH_CUDA
  for (auto& e : events_)
    if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
#endif
}

void DeviceTimer::start() {
#ifdef IRIS_WITH_CUDA
  if (device_.is_cuda()) {
    IRIS_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(events_[0]), cuda::compute_stream(device_.index)));
    return;
  }
#endif
  t0_ = std::chrono::steady_clock::now();
}

double DeviceTimer::stop_ms() {
#ifdef IRIS_WITH_CUDA
  if (device_.is_cuda()) {
    auto stop = static_cast<cudaEvent_t>(events_[1]);
    IRIS_CUDA_CHECK(cudaEventRecord(stop, cuda::compute_stream(device_.index)));
    IRIS_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    IRIS_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(events_[0]), stop));
    return ms;
  }
#endif
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
}

namespace {
size_t current_rss() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * 4096;
}
}  // namespace

MemoryUsage memory_usage(Device device) {
#ifdef IRIS_WITH_CUDA
  if (device.is_cuda()) {
    const cuda::MemoryStats s = cuda::memory_stats(device.index);
    return {s.allocated, s.peak_allocated};
  }
#endif
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return {current_rss(), static_cast<size_t>(ru.ru_maxrss) * 1024};
}

void reset_peak_memory(Device device) {
#ifdef IRIS_WITH_CUDA
  if (device.is_cuda()) cuda::reset_peak_memory(device.index);
#endif
  (void)device;
}

}  // namespace iris
