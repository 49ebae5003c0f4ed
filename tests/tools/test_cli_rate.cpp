// `iris rate` run as the built program (no browser needed): what it refuses, naming it, and a server that
// creates its study, says where it listens and stops cleanly on SIGTERM, keeping the study for a restart.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/rate/rate_test_util.h"
#include "tests/tools/tool_test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

std::string q(const std::string& s) {
  return shell_quote(s);
}

// Waits (up to 60 s) until `path` holds `text`.
bool wait_for_text(const std::string& path, const std::string& text) {
  for (int i = 0; i < 2400; ++i) {
    if (read_text(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

// True once `pid` has exited (a zombie counts: it holds no files, no lock).
bool gone(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return stat.empty() || (paren != std::string::npos && stat.compare(paren + 2, 1, "Z") == 0);
}

// Ends the background server if the test stops before it does (a failed REQUIRE).
struct KillAtEnd {
  pid_t pid = 0;
  ~KillAtEnd() {
    if (pid > 0) ::kill(pid, SIGKILL);
  }
};

}  // namespace

TEST_CASE("iris rate serve and report refuse what they cannot do, naming it") {
  TempDir dir("cli-rate-errors");
  const auto methods = write_two_methods(dir.path(), 3);
  const std::string study = dir.file("study");
  IrisRun r = run_iris("rate serve --study " + q(study) + " --port 0");
  CHECK(r.code == 1);
  CHECK(r.has("holds no study yet: create one with --method NAME=FILE"));
  r = run_iris("rate serve --study " + q(study) + " --host 0.0.0.0 --method " + q(methods[0]));
  CHECK(r.code == 1);
  CHECK(r.has("--host 0.0.0.0 makes the study reachable from other machines"));
  CHECK(r.has("--token-file"));
  r = run_iris("rate serve --study " + q(study) + " --token short --method " + q(methods[0]));
  CHECK(r.code == 1);
  CHECK(r.has("study token must be 8-256 characters"));
  r = run_iris("rate serve --study " + q(study) + " --display 5 --method " + q(methods[0]));
  CHECK(r.code == 1);
  CHECK(r.has("--display 5"));
  // A method sampled from other inputs: its truth differs.
  SampleFile other;
  other.images = pattern_images(3, 7);
  other.truth = pattern_images(3, 8);
  const std::string odd = dir.file("odd.h5");
  write_sample_file(odd, other);
  r = run_iris("rate serve --study " + q(study) + " --port 0 --method " + q(methods[0]) + " --method " +
               q("odd=" + odd));
  CHECK(r.code == 1);
  CHECK(r.has("truth images of method 'odd' ('" + odd + ":images') differ"));
  CHECK_FALSE(std::filesystem::exists(study + "/study.json"));
  r = run_iris("rate report --study " + q(study));
  CHECK(r.code == 1);
  CHECK(r.has("is not a study folder"));
}

TEST_CASE("iris rate serve creates the study, prints its link and the SSH tunnel, and stops on SIGTERM") {
  TempDir dir("cli-rate-serve");
  const auto methods = write_two_methods(dir.path(), 4);
  const std::string study = dir.file("study"), log = dir.file("serve.log"), pid_file = dir.file("pid");
  const std::string serve = "rate serve --study " + q(study) + " --port 0 --images-per-method 2";
  // In the background, its output to a file; the shell prints its pid.
  IrisRun r = run_iris(serve + " --method " + q(methods[0]) + " --method " + q(methods[1]) + " > " + q(log) +
                       " 2>&1 & echo $! > " + q(pid_file));
  REQUIRE(r.code == 0);
  REQUIRE(wait_for_text(log, "serving at http://127.0.0.1:"));
  const std::string out = read_text(log);
  CHECK(out.find("created the study") != std::string::npos);
  CHECK(out.find("4 images x 2 methods, 4 trials per rater") != std::string::npos);
  CHECK(out.find("ssh -N -L ") != std::string::npos);
  CHECK(out.find("0 answers so far") != std::string::npos);
  const pid_t pid = static_cast<pid_t>(std::stol(read_text(pid_file)));
  KillAtEnd guard{pid};
  // A second server on the same study is refused while this one runs.
  r = run_iris(serve);
  CHECK(r.code == 1);
  CHECK(r.has("being served by another process"));
  REQUIRE(::kill(pid, SIGTERM) == 0);
  CHECK(wait_for_text(log, "stopped with 0 answers"));
  for (int i = 0; i < 400 && !gone(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  guard.pid = 0;
  // The study stays; a restart may not change its design; a report needs answers.
  r = run_iris("rate serve --study " + q(study) + " --port 0 --images-per-method 3");
  CHECK(r.code == 1);
  CHECK(r.has("created with --images-per-method 2, not 3"));
  r = run_iris("rate report --study " + q(study));
  CHECK(r.code == 1);
  CHECK(r.has("has no answers yet"));
}
