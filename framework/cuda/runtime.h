// CUDA runtime entry points that the core needs: copies between devices, synchronisation and graphs.
// (cuda_available() and cuda_device_count() are declared in framework/core/device.h and defined in
// runtime.cpp when Iris is built with CUDA.)
#pragma once

#include <cstddef>

#include "framework/core/device.h"

namespace iris::cuda {

// Copies `bytes` contiguous bytes between any two devices (CPU or CUDA), ordered on the CUDA side's compute
// stream(s). Returns once the data is usable: after a copy to the CPU the stream has been synchronised (the
// host may read dst); after a copy from the CPU, src may be reused at once for pageable memory (the runtime
// stages it before returning; pinned sources must stay alive until the stream runs the copy, which
// pinned_free guarantees). Device-to-device copies on one device never block the host.
void memcpy_between(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

// Waits until all work queued on the device's streams (compute and comm) has finished.
void synchronize(int device);

// CUDA graphs of the work queued on a device's compute stream (graphs.cpp; the core reaches them through
// DeviceBackend, framework/core/replay_graph.h). Capture is thread-local: other threads' CUDA calls go on
// and are not recorded. graph_capture_end instantiates the graph and returns its cudaGraphExec_t, or throws
// an iris::Error (the stream is out of capture either way, the error state cleared).
void graph_capture_begin(int device);
void* graph_capture_end(int device);
void graph_launch(void* graph, int device);
void graph_destroy(void* graph) noexcept;

}  // namespace iris::cuda
