// Running a tensor function through captured CUDA graphs (issue 15): a sampling step's U-Net evaluation is
// hundreds of small kernel launches, and at small batches the GPU waits on the host that issues them. A graph
// captured once replays the whole evaluation with one launch.
//
// GraphedFunction runs `f(inputs) -> output` for keys made of the inputs' shapes, dtypes and device and a
// caller's variant (graph_cache.h says when a key is warmed up, captured, replayed or left eager). A captured
// key owns static copies of the inputs and a static output: a replay copies the new inputs into the statics,
// launches the graph and returns a copy of the static output, so the result is the eager result bit for bit
// (the same kernels on the same values) and stays valid after the next call. Everything f allocates inside
// the capture is freed inside it (its result is copied into the static output first), so a graph can be
// launched any number of times. Those intermediates live in CUDA's memory for graphs, one set per captured
// key, outside the caching allocator and its statistics (memory_usage does not count them).
//
// What f may do: only work queued on the inputs' device, the same work for every call of a key (no branches
// on values read back, which cannot be captured anyway), reading nothing but its inputs and tensors that stay
// where they are (weights updated in place are fine; weights replaced by new tensors are not: clear()).
// A capture that fails (f reads a value back, or throws) leaves its key eager for good and is reported by
// last_failure(); the call still returns f's eager result.
//
// The capturer is abstract so that the bookkeeping is tested on the CPU (tests/framework/test_replay_graph.cpp
// captures "graphs" that re-run the work); cuda_graph_capturer() is the real one.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "framework/core/graph_cache.h"
#include "framework/core/tensor.h"

namespace iris {

class ReplayGraph {
 public:
  virtual ~ReplayGraph() = default;
  virtual void launch() = 0;  // queues the captured work again
};

class GraphCapturer {
 public:
  virtual ~GraphCapturer() = default;
  virtual bool supports(Device device) const = 0;
  // Records the work `work` queues on `device` without running it. Throws an iris::Error when the work
  // cannot be captured (or throws itself); nothing of it has run then.
  virtual std::unique_ptr<ReplayGraph> capture(Device device, const std::function<void()>& work) const = 0;
};

// CUDA graphs of a device's compute stream; nullptr in a build without CUDA.
const GraphCapturer* cuda_graph_capturer();

class GraphedFunction {
  struct Entry;
  using Cache = GraphCache<std::shared_ptr<Entry>>;

 public:
  using Fn = std::function<Tensor(const std::vector<Tensor>& inputs)>;

  // `name` identifies f (a network and its weights) in keys; capturer nullptr: always eager. At most
  // `capacity` graphs are kept (each holds its own device memory).
  GraphedFunction(std::string name, const GraphCapturer* capturer, size_t capacity = 4, int warmup_runs = 1);

  // f(inputs), through a graph when the key has one. Undefined inputs are allowed (they stay undefined);
  // the defined ones must be on one device, and f's result on that device too.
  Tensor operator()(const std::vector<Tensor>& inputs, const std::string& variant, const Fn& f);

  using Stats = Cache::Stats;
  const Stats& stats() const { return cache_.stats(); }
  const std::string& last_failure() const { return last_failure_; }
  void clear() { cache_.clear(); }

 private:
  struct Entry {
    std::vector<Tensor> inputs;  // the static inputs the graph reads
    Tensor output;               // the static output it writes
    std::unique_ptr<ReplayGraph> graph;
  };
  GraphKey key_of(const std::vector<Tensor>& inputs, const std::string& variant, Device device) const;

  std::string name_;
  const GraphCapturer* capturer_;
  Cache cache_;
  // Per key, the shape and dtype of f's result, from its eager runs (the static output is made before capture).
  std::unordered_map<GraphKey, std::pair<Shape, DType>, GraphKeyHash> outputs_;
  std::string last_failure_;
};

}  // namespace iris
