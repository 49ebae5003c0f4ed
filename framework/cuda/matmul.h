// The CUDA batched GEMM through cuBLASLt (framework/cuda/matmul.cpp). Its contract, shared with the CPU
// backend, is declared once in framework/kernels/matmul.h, where the CUDA kernel takes the stream it runs on
// as its last argument.
//
// The overload below takes no stream and runs on the compute stream of its output's device: it keeps older
// callers that name the CUDA kernel directly (tests/gpu) compiling unchanged; new code passes the stream.
#pragma once

#include <cstddef>

#include "framework/kernels/matmul.h"

namespace iris::cuda {

inline void bmm(const Tensor& a, const Tensor& b_, Tensor& out, double alpha = 1.0, double beta = 0.0) {
  bmm(a, b_, out, alpha, beta, compute_stream(out.device().index));
}

// Plans (descriptors and the heuristic's algorithm) cached on `device` so far (for tests and diagnostics).
size_t matmul_plan_count(int device);

}  // namespace iris::cuda
