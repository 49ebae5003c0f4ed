#include "framework/core/storage.h"

#include <cstdlib>

#include "framework/core/error.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/allocator.h"
#endif

namespace iris {

Storage::Storage(size_t nbytes, Device device, bool pinned) : nbytes_(nbytes), device_(device) {
  if (device.is_cuda()) {
#ifdef IRIS_WITH_CUDA
    data_ = nbytes ? cuda::device_alloc(nbytes, device.index) : nullptr;
    return;
#else
    IRIS_THROW("cannot allocate on ", device.str(), ": this build of Iris has no CUDA support (IRIS_CUDA=OFF)");
#endif
  }
#ifdef IRIS_WITH_CUDA
  if (pinned && nbytes && cuda_available()) {
    data_ = cuda::pinned_alloc(nbytes);
    pinned_ = true;
    return;
  }
#endif
  (void)pinned;
  if (nbytes == 0) return;
  const size_t rounded = (nbytes + 63) / 64 * 64;
  data_ = std::aligned_alloc(64, rounded);
  IRIS_CHECK(data_ != nullptr, "out of host memory: could not allocate ", nbytes, " bytes");
}

Storage::~Storage() {
  if (!data_) return;
#ifdef IRIS_WITH_CUDA
  if (device_.is_cuda()) {
    cuda::device_free(data_, nbytes_, device_.index);
    return;
  }
  if (pinned_) {
    cuda::pinned_free(data_);
    return;
  }
#endif
  std::free(data_);
}

}  // namespace iris
