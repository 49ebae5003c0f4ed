#include "framework/core/device_backend.h"

#include <atomic>

#include "framework/core/error.h"

namespace iris {

namespace {
std::atomic<const DeviceBackend*> g_cuda{nullptr};
}

void register_cuda_backend(const DeviceBackend* backend) {
  g_cuda.store(backend);
}

const DeviceBackend* cuda_backend() {
  return g_cuda.load();
}

const DeviceBackend& require_cuda_backend(const char* what) {
  const DeviceBackend* b = g_cuda.load();
  IRIS_CHECK(b != nullptr, what, ": this build of Iris has no CUDA support (IRIS_CUDA=OFF)");
  return *b;
}

}  // namespace iris
