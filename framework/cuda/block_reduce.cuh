// The one shared-memory tree reduction of the CUDA kernels (reduce.cu, norm.cu).
//
// n threads (n a power of two; a block may hold several such groups side by side) have each put a value in a
// slot of shared memory; the tree folds them into slot 0 of the group: at level o = n/2, n/4, ..., 1, slot
// i < o folds slot i + o into itself, after a block-wide barrier. The order of every combination depends only
// on n, never on timing, so the result is deterministic, and bit-identical to the loops this replaced.
//
// The caller owns the slots' layout and the combination: fold(o) merges slot i + o into slot i for the
// calling thread's i (o is passed because some merges weigh the two sides by how many values each holds at
// that level, e.g. GroupNorm's Welford statistics). After the call, slot 0 holds the group's result for the
// thread that wrote it (no barrier follows: read it from that thread, or add a __syncthreads()).
//
// Every thread of the block must call it with the same n (it contains __syncthreads()).
#pragma once

namespace iris::cuda {

template <class Fold>
__device__ __forceinline__ void block_tree_reduce(int i, int n, Fold&& fold) {
  for (int o = n / 2; o > 0; o /= 2) {
    __syncthreads();
    if (i < o) fold(o);
  }
}

}  // namespace iris::cuda
