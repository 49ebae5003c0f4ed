// Per-device CUDA state, created lazily on the first use of a device and kept for the life of the process.
//
// Every Iris kernel and library call on device N runs on context(N).compute, a non-blocking stream (never the
// legacy default stream, which would serialise with everything). Because all work, allocation and freeing of
// a device is ordered on that one stream, ops never synchronise the host except where a value must reach it
// (item(), to_vector(), copies to the CPU). The comm stream and the two events are for overlapping NCCL
// gradient all-reduce with the backward pass later.
//
// Contexts are never destroyed: tearing down streams and handles from static destructors races with the CUDA
// runtime's own shutdown, and the driver reclaims everything at process exit anyway.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <memory>
#include <mutex>
#include <typeindex>
#include <unordered_map>

#include "framework/kernels/stream.h"

namespace iris::cuda {

// A cache of plans (descriptors, chosen algorithms) keyed by a plain struct with a defaulted operator<=>.
// Entries live as long as the context; references returned stay valid (std::map nodes never move).
template <class Key, class Value>
class PlanCache {
 public:
  // The cached value for `key`, built by make() (returning Value) on the first request.
  template <class Make>
  Value& get(const Key& key, Make&& make) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) it = map_.emplace(key, make()).first;
    return it->second;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return map_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::map<Key, Value> map_;
};

class Context {
 public:
  explicit Context(int device);
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const int device;
  cudaStream_t compute = nullptr;  // every kernel, copy, allocation and library call of this device
  cudaStream_t comm = nullptr;     // collective communication (NCCL), overlapped with compute
  cudaEvent_t compute_event = nullptr, comm_event = nullptr;  // timing disabled; for cross-stream waits
  int sm_count = 0;
  int max_threads_per_sm = 0;

  // cuBLASLt handle and its workspace (kLtWorkspaceBytes, from the caching allocator), created on first use.
  static constexpr size_t kLtWorkspaceBytes = size_t{32} << 20;
  cublasLtHandle_t cublaslt();
  void* cublaslt_workspace();
  // cuDNN handle bound to the compute stream, created on first use (it costs time and memory).
  cudnnHandle_t cudnn();

  // One object of type T per context (e.g. a PlanCache for matmul, another for convolution), created on
  // first request.
  template <class T>
  T& slot() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::shared_ptr<void>& p = slots_[std::type_index(typeid(T))];
    if (!p) p = std::make_shared<T>();
    return *static_cast<T*>(p.get());
  }

 private:
  std::mutex mutex_;
  cublasLtHandle_t lt_ = nullptr;
  void* lt_workspace_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::unordered_map<std::type_index, std::shared_ptr<void>> slots_;
};

// The context of `device` (created on first use; throws iris::Error naming the device when it does not
// exist). Makes no device current; see DeviceGuard.
Context& context(int device);
// compute_stream(device) == context(device).compute is declared in framework/kernels/stream.h, for the ops
// that pass it to kernels without seeing this header.

// Makes `device` the calling thread's current device for the scope (kernels launch on the current device),
// restoring the previous one afterwards. Cheap when it is already current.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1;
};

}  // namespace iris::cuda
