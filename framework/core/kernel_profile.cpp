#include "framework/core/kernel_profile.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

namespace iris {

namespace {
std::atomic<bool> g_on{false};
std::mutex g_mutex;
std::map<std::string, KernelProfileRow>& table() {
  static std::map<std::string, KernelProfileRow> rows;
  return rows;
}
thread_local int t_depth = 0;  // kernels running on this thread (a kernel may dispatch another)
}  // namespace

void set_kernel_profiling(bool on) {
  g_on.store(on, std::memory_order_relaxed);
}

bool kernel_profiling() {
  return g_on.load(std::memory_order_relaxed);
}

std::vector<KernelProfileRow> kernel_profile() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<KernelProfileRow> rows;
  for (const auto& [name, row] : table()) rows.push_back(row);
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
  return rows;
}

void reset_kernel_profile() {
  std::lock_guard<std::mutex> lock(g_mutex);
  table().clear();
}

KernelTimer::KernelTimer(const char* kernel) {
  if (!kernel_profiling()) return;
  nested_ = t_depth++ > 0;
  counted_ = true;
  if (nested_) return;
  kernel_ = kernel;
  t0_ = std::chrono::steady_clock::now();
}

KernelTimer::~KernelTimer() {
  if (counted_) --t_depth;
  if (!kernel_) return;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
  std::lock_guard<std::mutex> lock(g_mutex);
  KernelProfileRow& row = table()[kernel_];
  row.kernel = kernel_;
  ++row.calls;
  row.ms += ms;
}

}  // namespace iris
