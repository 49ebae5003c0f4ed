// Helpers of the interop suite (label interop): Iris's files checked by the real clients (TensorBoard,
// safetensors, numpy) from the virtual environment tools/scripts/interop_venv.sh makes in the build folder.
// Without it every case prints "skipped: no interop environment ..." (ctest reports it skipped) and returns.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "diffusion/checkpoint.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

#define IRIS_INTEROP_BEGIN()                                            \
  do {                                                                  \
    if (!std::filesystem::exists(IRIS_INTEROP_PYTHON)) {                \
      MESSAGE("skipped: no interop environment at " IRIS_INTEROP_PYTHON \
              " (make it with tools/scripts/interop_venv.sh BUILD)");   \
      return;                                                           \
    }                                                                   \
  } while (0)

namespace iris::test {

// A tiny run trained for two steps in ROOT (shards in ROOT/data, the config beside them, the run in ROOT/run):
// its config file and its step-2 checkpoint.
struct TinyRun {
  std::string config, checkpoint;
};
inline TinyRun train_tiny_run(const std::string& root) {
  write_tiny_shards(root + "/data", 16);
  TinyRun t{write_tiny_config(root, root + "/data"),
            root + "/run/checkpoints/" + diffusion::checkpoint_name(2)};
  const RunResult trained = run_iris("train --config " + t.config + " --threads 1 --device cpu --run " +
                                     root + "/run --set train.steps=2");
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.output);
  return t;
}

// Runs tests/interop/<script> with the environment's Python and parses what it prints as JSON.
inline nlohmann::json run_python_json(const std::string& script, const std::string& args) {
  const RunResult r = run_shell(std::string(IRIS_INTEROP_PYTHON) + " tests/interop/" + script + " " + args);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const size_t start = r.output.find('{');
  REQUIRE_MESSAGE(start != std::string::npos, r.output);
  return nlohmann::json::parse(r.output.substr(start));
}

}  // namespace iris::test
