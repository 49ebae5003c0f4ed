// CPU threading for kernels. Work is split over index ranges of the *output*, in chunks fixed by the range
// and the grain (not by the thread count), so each output element is computed by one thread in a fixed
// order: results do not depend on the number of threads. The threads are Iris's own pool
// (framework/cpu/thread_pool.h), which sleeps when idle instead of spinning.
#pragma once

#include <algorithm>
#include <cstdint>

#include "framework/cpu/thread_pool.h"

namespace iris {

// Threads used by CPU kernels: IRIS_NUM_THREADS or OMP_NUM_THREADS when set, else the usable cores.
int num_threads();
void set_num_threads(int n);  // n <= 0 restores the default
bool in_parallel_region();

namespace cpu {
// Calls f(lo, hi) over [begin, end) in chunks of at least `grain` indices, in parallel when worth it.
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int threads = num_threads();
  if (threads <= 1 || n <= grain || in_parallel_region()) {
    f(begin, end);
    return;
  }
  // A few chunks per thread so that a thread slowed by another process does not hold everyone up.
  const int64_t chunks = std::min<int64_t>(4 * static_cast<int64_t>(threads), (n + grain - 1) / grain);
  const int64_t per = (n + chunks - 1) / chunks;
  run_parallel(chunks, threads, [&](int64_t c, int) {
    const int64_t lo = begin + c * per;
    const int64_t hi = std::min(end, lo + per);
    if (lo < hi) f(lo, hi);
  });
}

// Threads to use for `tasks` independent tasks: 1 inside another parallel region.
inline int task_threads(int64_t tasks) {
  if (tasks <= 1 || in_parallel_region()) return 1;
  return static_cast<int>(std::min<int64_t>(num_threads(), tasks));
}

// f(task, thread) for task in [0, tasks), dynamically scheduled over `threads` threads (thread < threads).
// For tasks that write disjoint outputs, so which thread runs which task does not change any result; dynamic
// scheduling keeps the cores busy when one of them is also serving another process. An exception thrown by
// f reaches the caller (the first one, when several tasks throw).
template <class F>
void run_tasks(int64_t tasks, int threads, F&& f) {
  if (threads <= 1) {
    for (int64_t t = 0; t < tasks; ++t) f(t, 0);
    return;
  }
  run_parallel(tasks, threads, [&](int64_t t, int worker) { f(t, worker); });
}
}  // namespace cpu

}  // namespace iris
