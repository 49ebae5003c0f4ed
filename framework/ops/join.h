// Joining and splitting tensors along an axis. All differentiable.
#pragma once

#include <vector>

#include "framework/core/tensor.h"

namespace iris {

// Concatenates along `axis` (negative counts from the end). The inputs must share dtype, device, rank and
// every other axis; a new tensor is returned.
Tensor cat(const std::vector<Tensor>& tensors, int64_t axis);

// Stacks equal-shaped tensors along a new axis at position `axis` (in [-(dim+1), dim]).
Tensor stack(const std::vector<Tensor>& tensors, int64_t axis);

// Views of consecutive pieces of `axis` with the given sizes, which must add up to the axis's size.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);

// `n` views of ceil(size / n) elements along `axis`, the last one smaller when n does not divide the size
// (PyTorch's chunk: fewer than n pieces when the remainder leaves too few elements, e.g. 5 into 4 gives
// 2, 2, 1). An empty axis gives n empty pieces.
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t axis);

}  // namespace iris
