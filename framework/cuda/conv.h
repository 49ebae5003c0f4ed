// CUDA convolution kernels through cuDNN: the same contracts as framework/cpu/conv.h.
//
// Contracts (as the CPU twins): every tensor is contiguous, lives on one CUDA device and has one floating
// dtype; x [N, H, W, Cin], w [Cout, kh, kw, Cin] (cuDNN's NHWC filter layout, "KRSC"), bias [Cout] or
// undefined, out / gout [N, Ho, Wo, Cout]. Outputs are allocated by the caller and fully overwritten (never
// accumulated into). Everything runs on the device's compute stream without synchronising the host, except
// the one-time algorithm search of a new problem in "find" mode (which times the candidates).
//
// Precision: bf16 tensors with f32 accumulation (tensor cores); f32 strictly in f32 (CUDNN_FMA_MATH) unless
// iris::tf32_enabled(), then TF32 tensor cores are allowed; f64 throughout in f64.
#pragma once

#include <string>
#include <vector>

#include "framework/core/tensor.h"
#include "framework/ops/conv.h"

namespace iris::cuda {

// out = conv(x, w) + bias.
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const ConvParams& p);
// dx = dL/dx given gout = dL/dout.
void conv2d_backward_data(const Tensor& gout, const Tensor& w, Tensor& dx, const ConvParams& p);
// dw = dL/dw given gout = dL/dout.
void conv2d_backward_weight(const Tensor& gout, const Tensor& x, Tensor& dw, const ConvParams& p);

// How a new problem's algorithm is chosen (process-wide; problems already planned keep their choice):
// - heuristic (default): cuDNN's heuristic ranking (cudnnGet*Algorithm_v7). The choice depends only on the
//   problem, the GPU and the cuDNN version, so a resumed run picks the same algorithms (bit-exact resume);
// - find: cuDNN times every algorithm once (cudnnFind*AlgorithmEx) and the fastest is kept. Usually faster
//   kernels, but the choice can change from one process to the next (timing noise).
// Either way deterministic algorithms are preferred (a non-deterministic one is used only when no
// deterministic one runs), and the workspace is at most kConvWorkspaceCap bytes. IRIS_CUDNN_FIND=1 in the
// environment selects "find" at start-up; `iris train` and `iris bench` then set it from train.conv_search
// (iris::set_conv_search in framework/ops/conv.h, the device-agnostic switch).
enum class ConvAlgoSearch { heuristic, find };
void set_conv_algo_search(ConvAlgoSearch search);
ConvAlgoSearch conv_algo_search();
constexpr size_t kConvWorkspaceCap = size_t{256} << 20;

// Convolution plans cached on `device` so far (one per direction, problem, dtype, math mode, search mode and
// pointer-alignment class), and a one-line description of each ("fwd bf16 NHWC [2, 32, 32, 64] ... algo 1,
// workspace 0 B, deterministic"), for tests and diagnostics.
size_t conv_plan_count(int device);
std::vector<std::string> conv_plan_descriptions(int device);

// db [Cout] = gout summed over N, Ho and Wo (a column reduction of gout viewed as [N*Ho*Wo, Cout]).
void conv2d_backward_bias(const Tensor& gout, Tensor& db, const ConvParams& p);

}  // namespace iris::cuda
