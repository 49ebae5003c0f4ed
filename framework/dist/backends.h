// Internal: how init_distributed reaches the backends, each compiled only when its library is there.
#pragma once

#include <memory>

#include "framework/dist/communicator.h"

namespace iris::dist::internal {

std::shared_ptr<Communicator> make_local_communicator(Device device, double timeout_s);
// Throws iris::Error when Iris was built without MPI (IRIS_MPI=OFF).
std::shared_ptr<Communicator> make_mpi_communicator(const LauncherInfo& launcher, double timeout_s);
// Throws iris::Error when Iris was built without NCCL (IRIS_NCCL=OFF).
std::shared_ptr<Communicator> make_nccl_communicator(const LauncherInfo& launcher, Device device,
                                                     double timeout_s);

// MPI state for abort_job: the world rank when MPI is initialised and not finalised (else -1), and
// MPI_Abort on MPI_COMM_WORLD when it is (else nothing). Defined in mpi_communicator.cpp (built without MPI:
// -1, and nothing to abort).
int mpi_world_rank_if_initialized();
void mpi_abort_if_initialized(int code);

}  // namespace iris::dist::internal
