#include "framework/cpu/parallel.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "framework/core/error.h"


namespace iris {

namespace {
int default_threads() {
  // IRIS_NUM_THREADS is ours: a typo there must not silently become "all cores". OMP_NUM_THREADS belongs
  // to OpenMP, whose syntax allows more ("4,2"): its leading number is used when it has one.
  if (const char* v = std::getenv("IRIS_NUM_THREADS"); v && *v) {
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    IRIS_CHECK(*end == '\0' && n > 0 && n <= 1 << 16, "IRIS_NUM_THREADS='", v,
               "' is not a positive number of threads");
    return static_cast<int>(n);
  }
  if (const char* v = std::getenv("OMP_NUM_THREADS"); v && std::atoi(v) > 0) return std::atoi(v);
  return cpu::available_cores();
}
std::atomic<int> g_threads{0};  // 0: not chosen yet
}  // namespace

int num_threads() {
  int n = g_threads.load();
  if (n <= 0) {
    n = default_threads();
    g_threads.store(n);
  }
  return n;
}

void set_num_threads(int n) {
  g_threads.store(n > 0 ? n : default_threads());
}

bool in_parallel_region() { return cpu::inside_parallel_call(); }

}  // namespace iris
