// Measuring work on a device: elapsed time of queued work (CUDA events on the compute stream for a GPU, the
// steady clock for the CPU) and memory in use. For benchmark programs and progress lines, not for ops.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include "framework/core/device.h"

namespace iris {

// Waits until all work queued on `device` has finished (a no-op for the CPU).
void synchronize(Device device);

class DeviceTimer {
 public:
  explicit DeviceTimer(Device device);
  ~DeviceTimer();
  DeviceTimer(const DeviceTimer&) = delete;
  DeviceTimer& operator=(const DeviceTimer&) = delete;
  void start();        // marks the start in the device's queue
  double stop_ms();    // marks the end, waits for it, and returns the milliseconds between the marks

 private:
  Device device_;
  std::chrono::steady_clock::time_point t0_;
  void* events_[2] = {nullptr, nullptr};  // cudaEvent_t on a GPU
};

// On the CPU, host_storage_bytes() (below) gives the exact bytes tensors hold, with a resettable peak.
struct MemoryUsage {
  size_t current = 0;  // bytes in use (GPU: live allocations; CPU: resident set)
  size_t peak = 0;     // the most since the last reset (GPU) or since the process started (CPU: peak RSS)
};
MemoryUsage memory_usage(Device device);
void reset_peak_memory(Device device);  // GPU only; the CPU's peak RSS cannot be reset

// Bytes of host (CPU, including pinned) Storage alive now and the most alive at once since the last reset
// (counted in storage.cpp): an exact, allocator-independent measure of what tensors hold, unlike the resident
// set (which also counts pages the C library keeps after a free, and the rest of the process). Costs two
// relaxed atomic operations per allocation.
struct HostStorageBytes {
  size_t live = 0;
  size_t peak = 0;
};
HostStorageBytes host_storage_bytes();
void reset_host_storage_peak();  // starts a new peak from the bytes alive now

}  // namespace iris
