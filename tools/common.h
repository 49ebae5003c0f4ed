// Helpers shared by the iris subcommands: device choice and the start-up banner (number formatting is in
// framework/core/format.h).
#pragma once

#include <cstdint>
#include <string>

#include "framework/core/device.h"
#include "framework/core/format.h"  // with_commas, human_bytes, human_duration

namespace iris::tools {

// "auto" -> the first GPU when there is one, else the CPU; otherwise Device::parse. Checks the device exists.
Device resolve_device(const std::string& name);
// One line on what this process computes with: device, threads, BLAS path.
std::string compute_banner(Device device);

}  // namespace iris::tools
