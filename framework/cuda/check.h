// Checking macros for the CUDA runtime, cuBLAS(Lt) and cuDNN: every failing call becomes an iris::Error
// carrying file:line, the expression that failed and the library's own error name and string.
//
// IRIS_SYNC_DEBUG=1 in the environment (read once, at the first check) makes every kernel launch and every
// cuBLAS/cuDNN call synchronise the device and check for asynchronous errors right there, so that a fault is
// reported at the call that caused it instead of at some later synchronisation.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "framework/core/error.h"

namespace iris::cuda {

// True when IRIS_SYNC_DEBUG is set to something other than "0" or "" (read once per process).
bool sync_debug();

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* expr, const char* file, int line);

// After a kernel launch: throws on a launch error (bad configuration, too many resources); in sync-debug
// mode also synchronises the device and throws on an error raised while the kernel ran. `what` names the
// kernel (e.g. "unary exp f32").
void check_launch(const char* what, const char* file, int line);
// After an asynchronous library call that succeeded: in sync-debug mode, synchronises and checks.
void debug_sync(const char* what, const char* file, int line);

}  // namespace iris::cuda

#define IRIS_CUDA_CHECK(expr)                                               \
  do {                                                                      \
    const cudaError_t iris_err_ = (expr);                                   \
    if (iris_err_ != cudaSuccess) [[unlikely]]                              \
      ::iris::cuda::throw_cuda_error(iris_err_, #expr, __FILE__, __LINE__); \
  } while (0)

#define IRIS_CUBLAS_CHECK(expr)                                              \
  do {                                                                       \
    const cublasStatus_t iris_st_ = (expr);                                  \
    if (iris_st_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                      \
      ::iris::cuda::throw_cublas_error(iris_st_, #expr, __FILE__, __LINE__); \
    ::iris::cuda::debug_sync(#expr, __FILE__, __LINE__);                     \
  } while (0)

#define IRIS_CUDNN_CHECK(expr)                                              \
  do {                                                                      \
    const cudnnStatus_t iris_st_ = (expr);                                  \
    if (iris_st_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                      \
      ::iris::cuda::throw_cudnn_error(iris_st_, #expr, __FILE__, __LINE__); \
    ::iris::cuda::debug_sync(#expr, __FILE__, __LINE__);                    \
  } while (0)

// Place right after a <<<...>>> launch; `what` is a string naming the kernel and its dtype.
#define IRIS_CUDA_CHECK_LAUNCH(what) ::iris::cuda::check_launch((what), __FILE__, __LINE__)
