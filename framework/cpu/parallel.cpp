#include "framework/cpu/parallel.h"

#include <atomic>
#include <cstdlib>
#include <string>


namespace iris {

namespace {
int default_threads() {
  for (const char* var : {"IRIS_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char* v = std::getenv(var);
    if (v && *v) {
      const int n = std::atoi(v);
      if (n > 0) return n;
    }
  }
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
