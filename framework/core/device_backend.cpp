#include "framework/core/device_backend.h"

#include "framework/core/error.h"

namespace iris {

#ifndef IRIS_WITH_CUDA
// A build without CUDA has no backend; a CUDA build defines this in framework/cuda/runtime.cpp.
const DeviceBackend* cuda_backend() {
  return nullptr;
}
#endif

const DeviceBackend& require_cuda_backend(const char* what) {
  const DeviceBackend* b = cuda_backend();
  IRIS_CHECK(b != nullptr, what, ": this build of Iris has no CUDA support (IRIS_CUDA=OFF)");
  return *b;
}

}  // namespace iris
