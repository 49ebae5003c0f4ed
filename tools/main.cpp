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
  iris::tools::register_shard(app);
  iris::tools::register_info(app);
  iris::tools::register_config(app);
  iris::tools::register_eval(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const iris::Error& e) {
    // Users get the message; the source location only for internal errors (bugs), where it helps.
    const bool internal = e.message().rfind("internal error", 0) == 0;
    std::fprintf(stderr, "iris: error: %s\n", internal ? e.what() : e.message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "iris: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
