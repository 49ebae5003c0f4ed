// What the core needs from a device backend, declared here so that the core depends on no backend: device
// memory for Storage, synchronisation, timing events and memory statistics for profiling.h, and CUDA graphs.
//
// The table is found at link time, not registered at start-up: in a CUDA build framework/cuda/runtime.cpp
// defines cuda_backend() (returning its table), in a build without CUDA device_backend.cpp defines it
// (returning nullptr) -- the same split as cuda_available(). So no static-initialisation order or a linker
// dropping an unreferenced object file can leave a CUDA build without its backend. Without a backend, using
// a CUDA device throws an iris::Error saying that this build of Iris has no CUDA support.
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
  // CUDA graphs (framework/core/replay_graph.h): capture the work queued on the device's compute stream by
  // this thread between begin and end (nothing runs meanwhile), instantiate it (end returns the executable
  // graph, or throws an iris::Error saying why the capture failed, leaving the stream out of capture), launch
  // it on the compute stream, destroy it (never throws).
  void (*graph_capture_begin)(int device);
  void* (*graph_capture_end)(int device);
  void (*graph_launch)(void* graph, int device);
  void (*graph_destroy)(void* graph) noexcept;
};

// The CUDA backend, or nullptr in a build without CUDA.
const DeviceBackend* cuda_backend();
// The CUDA backend; throws iris::Error naming `what` when there is none.
const DeviceBackend& require_cuda_backend(const char* what);

}  // namespace iris
