#include "framework/cuda/check.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace iris::cuda {

bool sync_debug() {
  static const bool on = [] {
    const char* v = std::getenv("IRIS_SYNC_DEBUG");
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
  }();
  return on;
}

namespace {
// "on cuda:N" for the calling thread's current device, or "" when even that cannot be read.
std::string current_device_text() {
  int dev = -1;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return "";
  }
  return " on cuda:" + std::to_string(dev);
}
}  // namespace

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  // Clear a non-sticky error so that later calls are not blamed for this one.
  (void)cudaGetLastError();
  detail::throw_error(detail::cat("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")",
                                  current_device_text(), " in `", expr, "`"),
                      file, line);
}

void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line) {
  detail::throw_error(
      detail::cat("cuBLAS error ", cublasLtGetStatusName(status), " (", cublasLtGetStatusString(status), ")",
                  current_device_text(), " in `", expr, "`"),
      file, line);
}

void throw_cudnn_error(cudnnStatus_t status, const char* expr, const char* file, int line) {
  char detail_msg[512] = {0};
  cudnnGetLastErrorString(detail_msg, sizeof(detail_msg));
  detail::throw_error(detail::cat("cuDNN error ", cudnnGetErrorString(status), current_device_text(), " in `",
                                  expr, "`", detail_msg[0] ? ": " : "", detail_msg),
                      file, line);
}

void check_launch(const char* what, const char* file, int line) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) [[unlikely]]
    detail::throw_error(detail::cat("CUDA kernel launch failed: ", what, ": ", cudaGetErrorName(err), " (",
                                    cudaGetErrorString(err), ")", current_device_text()),
                        file, line);
  debug_sync(what, file, line);
}

void debug_sync(const char* what, const char* file, int line) {
  if (!sync_debug()) return;
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) [[unlikely]]
    detail::throw_error(detail::cat("CUDA error after ", what, " (IRIS_SYNC_DEBUG): ", cudaGetErrorName(err),
                                    " (", cudaGetErrorString(err), ")", current_device_text()),
                        file, line);
}

}  // namespace iris::cuda
