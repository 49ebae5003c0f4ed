// The CUDA convolution kernels through cuDNN (framework/cuda/conv.cu). Their contract, shared with the CPU
// backend, is declared once in framework/kernels/conv.h, where every CUDA kernel takes the stream it runs on
// as its last argument. The precision (TF32) and the algorithm search ("heuristic" or "find") are numerics
// settings: framework/core/numerics.h. Either way deterministic algorithms are preferred (a non-deterministic
// one is used only when no deterministic one runs), and the workspace is at most kConvWorkspaceCap bytes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "framework/core/numerics.h"
#include "framework/kernels/conv.h"

namespace iris::cuda {

// The names the search switch had when it lived here (cuda::set_conv_algo_search, ...), for older callers.
using iris::conv_algo_search;
using iris::ConvAlgoSearch;
using iris::set_conv_algo_search;

constexpr size_t kConvWorkspaceCap = size_t{256} << 20;

// The overloads below take no stream and run on the compute stream of their output's device. They keep older
// callers that name the CUDA kernels directly (tests/gpu, the GPU benchmarks of tools/) compiling unchanged;
// new code passes the stream (the op layer passes cuda::compute_stream(device)).
inline void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out,
                           const ConvParams& p) {
  conv2d_forward(x, w, bias, out, p, compute_stream(out.device().index));
}
inline void conv2d_backward_data(const Tensor& gout, const Tensor& w, Tensor& dx, const ConvParams& p) {
  conv2d_backward_data(gout, w, dx, p, compute_stream(dx.device().index));
}
inline void conv2d_backward_weight(const Tensor& gout, const Tensor& x, Tensor& dw, const ConvParams& p) {
  conv2d_backward_weight(gout, x, dw, p, compute_stream(dw.device().index));
}
inline void conv2d_backward_bias(const Tensor& gout, Tensor& db, const ConvParams& p) {
  conv2d_backward_bias(gout, db, p, compute_stream(db.device().index));
}

// Convolution plans cached on `device` so far (one per direction, problem, dtype, math mode, search mode and
// pointer-alignment class), and a one-line description of each ("fwd bf16 NHWC [2, 32, 32, 64] ... algo 1,
// workspace 0 B, deterministic"), for tests and diagnostics.
size_t conv_plan_count(int device);
std::vector<std::string> conv_plan_descriptions(int device);

}  // namespace iris::cuda
