// test_mpi's entry point. Under mpirun every rank runs the doctest cases; rank 0 reports in full, the others
// print failures only, and all ranks exit non-zero when any rank had a failure. Without a launcher only the
// "plain" suite makes sense (ctest runs it with -ts=plain) and no MPI is touched here.
//
// Two extra modes are the failure-handling tests (run by ctest through tests/mpi/expect_job_failure.cmake):
//   --throw-on-rank=R  rank R throws an iris::Error in the middle of a loop of all_reduces; the top-level
//                      catch calls abort_job, which must end every rank within seconds with R's message.
//   --hang-on-rank=R   rank R stops calling collectives (sleeps); the others' collective watchdog
//                      (IRIS_COLLECTIVE_TIMEOUT) must end the job with a message naming the all_reduce.
#define DOCTEST_CONFIG_IMPLEMENT
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "tests/mpi/mpi_test_util.h"

using namespace iris;

namespace {

int flag_value(int argc, char** argv, const char* flag) {
  const size_t n = std::strlen(flag);
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], flag, n) == 0 && argv[i][n] == '=') return std::atoi(argv[i] + n + 1);
  return -1;
}

// The failure scenarios: a loop of all_reduces that rank `bad` leaves at step 2.
int failure_scenario(int bad, bool hang) {
  auto comm = dist::init_distributed();
  std::printf("rank %d of %d: %s\n", comm->rank(), comm->size(), comm->describe().c_str());
  std::fflush(stdout);
  Tensor t = Tensor::ones({1000});
  for (int step = 0; step < 5; ++step) {
    if (comm->rank() == bad && step == 2) {
      if (hang) {
        std::this_thread::sleep_for(std::chrono::seconds(60));
      } else {
        IRIS_THROW("injected failure on rank ", bad, " at step ", step);
      }
    }
    comm->all_reduce(t, dist::Reduce::sum);
  }
  std::printf("rank %d: the loop finished, which it must not\n", comm->rank());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int throw_rank = flag_value(argc, argv, "--throw-on-rank");
  const int hang_rank = flag_value(argc, argv, "--hang-on-rank");
  if (throw_rank >= 0 || hang_rank >= 0) {
    try {
      return failure_scenario(throw_rank >= 0 ? throw_rank : hang_rank, hang_rank >= 0);
    } catch (const std::exception& e) {
      dist::abort_job(std::string("test_mpi: ") + e.what());
    }
  }

  const bool launched = dist::detect_launcher().detected();
  doctest::Context ctx(argc, argv);
  int rank = 0;
  if (launched) {
    rank = mpitest::world()->rank();
    if (rank != 0) ctx.setOption("minimal", true);
  }
  const int result = ctx.run();
  if (ctx.shouldExit() || !launched) return result;
  // Every rank learns whether any rank failed, so that the job's exit status says it.
  const double failed =
      dist::reduce_values(*mpitest::world(), {result != 0 ? 1.0 : 0.0}, dist::Reduce::sum)[0];
  if (rank == 0 && failed > 0)
    std::fprintf(stderr, "test_mpi: %g of %d ranks had failures (see their output above)\n", failed,
                 mpitest::world()->size());
  return failed > 0 ? 1 : 0;
}
