// `iris version`: what this build contains and which compute paths it will use on this machine.
#include <cstdio>

#include "framework/core/device.h"
#include "framework/cpu/blas.h"
#include "framework/cpu/parallel.h"
#include "tools/commands.h"

namespace iris::tools {

void register_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the build configuration and the compute paths in use");
  cmd->callback([] {
#ifdef IRIS_WITH_CUDA
    const char* cuda = "on";
#else
    const char* cuda = "off";
#endif
#ifdef IRIS_WITH_MPI
    const char* mpi = "on";
#else
    const char* mpi = "off";
#endif
    std::printf("iris 0.1.0 (CUDA %s, MPI %s)\n", cuda, mpi);
    std::printf("cpu: %d threads; BLAS: %s\n", num_threads(), cpu::blas_info().c_str());
    std::printf("cuda devices: %d\n", cuda_device_count());
  });
}

}  // namespace iris::tools
