// Running `iris` under mpirun from the system tests of label mpi.
#pragma once

#include <string>

#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

namespace iris::test {

// "mpirun ... -np N " (root allowed, oversubscription allowed: CI has 2 cores), one thread per rank.
inline std::string mpirun(int np) {
  return std::string(IRIS_MPIRUN) + " --allow-run-as-root --oversubscribe -np " + std::to_string(np) +
         " -x OMP_NUM_THREADS=1 ";
}

// Runs a shell command, capturing stdout and stderr.
inline RunResult run_cmd(const std::string& cmd) {
  return run_shell(cmd);
}

}  // namespace iris::test
