// Helpers shared by the iris subcommands: device choice, number formatting, the start-up banner.
#pragma once

#include <cstdint>
#include <string>

#include "framework/core/device.h"

namespace iris::tools {

// "auto" -> the first GPU when there is one, else the CPU; otherwise Device::parse. Checks the device exists.
Device resolve_device(const std::string& name);
std::string with_commas(int64_t n);     // 97807491 -> "97,807,491"
std::string human_bytes(double bytes);  // "11.9 GiB"
std::string human_duration(double seconds);  // "1h02m", "3m05s", "12.3s"
// One line on what this process computes with: device, threads, BLAS path.
std::string compute_banner(Device device);

}  // namespace iris::tools
