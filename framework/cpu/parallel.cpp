#include "framework/cpu/parallel.h"

#include <omp.h>

#include <atomic>

#include "framework/cpu/blas.h"

namespace iris {

namespace {
std::atomic<int> g_threads{0};  // 0: not chosen yet, use OpenMP's default (the core count or OMP_NUM_THREADS)
}

int num_threads() {
  int n = g_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

void set_num_threads(int n) {
  g_threads.store(n > 0 ? n : 0);
  cpu::blas_set_num_threads(num_threads());
}

bool in_parallel_region() { return omp_in_parallel() != 0; }

}  // namespace iris
