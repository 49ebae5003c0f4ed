// CPU-side bookkeeping for replaying captured CUDA graphs (issue 15): which work has a graph, when to capture
// one, and which to drop. No CUDA here: the owner (a sampler's U-Net evaluation, a training step) captures and
// replays; this decides, per key, between running eagerly, capturing, and replaying.
//
// A key names everything a captured graph bakes in: the stage (which network and its weights), the batch,
// the input shape and dtype, the device, and a free-form variant (e.g. "bf16 autocast"). Two calls with equal
// keys may share a graph; anything else that changes between calls must live in device memory the graph reads
// (the noise level, the step's scalars), never in kernel arguments.
//
// Policy: a key runs eagerly `warmup_runs` times first (allocator pools fill, cuDNN plans are chosen, lazy
// initialisations happen outside the capture), then is captured once, then replayed. A capture that fails
// (an operation that cannot be captured, a host read inside) marks its key eager for good. At most `capacity`
// graphs are kept; the least recently replayed goes first (each graph holds its own memory pool).
// IRIS_CUDA_GRAPHS=1 turns graphs on where Iris offers them (cuda_graphs_enabled(); today the sampling
// U-Net evaluation of diffusion::Stage::sample). Off by default until a GPU session has measured them and
// run the gpu suite with them on (issue 15): no graph code has yet run on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "framework/core/dtype.h"
#include "framework/core/error.h"

namespace iris {

struct GraphKey {
  std::string stage;  // which network (and weights) the graph runs
  int64_t batch = 0;
  std::vector<int64_t> shape;  // of the main input, batch included
  DType dtype = DType::f32;
  int device = 0;       // CUDA device index
  std::string variant;  // anything else baked into the capture (precision mode, sampler kind)

  bool operator==(const GraphKey&) const = default;
  std::string str() const;  // for logs: "stage b4 [4, 32, 32, 6] f32 cuda:0 variant"
};

struct GraphKeyHash {
  size_t operator()(const GraphKey& k) const;
};

// The IRIS_CUDA_GRAPHS switch: "1" on, unset or "0" off; any other value throws an iris::Error naming it.
bool cuda_graphs_enabled();
bool parse_cuda_graphs_switch(const char* value);  // the parsing alone (nullptr: unset)

template <class Graph>
class GraphCache {
 public:
  enum class Action { eager, capture, replay };

  struct Stats {
    int64_t eager = 0, captures = 0, replays = 0, evictions = 0, failed = 0;
  };

  explicit GraphCache(size_t capacity, int warmup_runs = 1) : capacity_(capacity), warmup_runs_(warmup_runs) {
    IRIS_CHECK(capacity > 0, "GraphCache: capacity must be > 0");
    IRIS_CHECK(warmup_runs >= 0, "GraphCache: warmup_runs must be >= 0, got ", warmup_runs);
  }

  // What to do for this call of `key`. eager: run without a graph (counted towards the warm-up);
  // capture: capture this call and hand the graph to store() (or report capture_failed()); replay: replay
  // graph(key).
  Action next(const GraphKey& key) {
    if (auto it = graphs_.find(key); it != graphs_.end()) {
      order_.splice(order_.begin(), order_, it->second.where);  // most recently used first
      ++stats_.replays;
      return Action::replay;
    }
    int& runs = eager_runs_[key];
    if (runs < 0 || runs < warmup_runs_) {  // < 0: its capture failed, eager for good
      if (runs >= 0) ++runs;
      ++stats_.eager;
      return Action::eager;
    }
    return Action::capture;
  }

  // The graph captured after next() said capture. Evicts the least recently used graph beyond capacity.
  void store(const GraphKey& key, Graph graph) {
    IRIS_CHECK(!graphs_.count(key), "GraphCache::store: a graph for ", key.str(), " is already stored");
    order_.push_front(key);
    graphs_.emplace(key, Entry{std::move(graph), order_.begin()});
    ++stats_.captures;
    if (graphs_.size() > capacity_) {
      graphs_.erase(order_.back());
      order_.pop_back();
      ++stats_.evictions;
    }
  }

  // The capture after next() said capture failed: the key runs eagerly from now on.
  void capture_failed(const GraphKey& key) {
    eager_runs_[key] = -1;
    ++stats_.failed;
  }

  Graph& graph(const GraphKey& key) {
    auto it = graphs_.find(key);
    IRIS_CHECK(it != graphs_.end(), "GraphCache::graph: no graph for ", key.str());
    return it->second.graph;
  }
  bool contains(const GraphKey& key) const { return graphs_.count(key) != 0; }
  size_t size() const { return graphs_.size(); }
  const Stats& stats() const { return stats_; }

  // Drops every graph and the warm-up counts (e.g. the weights moved or the allocator released its pools:
  // the captured addresses are stale). Failed keys stay eager.
  void clear() {
    graphs_.clear();
    order_.clear();
    std::erase_if(eager_runs_, [](const auto& kv) { return kv.second >= 0; });
  }

 private:
  struct Entry {
    Graph graph;
    typename std::list<GraphKey>::iterator where;
  };
  size_t capacity_;
  int warmup_runs_;
  std::list<GraphKey> order_;  // most recently used first
  std::unordered_map<GraphKey, Entry, GraphKeyHash> graphs_;
  std::unordered_map<GraphKey, int, GraphKeyHash> eager_runs_;  // warm-up runs so far; -1: capture failed
  Stats stats_;
};

}  // namespace iris
