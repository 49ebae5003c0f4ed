// f32 convolution on the CPU through oneDNN (Debian's libdnnl-dev), when Iris is built with it.
//
// Why: oneDNN's convolution kernels reach 100-130 GFLOP/s per AVX-512 core on the U-Net's 3x3 convolutions,
// where im2col + OpenBLAS reaches 45-60 (measured on a 2-core AVX-512 EPYC; `iris bench-conv --method
// onednn|im2col` times both, tools/bench/SR3_BENCH.md has the whole-step figures). oneDNN 2.6 has NHWC kernels for all three passes, so activations are used in place;
// only the weights are reordered to the layout the primitive prefers, once per call.
//
// Which problems: kernels larger than 1x1 on outputs of at least 8x8, except the forward and weight gradient
// of 1-3 output channels (suits() in the .cpp says why). The rest
// stays on the im2col path, as do f64, bf16 (which conv.cpp runs in f32, so through oneDNN too when it
// suits) and builds without oneDNN.
//
// Threads and determinism: oneDNN runs single-threaded inside Iris's own pool (its OpenMP team is never
// started: idle OpenMP threads spin, see framework/cpu/thread_pool.h). The work is split so that no result
// depends on the thread count, and a sample's forward result not on the rest of its batch:
//   forward, data gradient: one task per image, each a convolution of one image (minibatch 1);
//   weight gradient: the batch cut into a number of contiguous groups fixed by the shapes (below), each
//     group's gradient computed by one task, the groups' gradients then added in group order.
#pragma once

#include "framework/kernels/conv.h"

namespace iris::cpu::onednn {

// True when this build of Iris has oneDNN.
bool available();

// Each returns false (having done nothing) when oneDNN cannot run this problem; the caller then uses the
// im2col path. Pointers are contiguous NHWC / [Cout, kh, kw, Cin] f32 buffers as in framework/kernels/conv.h;
// outputs are overwritten.
bool conv2d_forward(const float* x, const float* w, const float* bias, float* out, const ConvParams& p);
bool conv2d_backward_data(const float* gout, const float* w, float* dx, const ConvParams& p);
bool conv2d_backward_weight(const float* gout, const float* x, float* dw, const ConvParams& p);

}  // namespace iris::cpu::onednn
