// CUDA lookup kernels (embedding rows, one element per row): the same contracts as framework/cpu/embedding.h.
//
// Indices are contiguous i32 or i64 tensors on the device; other tensors are contiguous and share one dtype.
// Everything runs on the device's compute stream; results are deterministic (the embedding gradient sums
// each row's contributions in increasing index order, like the CPU).
#pragma once

#include "framework/core/tensor.h"

namespace iris::cuda {

// See cpu::check_indices. SYNCHRONISES: the indices are copied to the host (waiting for the compute stream)
// so that a bad one can raise an iris::Error naming it. Meant for the small label tensors (class labels,
// cross-entropy targets), where the copy is a few hundred bytes.
void check_indices(const Tensor& indices, int64_t limit, const char* op, const char* what);

// See cpu::embedding_forward: out[i] = weight[indices[i]] (any dtype; rows copied with 16-byte accesses when
// the row size and pointers allow).
void embedding_forward(const Tensor& weight, const Tensor& indices, Tensor& out);

// See cpu::embedding_backward: dweight[r] = sum of gout[i] over i with indices[i] == r, in increasing i, in
// f64 (0 where none). One block per weight row scans all n indices (staged through shared memory): O(V n)
// index reads, which is nothing for label tensors but would be slow for a large vocabulary.
void embedding_backward(const Tensor& gout, const Tensor& indices, Tensor& dweight);

// See cpu::gather_last: out[r] = x[r, index[r]].
void gather_last(const Tensor& x, const Tensor& index, Tensor& out);

// See cpu::gather_last_backward: dx[r, c] = (c == index[r]) ? gout[r] : 0, written in full.
void gather_last_backward(const Tensor& gout, const Tensor& index, Tensor& dx);

}  // namespace iris::cuda
