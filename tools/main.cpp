// iris: one program for sharding data, training, sampling, evaluating, inspecting checkpoints and
// benchmarking.
#include <cstdio>
#include <exception>
#include <string>

#include "framework/core/error.h"
#include "framework/cpu/blas.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/communicator.h"
#include "tools/commands.h"

namespace {
// Under a launcher (mpirun, srun) an error on one rank must end the whole job, or the other ranks would wait
// in their next collective forever: abort_job prints "rank R: ..." and calls MPI_Abort. A plain process
// just returns 1.
int fail(const char* what) {
  bool distributed = false;
  try {
    distributed = iris::dist::detect_launcher().detected();
  } catch (...) {
    distributed = true;  // malformed launcher variables: still a launched job
  }
  if (distributed) iris::dist::abort_job(std::string("iris: error: ") + what);
  std::fprintf(stderr, "iris: error: %s\n", what);
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"iris: diffusion models (SR3, cascades) on CPUs and GPUs"};
  app.require_subcommand(1);
  iris::tools::register_version(app);
  iris::tools::register_bench_conv(app);
  iris::tools::register_bench(app);
  iris::tools::register_train(app);
  iris::tools::register_bench_gpu(app);
  iris::tools::register_shard(app);
  iris::tools::register_info(app);
  iris::tools::register_config(app);
  iris::tools::register_eval(app);
  iris::tools::register_sample(app);
  iris::tools::register_cascade(app);
  iris::tools::register_ckpt(app);
  iris::tools::register_cas(app);
  iris::tools::register_fd(app);
  iris::tools::register_sweep(app);
  iris::tools::register_rate(app);
  try {
    iris::cpu::check_cpu_support();
    (void)iris::num_threads();  // a malformed IRIS_NUM_THREADS is an error before any work starts
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const iris::Error& e) {
    // Users get the message; the source location only for internal errors (bugs), where it helps.
    const bool internal = e.message().rfind("internal error", 0) == 0;
    return fail(internal ? e.what() : e.message().c_str());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
