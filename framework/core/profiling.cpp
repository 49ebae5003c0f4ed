#include "framework/core/profiling.h"

#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "framework/core/device_backend.h"
#include "framework/core/error.h"

namespace iris {

// GPU work is measured through the CUDA backend's table (core/device_backend.h); a build without CUDA has
// none, and then only the CPU can be measured.

void synchronize(Device device) {
  if (device.is_cpu()) return;
  const DeviceBackend* cuda = cuda_backend();
  IRIS_CHECK(cuda != nullptr, "synchronize: this build of Iris has no CUDA support");
  cuda->synchronize(device.index);
}

DeviceTimer::DeviceTimer(Device device) : device_(device) {
  if (device.is_cuda())
    if (const DeviceBackend* cuda = cuda_backend())
      for (auto& e : events_) e = cuda->event_create(device.index);
}

DeviceTimer::~DeviceTimer() {
  for (auto& e : events_)
    if (e) cuda_backend()->event_destroy(e);
}

void DeviceTimer::start() {
  if (events_[0]) {
    cuda_backend()->event_record(events_[0], device_.index);
    return;
  }
  t0_ = std::chrono::steady_clock::now();
}

double DeviceTimer::stop_ms() {
  if (events_[1]) {
    const DeviceBackend* cuda = cuda_backend();
    cuda->event_record(events_[1], device_.index);
    return cuda->event_elapsed_ms(events_[0], events_[1]);
  }
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
  if (const DeviceBackend* cuda = cuda_backend(); cuda && device.is_cuda()) {
    MemoryUsage u;
    cuda->memory_usage(device.index, &u.current, &u.peak);
    return u;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return {current_rss(), static_cast<size_t>(ru.ru_maxrss) * 1024};
}

void reset_peak_memory(Device device) {
  if (const DeviceBackend* cuda = cuda_backend(); cuda && device.is_cuda())
    cuda->reset_peak_memory(device.index);
}

}  // namespace iris
