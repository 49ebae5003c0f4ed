#include "framework/cuda/context.h"

#include <array>
#include <atomic>

#include "framework/core/device.h"
#include "framework/cuda/allocator.h"
#include "framework/cuda/check.h"

namespace iris::cuda {

Context::Context(int dev) : device(dev) {
  DeviceGuard guard(dev);
  IRIS_CUDA_CHECK(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking));
  IRIS_CUDA_CHECK(cudaStreamCreateWithFlags(&comm, cudaStreamNonBlocking));
  IRIS_CUDA_CHECK(cudaEventCreateWithFlags(&compute_event, cudaEventDisableTiming));
  IRIS_CUDA_CHECK(cudaEventCreateWithFlags(&comm_event, cudaEventDisableTiming));
  IRIS_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, dev));
  IRIS_CUDA_CHECK(cudaDeviceGetAttribute(&max_threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, dev));
}

cublasLtHandle_t Context::cublaslt() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!lt_) {
    DeviceGuard guard(device);
    // The workspace comes from the stream-ordered pool on this context's stream, like every other buffer.
    if (!lt_workspace_) lt_workspace_ = device_alloc(kLtWorkspaceBytes, device);
    IRIS_CUBLAS_CHECK(cublasLtCreate(&lt_));
  }
  return lt_;
}

void* Context::cublaslt_workspace() {
  (void)cublaslt();
  return lt_workspace_;
}

cudnnHandle_t Context::cudnn() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cudnn_) {
    DeviceGuard guard(device);
    IRIS_CUDNN_CHECK(cudnnCreate(&cudnn_));
    IRIS_CUDNN_CHECK(cudnnSetStream(cudnn_, compute));
  }
  return cudnn_;
}

namespace {
constexpr int kMaxDevices = 64;
std::array<std::atomic<Context*>, kMaxDevices> g_contexts{};
std::mutex g_create_mutex;
}  // namespace

Context& context(int device) {
  if (device >= 0 && device < kMaxDevices) {
    if (Context* c = g_contexts[device].load(std::memory_order_acquire)) return *c;
  }
  const int count = cuda_device_count();
  IRIS_CHECK(device >= 0 && device < count && device < kMaxDevices, "cuda:", device, " does not exist (",
             count, " CUDA device", count == 1 ? "" : "s", " visible)");
  std::lock_guard<std::mutex> lock(g_create_mutex);
  Context* c = g_contexts[device].load(std::memory_order_acquire);
  if (!c) {
    c = new Context(device);  // never deleted: see context.h
    g_contexts[device].store(c, std::memory_order_release);
  }
  return *c;
}

Stream compute_stream(int device) {
  return context(device).compute;
}

DeviceGuard::DeviceGuard(int device) {
  IRIS_CUDA_CHECK(cudaGetDevice(&prev_));
  if (prev_ == device) {
    prev_ = -1;  // nothing to restore
    return;
  }
  IRIS_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  if (prev_ >= 0 && cudaSetDevice(prev_) != cudaSuccess) (void)cudaGetLastError();
}

}  // namespace iris::cuda
