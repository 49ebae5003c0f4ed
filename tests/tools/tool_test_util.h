// Running the built `iris` program from tests: its exit code and its output (stdout and stderr together).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace iris::test {

struct IrisRun {
  int code = -1;
  std::string out;  // stdout and stderr, interleaved
  bool has(const std::string& text) const { return out.find(text) != std::string::npos; }
};

// Single-quotes an argument for the shell.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `iris <args>` (args already quoted as needed) with plain progress lines (stderr is a pipe anyway).
inline IrisRun run_iris(const std::string& args) {
  const std::string cmd = "IRIS_PROGRESS=lines " + shell_quote(IRIS_BINARY) + " " + args + " 2>&1";
  IrisRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace iris::test
