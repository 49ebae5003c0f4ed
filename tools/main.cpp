// iris: one program for sharding data, training, sampling, evaluating, inspecting checkpoints and benchmarking.
#include <cstdio>
#include <exception>

#include "framework/core/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"iris: diffusion models (SR3, cascades) on CPUs and GPUs"};
  app.require_subcommand(1);
  iris::tools::register_version(app);
  iris::tools::register_bench_conv(app);
  iris::tools::register_bench(app);
  iris::tools::register_train(app);
  iris::tools::register_sample(app);
  iris::tools::register_cascade(app);
  iris::tools::register_ckpt(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const iris::Error& e) {
    std::fprintf(stderr, "iris: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "iris: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
