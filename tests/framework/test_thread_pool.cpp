// The CPU thread pool: calls of different widths in quick succession (a worker that a narrower call does
// not need must never touch that call's state), exceptions carried back to the caller, nested calls.
#include <atomic>

#include "framework/cpu/thread_pool.h"
#include "tests/common/test_util.h"

using namespace iris;

TEST_CASE("thread pool: alternating wide and narrow calls run every task exactly once") {
  std::vector<std::atomic<int>> hits(64);
  for (int round = 0; round < 10000; ++round) {
    const int threads = round % 2 ? 12 : 2 + round % 3;  // more workers than cores on purpose
    const int64_t tasks = 1 + round % 64;
    for (int64_t t = 0; t < tasks; ++t) hits[t] = 0;
    cpu::run_parallel(tasks, threads, [&](int64_t t, int worker) {
      REQUIRE(worker < threads);
      hits[t].fetch_add(1);
    });
    for (int64_t t = 0; t < tasks; ++t) REQUIRE(hits[t].load() == 1);
  }
}

TEST_CASE("thread pool: the first exception of a task reaches the caller, nested calls run inline") {
  CHECK_THROWS_AS(cpu::run_parallel(100, 4,
                                    [](int64_t t, int) {
                                      if (t == 37) IRIS_THROW("task 37 failed");
                                    }),
                  Error);
  std::atomic<int> inner{0};
  cpu::run_parallel(8, 4, [&](int64_t, int) {
    CHECK(cpu::inside_parallel_call());
    cpu::run_parallel(5, 4, [&](int64_t, int worker) {
      CHECK(worker == 0);  // nested: serial on the calling thread
      inner.fetch_add(1);
    });
  });
  CHECK(inner.load() == 40);
  CHECK(!cpu::inside_parallel_call());
}
