// Philox fill kernel contract (CPU: framework/cpu/random.cpp; CUDA: framework/cuda/random.cu, bit-identical
// uniform draws).
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris {
enum class Distribution : uint8_t { uniform, normal };
}

namespace iris::cpu {
// out (contiguous, floating) viewed as [N, M]: element (n, j) = dist(block offset + j/4, word j%4 of stream
// streams[n] under seed); uniform maps to [a, b), normal to mean a, std b. `streams` (host memory) holds N
// ids.
void philox_fill(Tensor& out, Distribution dist, uint64_t seed, const uint64_t* streams, int64_t N,
                 uint64_t offset, double a, double b);
}  // namespace iris::cpu

namespace iris::cuda {
void philox_fill(Tensor& out, Distribution dist, uint64_t seed, const uint64_t* streams, int64_t N,
                 uint64_t offset, double a, double b, Stream stream);
}
