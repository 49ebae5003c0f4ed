// Lookup kernel contract: embedding rows and one element per row (CPU: framework/cpu/embedding.cpp; CUDA:
// framework/cuda/embedding.cu).
//
// Indices are contiguous i32 or i64 tensors of any shape, read flat, and valid: the op layer validates them
// first with cpu::check_indices (on the host; CUDA indices are copied there). Floating tensors are contiguous
// and share one dtype. Results are deterministic on both backends: every output is computed by one thread,
// and sums run in index order (the CUDA embedding gradient sums in f64).
#pragma once

#include "framework/core/tensor.h"
#include "framework/kernels/stream.h"

namespace iris::cpu {

// Throws iris::Error naming `op`, the first index outside [0, limit), its flat position, and `limit`
// described as `what` (e.g. "V (rows of the weight)", "C (classes)"). Host tensors only.
void check_indices(const Tensor& indices, int64_t limit, const char* op, const char* what);

// weight: [V, D]; indices: n values; out: [n, D] (any shape with n*D elements): out[i] = weight[indices[i]].
void embedding_forward(const Tensor& weight, const Tensor& indices, Tensor& out);

// gout: [n, D] (any shape with n*D elements); dweight: [V, D], written in full:
// dweight[r] = sum of gout[i] over i with indices[i] == r, in increasing i (0 where none).
void embedding_backward(const Tensor& gout, const Tensor& indices, Tensor& dweight);

// x: [R, C] (any shape with R*C elements); index: R values; out: R values: out[r] = x[r, index[r]].
void gather_last(const Tensor& x, const Tensor& index, Tensor& out);

// gout: R values; dx: [R, C], written in full: dx[r, c] = (c == index[r]) ? gout[r] : 0.
void gather_last_backward(const Tensor& gout, const Tensor& index, Tensor& dx);

}  // namespace iris::cpu

namespace iris::cuda {
// Rows are copied with 16-byte accesses when the row size and pointers allow.
void embedding_forward(const Tensor& weight, const Tensor& indices, Tensor& out, Stream stream);
// One block per weight row scans all n indices (staged through shared memory): O(V n) index reads, which is
// nothing for label tensors but would be slow for a large vocabulary.
void embedding_backward(const Tensor& gout, const Tensor& indices, Tensor& dweight, Stream stream);
void gather_last(const Tensor& x, const Tensor& index, Tensor& out, Stream stream);
void gather_last_backward(const Tensor& gout, const Tensor& index, Tensor& dx, Stream stream);
}  // namespace iris::cuda
