// The CUDA stream a kernel runs on, as a plain parameter (llm.c's `gelu_forward(out, inp, N, stream)`): the
// op layer passes it, so a kernel's ordering is visible at the call instead of hidden in a global.
//
// `Stream` is cudaStream_t spelled without the CUDA headers (the runtime defines it as `struct
// CUstream_st*`), so the contract headers in this directory compile in builds without CUDA. The CPU kernels
// take none: they run on Iris's thread pool (framework/cpu/parallel.h) and results never depend on its size.
#pragma once

struct CUstream_st;

namespace iris {

using Stream = CUstream_st*;

namespace cuda {
// The stream every op enqueues device `device`'s work on: its context's compute stream (framework/cuda/
// context.h explains why there is one per device). Created with the context on first use.
Stream compute_stream(int device);
}  // namespace cuda

}  // namespace iris
