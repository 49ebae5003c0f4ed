// Shared pieces of the CUDA kernels: the strided indexer (shape and per-operand strides, passed by value),
// launch sizing, and the vector type for 16-byte loads. Included by the .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

#include "framework/core/shape.h"
#include "framework/core/tensor.h"
#include "framework/cuda/check.h"
#include "framework/cuda/context.h"

namespace iris::cuda {

constexpr int kMaxDims = 8;    // dimensions left after coalescing; more throws (see make_indexer)
constexpr int kThreads = 256;  // threads per block of the elementwise kernels

// K operands sharing one iteration shape. Dimension 0 is the innermost (fastest varying); a linear index
// i in [0, numel) is decomposed row-major over the shape, and offsets[k] = sum_d idx_d * strides[k][d].
template <int K>
struct Indexer {
  int ndim = 1;
  int64_t shape[kMaxDims];
  int64_t strides[K][kMaxDims];

  // I: the index type for the divisions (uint32_t when numel < 2^32, which is much faster, else uint64_t).
  template <class I>
  __host__ __device__ __forceinline__ void offsets(I linear, int64_t (&off)[K]) const {
#pragma unroll
    for (int k = 0; k < K; ++k) off[k] = 0;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) {
      if (d == ndim - 1) {  // the outermost dimension takes the rest: no division
#pragma unroll
        for (int k = 0; k < K; ++k) off[k] += static_cast<int64_t>(linear) * strides[k][d];
        break;
      }
      const I n = static_cast<I>(shape[d]);
      const I q = linear / n;
      const I r = linear - q * n;
#pragma unroll
      for (int k = 0; k < K; ++k) off[k] += static_cast<int64_t>(r) * strides[k][d];
      linear = q;
    }
  }
};

// Builds the indexer for `shape` with one stride vector per operand: drops size-1 axes and merges adjacent
// axes along which every operand is contiguous (as framework/cpu/loops.h does), so contiguous operands become
// one dimension. Throws naming `op` when more than kMaxDims dimensions remain.
template <int K>
Indexer<K> make_indexer(const Shape& shape, const std::array<Shape, K>& strides, const char* op) {
  Shape sh;
  std::array<Shape, K> st;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    bool merge = !sh.empty();
    for (int k = 0; k < K && merge; ++k) merge = st[k].back() == strides[k][i] * shape[i];
    if (merge) {
      sh.back() *= shape[i];
      for (int k = 0; k < K; ++k) st[k].back() = strides[k][i];
    } else {
      sh.push_back(shape[i]);
      for (int k = 0; k < K; ++k) st[k].push_back(strides[k][i]);
    }
  }
  if (sh.empty()) {
    sh.push_back(1);
    for (int k = 0; k < K; ++k) st[k].push_back(0);
  }
  const int nd = static_cast<int>(sh.size());
  IRIS_CHECK(nd <= kMaxDims, op, ": the CUDA kernels support at most ", kMaxDims,
             " dimensions after merging contiguous ones; shape ", shape_str(shape), " leaves ", nd);
  Indexer<K> ix;
  ix.ndim = nd;
  for (int d = 0; d < kMaxDims; ++d) {
    const int src = nd - 1 - d;  // reverse: dimension 0 of the indexer is the innermost
    ix.shape[d] = src >= 0 ? sh[src] : 1;
    for (int k = 0; k < K; ++k) ix.strides[k][d] = src >= 0 ? st[k][src] : 0;
  }
  return ix;
}

// Strides that read `t` broadcast to `shape`.
inline Shape strides_for(const Tensor& t, const Shape& shape) {
  return broadcast_strides(t.shape(), t.strides(), shape);
}

// Blocks for `work` items at kThreads per block, one item per thread, capped so that a grid-stride loop
// covers the rest (a few waves of full occupancy).
inline unsigned grid_for(int64_t work, const Context& ctx) {
  const int64_t cap = static_cast<int64_t>(ctx.sm_count) * (ctx.max_threads_per_sm / kThreads) * 4;
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, std::max<int64_t>(cap, 1))));
}

inline bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// +infinity of float or double, in device code (reduce.cu and softmax.cu start their max searches there).
template <class A>
__device__ __forceinline__ A pos_inf() {
  if constexpr (std::is_same_v<A, float>)
    return __int_as_float(0x7f800000);
  else
    return __longlong_as_double(0x7ff0000000000000LL);
}

// V elements of T loaded or stored as one 16-byte access (V * sizeof(T) == 16).
template <class T, int V>
struct alignas(16) Vec {
  T v[V];
};

}  // namespace iris::cuda
