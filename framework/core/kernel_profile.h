// Where a CPU step's time goes, kernel by kernel: when enabled, every CPU kernel that an op reaches through
// IRIS_DISPATCH_DEVICE (framework/ops/dispatch.h) is timed with the steady clock, and the calls and time are
// summed per kernel name. What the kernels do not account for is the framework's own time (autograd, tensor
// bookkeeping, allocation). `iris bench --profile` prints the table. Off by default: then the cost is one
// relaxed atomic load per kernel call. GPU kernels run asynchronously and are not timed here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace iris {

void set_kernel_profiling(bool on);
bool kernel_profiling();

struct KernelProfileRow {
  std::string kernel;
  int64_t calls = 0;
  double ms = 0;  // wall time inside the kernel, summed over calls
};
std::vector<KernelProfileRow> kernel_profile();  // sorted by time, most first
void reset_kernel_profile();

// Times the full expression it is a temporary of (the kernel call) when profiling is on. Kernels called from
// inside another kernel, or from pool threads, are part of their caller's time and not recorded again.
class KernelTimer {
 public:
  explicit KernelTimer(const char* kernel);
  ~KernelTimer();
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;

 private:
  const char* kernel_ = nullptr;  // null: not timing
  bool counted_ = false;          // entered t_depth (profiling was on)
  bool nested_ = false;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace iris
