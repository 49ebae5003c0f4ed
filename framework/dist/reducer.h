// Data-parallel training: parameter broadcast at start and a bucketed gradient reducer that all-reduces
// (averages) gradients while the backward pass is still running.
//
// Use, every step on every rank:
//   dist::GradReducer reducer(comm, model);           // once; after broadcast_parameters(comm, model)
//   optimizer.zero_grad();
//   loss = loss_fn(model, my_slice_of_the_batch);     // each rank its own B/size samples
//   loss.backward();                                  // buckets are all-reduced as their gradients arrive
//   reducer.finish();                                 // wait; param.grad now holds the average over ranks
//   clip_grad_norm(params, max_norm); optimizer.step();   // the same on every rank
//
// Buckets: parameters are taken in reverse registration order (roughly the order backward produces their
// gradients) and packed into flat buffers of about bucket_bytes, one dtype and device per bucket, plus one
// flag per parameter (1 when this rank has a gradient for it). A per-parameter gradient-ready hook copies
// the gradient into its bucket; when a bucket's last gradient is in, the bucket is all-reduced
// asynchronously. Buckets are launched strictly in index order on every rank (a bucket ready before an
// earlier one waits for it), because collectives must be issued in the same order everywhere.
//
// Parameters without a gradient on this rank (unused in this step's graph) count as zero: finish() zeroes
// their slots and launches the remaining buckets. After the average, a parameter gets a gradient when any
// rank had one (its summed flag > 0) and stays without one otherwise, identically on every rank. (Reading
// the flags costs a host read, done only by a rank that lacked some gradient.)
//
// After finish(), every param.grad is a view into its bucket (no copy back): valid until the next synced
// backward writes the bucket again. zero_grad() between steps (the usual loop) drops those views.
//
// Gradient accumulation: set_sync(false) for the micro-batches whose gradients should only accumulate
// locally; the last micro-batch runs with set_sync(true) and then finish().
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/dist/communicator.h"
#include "framework/nn/module.h"

namespace iris::dist {

// Copies every parameter and buffer of rank `root` into the same tensors of every other rank. Checks first
// (with an all_gather of a fingerprint of the names, shapes and dtypes) that all ranks have the same model,
// and throws iris::Error naming the first rank that differs otherwise.
void broadcast_parameters(Communicator& comm, const nn::Module& module, int root = 0);
void broadcast_parameters(Communicator& comm, const nn::NamedTensors& tensors, int root = 0);

struct ReducerOptions {
  size_t bucket_bytes = size_t{25} << 20;       // target size of a bucket
  size_t first_bucket_bytes = size_t{1} << 20;  // the first bucket (last layers) is small, to start early
  // Wait on the host in finish() until the reductions have finished (the NCCL path does not otherwise), so
  // that exposed_s measures device time too. Costs a synchronisation per step: for measurements.
  bool host_timing = false;
};

// Per-step measurements, summed over the steps since reset_stats().
struct ReducerStats {
  int64_t steps = 0;
  int64_t buckets_launched_in_backward = 0;  // started by a hook, overlapping the rest of backward
  int64_t buckets_launched_in_finish = 0;    // started by finish() (they held parameters without gradient)
  double hook_s = 0;     // host time in the hooks (copies into buckets, launches, progress polls)
  double comm_s = 0;     // union over a step of [launch, completion seen] of its buckets' all-reduces
  double exposed_s = 0;  // time finish() waited for reductions: the part of comm_s not hidden
  // Share of the all-reduce time hidden under backward: 1 - exposed_s / comm_s (0 without data).
  double hidden_fraction() const { return comm_s > 0 ? std::max(0.0, 1.0 - exposed_s / comm_s) : 0.0; }
  std::string str() const;
};

class GradReducer {
 public:
  GradReducer(std::shared_ptr<Communicator> comm, const nn::Module& module, ReducerOptions options = {});
  // Trainable tensors (leaves that require grad) in registration order.
  GradReducer(std::shared_ptr<Communicator> comm, std::vector<Tensor> params, ReducerOptions options = {});
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Waits for every bucket (launching those still pending) and leaves the averaged gradients in
  // param.grad. Call once after each synced backward, on every rank.
  void finish();

  // With false, the hooks do nothing: gradients accumulate locally (micro-batches). Default true.
  void set_sync(bool on);
  bool sync() const;

  size_t num_buckets() const;
  // The parameter indices (registration order) of bucket `b`, in their order inside the bucket.
  std::vector<size_t> bucket_params(size_t b) const;
  // Bucket indices in the order the last step launched them (always 0, 1, 2, ...: for tests).
  std::vector<size_t> last_launch_order() const;
  // Bucket indices in the order their last gradient arrived in the last step (may differ from launch order).
  std::vector<size_t> last_ready_order() const;

  const ReducerStats& stats() const;
  void reset_stats();
  Communicator& communicator() const;

  struct State;  // shared with the hooks (which hold it weakly, so that a dead reducer's hooks do nothing)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace iris::dist
