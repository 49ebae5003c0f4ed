// How an op reaches a kernel: IRIS_DISPATCH_DEVICE picks the CPU or CUDA implementation of a kernel family
// (declared once, for both backends, in framework/kernels/) by the device of the data. A CUDA kernel gets one
// more, last argument: the stream to run on, which is the device's compute stream
// (framework/kernels/stream.h). The dtype/op dispatch helpers the kernels use come with
// framework/kernels/dispatch.h.
#pragma once

#include "framework/core/kernel_profile.h"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/stream.h"

namespace iris {

// Calls ::iris::cpu::fn(args...) or ::iris::cuda::fn(args..., stream) by the device of the data. CPU calls are
// timed when kernel profiling is on (framework/core/kernel_profile.h).
#ifdef IRIS_WITH_CUDA
#define IRIS_DISPATCH_DEVICE(device, fn, ...)                                                       \
  ((device).is_cuda() ? ::iris::cuda::fn(__VA_ARGS__, ::iris::cuda::compute_stream((device).index)) \
                      : (::iris::KernelTimer(#fn), ::iris::cpu::fn(__VA_ARGS__)))
#else
#define IRIS_DISPATCH_DEVICE(device, fn, ...)                                                      \
  ((device).is_cuda() ? IRIS_THROW(#fn ": this build of Iris has no CUDA support (IRIS_CUDA=OFF)") \
                      : (::iris::KernelTimer(#fn), ::iris::cpu::fn(__VA_ARGS__)))
#endif

}  // namespace iris
