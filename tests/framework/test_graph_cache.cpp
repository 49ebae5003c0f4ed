// GraphCache (framework/core/graph_cache.h): the CPU-side bookkeeping of CUDA graph replay: keys, the
// warm-up / capture / replay sequence, failed captures, least-recently-used eviction, and the IRIS_CUDA_GRAPHS
// switch. The graphs here are plain ints standing for captured graphs.
#include <cstdlib>
#include <unordered_set>

#include "framework/core/graph_cache.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {
using Cache = GraphCache<int>;
using Action = Cache::Action;

GraphKey key(int64_t batch, std::string stage = "sr3") {
  return {.stage = std::move(stage),
          .batch = batch,
          .shape = {batch, 32, 32, 6},
          .dtype = DType::f32,
          .device = 0,
          .variant = "sample"};
}
}  // namespace

TEST_CASE("GraphKey tells apart every field and prints them") {
  const GraphKey base = key(4);
  std::vector<GraphKey> others(6, base);
  others[0].stage = "sr3_64";
  others[1].batch = 8;
  others[2].shape = {4, 64, 64, 6};
  others[3].dtype = DType::bf16;
  others[4].device = 1;
  others[5].variant = "sample bf16";
  std::unordered_set<GraphKey, GraphKeyHash> set{base};
  for (const GraphKey& k : others) {
    CHECK_FALSE(k == base);
    set.insert(k);
  }
  CHECK(set.size() == 7);
  CHECK(GraphKeyHash{}(key(4)) == GraphKeyHash{}(base));
  CHECK(base.str() == "sr3 b4 [4, 32, 32, 6] f32 cuda:0 sample");
}

TEST_CASE("GraphCache warms a key up eagerly, captures it once, then replays it") {
  Cache cache(4, /*warmup_runs=*/2);
  const GraphKey k = key(1);
  CHECK(cache.next(k) == Action::eager);
  CHECK(cache.next(k) == Action::eager);
  CHECK(cache.next(k) == Action::capture);
  CHECK(cache.next(k) == Action::capture);  // until the capture is stored or reported failed
  cache.store(k, 11);
  for (int i = 0; i < 3; ++i) CHECK(cache.next(k) == Action::replay);
  CHECK(cache.graph(k) == 11);
  CHECK(cache.next(key(2)) == Action::eager);  // another batch is another graph
  const Cache::Stats& s = cache.stats();
  CHECK((s.eager == 3 && s.captures == 1 && s.replays == 3 && s.evictions == 0));
  check_throws_with([&] { cache.store(k, 12); }, {"already stored"});
  check_throws_with([&] { (void)cache.graph(key(2)); }, {"no graph", "b2"});

  Cache immediate(2, /*warmup_runs=*/0);
  CHECK(immediate.next(k) == Action::capture);
}

TEST_CASE("GraphCache keeps a failed key eager and evicts the least recently replayed graph") {
  Cache cache(2, 0);
  const GraphKey a = key(1), b = key(2), c = key(4), bad = key(1, "cascade");
  for (const GraphKey& k : {a, b}) {
    REQUIRE(cache.next(k) == Action::capture);
    cache.store(k, static_cast<int>(k.batch));
  }
  CHECK(cache.next(a) == Action::replay);  // a is now the most recently used: b goes first
  REQUIRE(cache.next(c) == Action::capture);
  cache.store(c, 4);
  CHECK(cache.size() == 2);
  CHECK(cache.contains(a));
  CHECK_FALSE(cache.contains(b));
  CHECK(cache.contains(c));
  CHECK(cache.stats().evictions == 1);
  CHECK(cache.next(b) == Action::capture);  // evicted: captured again when next asked

  REQUIRE(cache.next(bad) == Action::capture);
  cache.capture_failed(bad);
  for (int i = 0; i < 3; ++i) CHECK(cache.next(bad) == Action::eager);
  CHECK(cache.stats().failed == 1);

  cache.clear();  // stale addresses: graphs and warm-ups go, failures stay
  CHECK(cache.size() == 0);
  CHECK(cache.next(a) == Action::capture);
  CHECK(cache.next(bad) == Action::eager);
}

TEST_CASE("IRIS_CUDA_GRAPHS is off unless 1, and refuses other values") {
  CHECK_FALSE(parse_cuda_graphs_switch(nullptr));
  CHECK(parse_cuda_graphs_switch("1"));
  CHECK_FALSE(parse_cuda_graphs_switch("0"));
  check_throws_with([] { parse_cuda_graphs_switch("yes"); }, {"IRIS_CUDA_GRAPHS", "0 or 1", "yes"});
  check_throws_with([] { parse_cuda_graphs_switch(""); }, {"IRIS_CUDA_GRAPHS"});
  ::setenv("IRIS_CUDA_GRAPHS", "1", 1);
  CHECK(cuda_graphs_enabled());
  ::unsetenv("IRIS_CUDA_GRAPHS");
  CHECK_FALSE(cuda_graphs_enabled());
}
