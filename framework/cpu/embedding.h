// CPU kernels for lookups by integer index: embedding rows and one element per row (the CUDA ones in
// framework/cuda/embedding.h have the same contracts).
//
// Indices are contiguous i32 or i64 tensors of any shape, read flat; they are validated once by
// check_indices, and the other kernels assume valid indices. Floating tensors are contiguous and share one
// dtype. Results do not depend on the number of threads: every output is computed by one thread, and sums
// run in index order.
#pragma once

#include "framework/core/tensor.h"

namespace iris::cpu {

// Throws iris::Error naming `op`, the first index outside [0, limit), its flat position, and `limit`
// described as `what` (e.g. "V (rows of the weight)", "C (classes)").
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
