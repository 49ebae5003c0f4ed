// Helpers of the MPI suite (test_mpi, run by ctest under `mpirun -np 2` and `-np 3`). Every rank runs every
// test case; collectives inside a case must therefore be reached by every rank, so cases use CHECK (not
// REQUIRE) before a collective, and a REQUIRE only where every rank fails alike.
#pragma once

// The C API only: MPI's C++ bindings are deprecated.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <memory>
#include <vector>

#include "tests/common/dp_model.h"

namespace iris::mpitest {

// The communicator of the whole job (init_distributed(auto) under mpirun: the MPI backend), made once.
inline std::shared_ptr<dist::Communicator> world() {
  static std::shared_ptr<dist::Communicator> comm = dist::init_distributed();
  return comm;
}

// Every rank's copy of a host vector, gathered: result[r] is rank r's.
inline std::vector<std::vector<double>> gather_all(dist::Communicator& comm,
                                                   const std::vector<double>& mine) {
  Tensor in = Tensor::from_vector(mine, {static_cast<int64_t>(mine.size())}, DType::f64, Device::cpu());
  Tensor out = Tensor::empty({comm.size(), in.numel()}, DType::f64);
  comm.all_gather(in, out);
  std::vector<std::vector<double>> all;
  for (int r = 0; r < comm.size(); ++r) all.push_back(out.select(0, r).to_vector<double>());
  return all;
}

}  // namespace iris::mpitest
