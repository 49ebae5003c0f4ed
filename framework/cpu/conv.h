// CPU convolution kernels: their contract, shared with the CUDA backend, is framework/kernels/conv.h; this
// header adds the CPU's own tuning knobs.
//
// Methods: f32 runs through oneDNN's direct convolutions when Iris is built with oneDNN (conv_onednn.h);
// everything else (f64, bf16 through f32 otherwise, or a problem oneDNN declines) is im2col + GEMM, below.
//
// im2col + GEMM: The im2col matrix has one row per output pixel (n, ho, wo) and one column per tap
// (i, j, c), so its row-major layout matches the weight's [Cout, kh*kw*Cin] and NHWC input rows copy with
// memcpy. Work is cut into tiles of a fixed number of rows that threads take dynamically; each tile is
// im2col'ed into the thread's own cache-sized buffer and multiplied at once by a single-threaded GEMM (one
// thread pool, no handover to OpenBLAS's threads, column data used while still in cache). The data gradient
// works in bands of dx rows: one GEMM for the column rows a band needs, then col2im into the band. Pointwise
// convolutions (whose column matrix *is* the input) skip im2col and col2im.
//
// Determinism: every output element comes from GEMM calls and sums whose arguments and order do not depend
// on the number of threads (tiles, bands, weight-gradient partial sums and bias blocks are fixed by the
// shapes and the tuning below), so results do not depend on the thread count.
#pragma once

#include <string>

#include "framework/core/tensor.h"
#include "framework/kernels/conv.h"

namespace iris::cpu {

// Process-wide tuning (defaults suit CPUs with about 1 MiB of L2 per core). The environment variable
// IRIS_CPU_CONV = auto | winograd | direct | im2col sets `onednn` and `winograd` for a whole run (auto and
// winograd: oneDNN with Winograd; direct: oneDNN's direct method only; im2col: no oneDNN). Results depend on these (through
// the order of the weight-gradient sums), never on the thread count; tests shrink them to force many tiles.
struct ConvCpuTuning {
  int64_t tile_rows = 0;                  // rows per tile; 0: about 1 MiB of columns, clamped to [128, 2048]
  int64_t band_bytes = int64_t{4} << 20;  // data gradient: column rows one task (thread) computes and gathers
  bool onednn = true;                     // f32 through oneDNN when built with it (false: always im2col)
  bool winograd = true;                   // oneDNN's Winograd for the 3x3 stride-1 layers it takes
};
ConvCpuTuning conv_cpu_tuning();
// The tile height used for `p` with elements of `elem_size` bytes (the tuning's, or the automatic one).
int64_t conv_tile_rows(const ConvParams& p, size_t elem_size);
void set_conv_cpu_tuning(const ConvCpuTuning& t);  // throws on values out of range

// Applies an f32 method by name to `t`: winograd, direct, im2col, or auto (leaves `t` as it is: IRIS_CPU_CONV,
// else oneDNN with Winograd). Throws naming `what` (e.g. "bench: --cpu-conv") for another name, or for
// winograd/direct in a build without oneDNN.
void apply_conv_method(ConvCpuTuning& t, const std::string& method, const std::string& what);
// The f32 method `t` selects in this build: "winograd", "direct" or "im2col".
std::string conv_method_name(const ConvCpuTuning& t);

}  // namespace iris::cpu
