// CPU threading: OpenMP underneath, behind two calls. Work is split over index ranges of the *output*, so
// each output element is computed by exactly one thread in a fixed order: results do not depend on the
// number of threads.
#pragma once

#include <algorithm>
#include <cstdint>

namespace iris {

int num_threads();
void set_num_threads(int n);  // also sets OpenBLAS's thread count
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
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
  const int64_t per = (n + chunks - 1) / chunks;
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = begin + c * per;
    const int64_t hi = std::min(end, lo + per);
    if (lo < hi) f(lo, hi);
  }
}
}  // namespace cpu

}  // namespace iris
