// Storage: one refcounted block of memory on one device. Tensors are views over a Storage (shape, strides,
// offset), so views share it. The version counter lives here because every view of the memory sees an
// in-place write: autograd compares it with the version recorded when a tensor was saved for backward.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "framework/core/device.h"

namespace iris {

class Storage {
 public:
  // Allocates `nbytes` on `device` (CPU memory is 64-byte aligned; `pinned` asks for page-locked host memory
  // when CUDA is available, for fast asynchronous copies to the GPU). Throws iris::Error on failure.
  Storage(size_t nbytes, Device device, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }

  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  bool pinned_ = false;
  std::atomic<uint64_t> version_{0};
};

}  // namespace iris
