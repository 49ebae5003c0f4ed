// CUDA graph capture, instantiation and launch on a device's compute stream (runtime.h).
//
// Why capture works with the rest of the CUDA backend: every kernel, copy, allocation and free of a device is
// issued on its one compute stream (context.h), so capturing that stream records a whole computation. Device
// memory comes from cudaMallocFromPoolAsync / cudaFreeAsync (allocator.h), which under capture become the
// graph's own allocation and free nodes; the caller (core/replay_graph.cpp) makes sure every allocation made
// inside a capture is also freed inside it, so an instantiated graph can be launched again and again.
// Anything that waits for the device (a copy to the host, a synchronisation) invalidates the capture: the
// end of the capture then reports it and the caller runs that work eagerly.
#include <string>

#include "framework/core/error.h"
#include "framework/cuda/check.h"
#include "framework/cuda/context.h"
#include "framework/cuda/runtime.h"

namespace iris::cuda {

void graph_capture_begin(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  IRIS_CUDA_CHECK(cudaStreamBeginCapture(ctx.compute, cudaStreamCaptureModeThreadLocal));
}

void* graph_capture_end(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(ctx.compute, &graph);
  if (ended != cudaSuccess || graph == nullptr) {
    (void)cudaGetLastError();  // clear the error an invalidated capture leaves behind
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    IRIS_THROW("CUDA graph capture on cuda:", device, " failed: ",
               ended != cudaSuccess ? cudaGetErrorString(ended) : "no graph was recorded",
               " (an operation in the captured work cannot be captured, e.g. a read back to the host)");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  (void)cudaGraphDestroy(graph);  // the executable graph keeps what it needs
  if (made != cudaSuccess) {
    (void)cudaGetLastError();
    IRIS_THROW("CUDA graph instantiation on cuda:", device, " failed: ", cudaGetErrorString(made));
  }
  return exec;
}

void graph_launch(void* graph, int device) {
  Context& ctx = context(device);
  DeviceGuard guard(device);
  IRIS_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), ctx.compute));
  debug_sync("graph launch", __FILE__, __LINE__);
}

void graph_destroy(void* graph) noexcept {
  if (graph != nullptr) (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph));  // in destructors
}

}  // namespace iris::cuda
