// What the core needs from a device backend, declared here so that the core depends on no backend: device
// memory for Storage, and synchronisation, timing events and memory statistics for profiling.h.
//
// The CUDA backend (framework/cuda/runtime.cpp) fills in a DeviceBackend at start-up (static initialisation:
// that file is always linked into a CUDA build, since it defines cuda_available() and the cross-device copy)
// and registers it here. Without a registered backend, using a CUDA device throws an iris::Error saying that
// this build of Iris has no CUDA support.
#pragma once

#include <cstddef>

namespace iris {

struct DeviceBackend {
  // Stream-ordered device memory (framework/cuda/allocator.h). free never throws.
  void* (*device_alloc)(size_t bytes, int device);
  void (*device_free)(void* ptr, size_t bytes, int device) noexcept;
  // Page-locked host memory, cached for reuse. free never throws.
  void* (*pinned_alloc)(size_t bytes);
  void (*pinned_free)(void* ptr) noexcept;
  // Waits until all work queued on the device has finished.
  void (*synchronize)(int device);
  // Bytes in live allocations now, and the most since the last reset_peak_memory.
  void (*memory_usage)(int device, size_t* current, size_t* peak);
  void (*reset_peak_memory)(int device);
  // Timing events on the device's compute stream: create (for `device`), record (in the queue of `device`),
  // elapsed milliseconds between two recorded events (waits for `stop`), destroy (never throws).
  void* (*event_create)(int device);
  void (*event_record)(void* event, int device);
  float (*event_elapsed_ms)(void* start, void* stop);
  void (*event_destroy)(void* event) noexcept;
};

// Registers the backend that serves CUDA devices (called once, by the backend itself).
void register_cuda_backend(const DeviceBackend* backend);
// The registered CUDA backend, or nullptr in a build without CUDA.
const DeviceBackend* cuda_backend();
// The registered CUDA backend; throws iris::Error naming `what` when there is none.
const DeviceBackend& require_cuda_backend(const char* what);

}  // namespace iris
