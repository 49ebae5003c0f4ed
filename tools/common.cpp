#include "tools/common.h"

#include <cstdio>

#include "framework/core/error.h"
#include "framework/cpu/blas.h"
#include "framework/cpu/parallel.h"

namespace iris::tools {

Device resolve_device(const std::string& name) {
  if (name == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  const Device d = Device::parse(name);
  if (d.is_cuda()) {
    IRIS_CHECK(cuda_available(), "device ", d.str(), " requested, but ",
#ifdef IRIS_WITH_CUDA
               "no CUDA device is visible"
#else
               "this build of Iris has no CUDA support (configure with CUDA to use GPUs)"
#endif
    );
    IRIS_CHECK(d.index < cuda_device_count(), "device ", d.str(), " requested, but only ", cuda_device_count(),
               " CUDA device(s) are visible");
  }
  return d;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return n < 0 ? "-" + s : s;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string human_duration(double seconds) {
  char buf[32];
  if (seconds < 60) {
    std::snprintf(buf, sizeof(buf), "%.1fs", seconds);
  } else if (seconds < 3600) {
    const int s = static_cast<int>(seconds + 0.5);
    std::snprintf(buf, sizeof(buf), "%dm%02ds", s / 60, s % 60);
  } else {
    const int m = static_cast<int>(seconds / 60 + 0.5);
    std::snprintf(buf, sizeof(buf), "%dh%02dm", m / 60, m % 60);
  }
  return buf;
}

std::string compute_banner(Device device) {
  if (device.is_cuda()) return "device " + device.str();
  return "device cpu, " + std::to_string(num_threads()) + " threads, BLAS " + cpu::blas_info();
}

}  // namespace iris::tools
