// Helpers shared by the iris subcommands: device choice and the start-up banner (number formatting is in
// framework/core/format.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "framework/core/device.h"
#include "framework/core/format.h"  // with_commas, human_bytes, human_duration

namespace iris::dist {
class Communicator;
}

namespace iris::tools {

// "auto" -> the first GPU when there is one, else the CPU; otherwise Device::parse. Checks the device exists.
Device resolve_device(const std::string& name);
// Under a launcher (mpirun, srun): a communicator over every rank of the job, each rank on its node-local GPU
// (`device` is updated to it). A plain process gets null and never initialises MPI.
std::shared_ptr<dist::Communicator> launch_communicator(Device& device);
// One line on what this process computes with: device, threads, BLAS path.
std::string compute_banner(Device device);

}  // namespace iris::tools
