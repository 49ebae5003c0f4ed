// Internal: MPI start-up and error checks shared by the MPI and NCCL backends (only with IRIS_WITH_MPI).
#pragma once

#ifdef IRIS_WITH_MPI
// The C API only: MPI's C++ bindings are deprecated and drag in warnings.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include "framework/dist/communicator.h"

namespace iris::dist::internal {

// Throws iris::Error naming the call, the rank and MPI's own message.
[[noreturn]] void throw_mpi_error(int code, const char* expr, const char* file, int line);

// Initialises MPI once per process (MPI_THREAD_MULTIPLE requested, so that the watchdog thread may call
// MPI_Abort while the main thread waits in a collective), makes MPI errors return codes instead of aborting,
// and registers MPI_Finalize to run at exit. Checks that MPI's world agrees with what the launcher said.
void mpi_ensure_initialized(const LauncherInfo& launcher);

struct NodePlacement {
  int local_rank = 0;
  int local_size = 1;
};
// This process's place on its node: the launcher's local rank and size where it gives them, otherwise
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) of `comm` (a collective over `comm`).
NodePlacement mpi_node_placement(MPI_Comm comm, const LauncherInfo& launcher);

}  // namespace iris::dist::internal

#define IRIS_MPI_CHECK(expr)                                                            \
  do {                                                                                  \
    const int iris_mpi_rc_ = (expr);                                                    \
    if (iris_mpi_rc_ != MPI_SUCCESS) [[unlikely]]                                       \
      ::iris::dist::internal::throw_mpi_error(iris_mpi_rc_, #expr, __FILE__, __LINE__); \
  } while (0)

#endif  // IRIS_WITH_MPI
