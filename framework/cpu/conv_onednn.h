// f32 convolution on the CPU through oneDNN (Debian's libdnnl-dev), when Iris is built with it.
//
// Why: oneDNN's direct convolution kernels reach 100-130 GFLOP/s per AVX-512 core on the U-Net's 3x3
// convolutions, its Winograd F(4x4, 3x3) kernels 190-240 (equivalent direct FLOPs), where im2col + OpenBLAS
// reaches 45-60 (measured on a 2-core AVX-512 EPYC; `iris bench-conv --method winograd|direct|im2col` times
// each, tools/bench/SR3_BENCH.md has the whole-step figures). The direct kernels work on NHWC activations in
// place; Winograd needs 16-channel blocks, so its tasks reorder activations in and out; the weights are
// reordered to the primitive's layout once per call either way.
//
// Which problems: kernels larger than 1x1 on outputs of at least 6x6, except the forward and weight gradient
// of 1-3 output channels (suits() in the .cpp says why); of those, Winograd takes what oneDNN offers it for
// (3x3, stride 1, channel counts in 16s, AVX-512), the direct method the rest. Everything else stays on the
// im2col path, as do f64, bf16 (which conv.cpp runs in f32, so through oneDNN too when it suits) and builds
// without oneDNN. Winograd's transforms cost some accuracy: relative L2 error ~8e-7 against float64 on a 64 ->
// 64 layer, against ~2e-7 for the direct method; ConvCpuTuning::winograd = false turns it off.
//
// Threads and determinism: oneDNN runs single-threaded inside Iris's own pool (its OpenMP team is never
// started: idle OpenMP threads spin, see framework/cpu/thread_pool.h). No result depends on the thread count,
// and a sample's forward result and data gradient not on the rest of its batch:
//   forward, data gradient: tasks of whole images, each task a convolution of its images (one image per task
//     for the direct method; for Winograd several, as each image's tiles are computed on their own - tested
//     bit for bit across batch sizes and thread counts);
//   weight gradient: the batch cut into a number of contiguous groups fixed by the shapes (below), each
//     group's gradient computed by one task, the groups' gradients then added in group order.
#pragma once

#include <string>

#include "framework/kernels/conv.h"

namespace iris::cpu::onednn {

// True when this build of Iris has oneDNN.
bool available();

// oneDNN's name for the kernel that runs the forward pass of `p` (e.g. "jit_wino_4x3:avx512_core",
// "brgconv:avx512_core"), or "" when the problem takes the im2col path. For benchmarks and tests.
std::string forward_implementation(const ConvParams& p, bool winograd);

// Each returns false (having done nothing) when oneDNN cannot run this problem; the caller then uses the
// im2col path. Pointers are contiguous NHWC / [Cout, kh, kw, Cin] f32 buffers as in framework/kernels/conv.h;
// outputs are overwritten.
// `winograd`: use oneDNN's Winograd F(4x4, 3x3) where it applies (3x3, stride 1, channel counts in 16s),
// the direct method elsewhere.
bool conv2d_forward(const float* x, const float* w, const float* bias, float* out, const ConvParams& p,
                    bool winograd);
bool conv2d_backward_data(const float* gout, const float* w, float* dx, const ConvParams& p, bool winograd);
bool conv2d_backward_weight(const float* gout, const float* x, float* dw, const ConvParams& p, bool winograd);

}  // namespace iris::cpu::onednn
