// The `iris` program's subcommands. Each lives in its own file (tools/cmd_<name>.cpp) and registers itself
// on the CLI11 app; main.cpp lists them.
#pragma once

#include <CLI/CLI.hpp>

namespace iris::tools {

void register_version(CLI::App& app);
void register_bench_conv(CLI::App& app);
void register_bench(CLI::App& app);
void register_train(CLI::App& app);
void register_bench_gpu(CLI::App& app);
void register_shard(CLI::App& app);
void register_info(CLI::App& app);
void register_config(CLI::App& app);
void register_eval(CLI::App& app);
void register_sample(CLI::App& app);
void register_cascade(CLI::App& app);
void register_ckpt(CLI::App& app);
void register_cas(CLI::App& app);
void register_fd(CLI::App& app);
void register_sweep(CLI::App& app);
void register_rate(CLI::App& app);

}  // namespace iris::tools
