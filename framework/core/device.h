// Where a tensor lives: the CPU or CUDA device N. Part of every tensor from the start, so that every op
// validates and dispatches on it.
#pragma once

#include <string>

namespace iris {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  // Parses "cpu", "cuda", "cuda:N"; throws iris::Error on anything else.
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;
  bool operator==(const Device& o) const { return type == o.type && (type == DeviceType::cpu || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// True when Iris was compiled with CUDA support and at least one CUDA device is visible.
bool cuda_available();
int cuda_device_count();

}  // namespace iris
