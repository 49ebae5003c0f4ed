// Helpers for system tests that run the `iris` program as separate processes: a tiny synthetic shard set,
// a tiny SR3 config, running iris and waiting for files.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "framework/nn/module.h"

namespace iris::test {

// The iris binary built alongside the tests.
const char* iris_binary();

// A fresh empty folder under the system temp dir, named after `tag`.
std::string fresh_dir(const std::string& tag);

// Writes `n` synthetic 16x16 grey images (4x4 blocks) with labels 0..2 and 4x4 low-res copies into `dir`.
void write_tiny_shards(const std::string& dir, int n);

// A config for a tiny SR3 (16x16 from 4x4, dropout and flips on) reading shards from `data_dir`; tests
// change it with --set.
std::string write_tiny_config(const std::string& dir, const std::string& data_dir);

struct RunResult {
  int exit_code = -1;
  std::string output;
};
// Largest |a - b| / (|b| + 1e-3) over all parameters of two state dicts with the same keys: differences that
// only summation order explains stay ~1e-5.
double max_rel_diff(const nn::StateDict& a, const nn::StateDict& b);

// Runs a shell command, capturing stdout and stderr.
RunResult run_shell(const std::string& cmd);
// Runs iris with `args` (shell-quoted by the caller where needed), capturing stdout+stderr.
RunResult run_iris(const std::string& args);
// Runs `iris <args>` (split at spaces; iris itself, not a shell, so the signal reaches it) with its output
// discarded until `ready()` holds (polled every 20 ms; at most 60 s), then kills it with SIGKILL. True when
// it died of that signal, false when it had ended before.
bool kill_iris_when(const std::string& args, const std::function<bool()>& ready);
// Runs iris with `args` after the shell commands `setup` (e.g. "ulimit -f 100;"), in the same process.
RunResult run_iris_after(const std::string& setup, const std::string& args);
// Fails the current test (without stopping it) when `text` is not in the output, showing the output.
void check_contains(const RunResult& r, const std::string& text);
// Checks that iris failed as it should on bad input: exit status 1 (an error, not a crash) and an output
// holding every one of `parts`.
void expect_error(const RunResult& r, const std::vector<std::string>& parts);

}  // namespace iris::test
