// Loader: batches of a ShardSet for data-parallel training, reproducible and resumable.
//
// Order: epoch e visits the samples in a permutation drawn from (seed, e) by a Fisher-Yates shuffle driven
// by Philox (element i of the shuffle uses block i of stream kShuffleStreamBase | e under key seed), so it
// is the same on every machine and rank. Global batch k of an epoch is positions [k B, (k+1) B) of that
// order, whatever the number of ranks; rank r of R loads only its contiguous slice
// [k B + r B/R, k B + (r+1) B/R) (B must divide by R). With drop_last (the default) an epoch has floor(N/B)
// steps; otherwise a last, smaller batch of m samples is split as [r m / R, (r+1) m / R).
//
// Cursor: (epoch, position), the position being the number of the epoch's samples consumed globally before
// the next batch. It is the same on every rank and independent of R, so saving it in a checkpoint and
// restoring it makes a resumed run see exactly the batches an uninterrupted run would (also with another
// number of ranks, as long as B is unchanged).
//
// Background threads read and convert the next batches (up to `prefetch` ahead). Batches come out in order;
// an error while building one (a corrupted shard, say) is rethrown by the next() that would return it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "data/shard.h"
#include "framework/core/tensor.h"

namespace iris::data {

inline constexpr uint64_t kShuffleStreamBase = uint64_t{1} << 63;

struct LoaderCursor {
  int64_t epoch = 0;
  int64_t position = 0;  // samples of the epoch consumed (a multiple of the global batch, or the epoch size)
  bool operator==(const LoaderCursor&) const = default;
};

// What an augmentation hook knows about the sample it transforms. Hooks that draw random numbers should use
// a Philox stream derived from these (e.g. Generator(seed, Generator::stream_id(epoch, index))) so that the
// result does not depend on threads, ranks or prefetching.
struct AugmentContext {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t index = 0;  // global sample index
};
// Called from loader threads (concurrently: must be thread-safe). May change the sample's images, including
// their size, as long as every sample of a batch ends up the same size.
using AugmentFn = std::function<void(Sample&, const AugmentContext&)>;

struct LoaderOptions {
  int64_t batch_size = 0;  // global batch B
  int rank = 0, world_size = 1;
  uint64_t seed = 0;
  bool shuffle = true;  // false: the natural order 0..N-1 every epoch
  bool drop_last = true;
  std::optional<std::vector<int>> lowres_sizes;  // which low-res images to load; unset: all of the set's
  int num_workers = 2;                           // background threads; 0 builds each batch inside next()
  int prefetch = 4;                              // batches built ahead of the consumer
  bool pin_memory = false;
  AugmentFn augment;
};

struct Batch {
  int64_t epoch = 0, step = 0;   // step within the epoch
  std::vector<int64_t> indices;  // global sample index of each row of this rank's slice, in row order
  Tensor hr;                     // f32 [b, H, W, C] in [-1, 1]
  std::vector<Tensor> lowres;    // f32 [b, h, w, C] in [-1, 1], one per loaded low-res size
  std::vector<int> lowres_sizes;
  Tensor labels;      // i32 [b]; undefined when the set has no labels
  LoaderCursor next;  // the cursor after this batch
  int64_t rows() const { return static_cast<int64_t>(indices.size()); }
};

// The permutation of 0..n-1 used for `epoch` (identity when !shuffle).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle = true);

class Loader {
 public:
  Loader(ShardSet set, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  Batch next();
  LoaderCursor cursor() const;  // where the next batch starts
  // Continues from `c` (discarding batches built ahead). Throws unless c lies on a batch boundary.
  void restore(const LoaderCursor& c);

  int64_t steps_per_epoch() const;
  int64_t local_batch_size() const;  // B / R (full batches)
  const ShardSet& set() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace iris::data
