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

// Convolution plans cached on `device` so far (one per direction, problem, dtype, math mode, search mode and
// pointer-alignment class), and a one-line description of each ("fwd bf16 NHWC [2, 32, 32, 64] ... algo 1,
// workspace 0 B, deterministic"), for tests and diagnostics.
size_t conv_plan_count(int device);
std::vector<std::string> conv_plan_descriptions(int device);

}  // namespace iris::cuda
