#include "tests/system/system_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "data/shard.h"
#include "tests/common/test_util.h"

namespace iris::test {

namespace fs = std::filesystem;

const char* iris_binary() {
  return IRIS_BINARY;
}

void check_contains(const RunResult& r, const std::string& text) {
  CHECK_MESSAGE(r.output.find(text) != std::string::npos, "expected '", text, "' in:\n", r.output);
}

void expect_error(const RunResult& r, const std::vector<std::string>& parts) {
  CHECK_MESSAGE(r.exit_code == 1, r.output);
  for (const auto& p : parts)
    CHECK_MESSAGE(r.output.find(p) != std::string::npos, "'", p, "' not in:\n", r.output);
  CHECK(r.output.find("Segmentation") == std::string::npos);
}

double max_rel_diff(const nn::StateDict& a, const nn::StateDict& b) {
  double worst = 0;
  for (const auto& [name, t] : a) {
    REQUIRE_MESSAGE(b.count(name) == 1, "'", name, "' is missing from the second state");
    const auto x = t.to_vector<double>(), y = b.at(name).to_vector<double>();
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i)
      worst = std::max(worst, std::abs(x[i] - y[i]) / (std::abs(y[i]) + 1e-3));
  }
  return worst;
}

std::string fresh_dir(const std::string& tag) {
  const fs::path p = fs::temp_directory_path() / ("iris-test-" + tag + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void write_tiny_shards(const std::string& dir, int n) {
  data::ShardSpec spec;
  spec.height = spec.width = 16;
  spec.channels = 1;
  spec.lowres_sizes = {4};
  spec.has_labels = true;
  spec.class_names = {"a", "b", "c"};
  spec.source = "synthetic blocks (tests)";
  data::ShardWriterOptions o;
  o.samples_per_shard = 40;
  o.overwrite = true;
  data::ShardWriter w(dir, spec, o);
  std::mt19937 rng(7);
  for (int i = 0; i < n; ++i) {
    data::Image img(16, 16, 1);
    uint8_t blocks[16];
    for (auto& b : blocks) b = static_cast<uint8_t>(rng() % 256);
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) img.pixels[y * 16 + x] = blocks[(y / 4) * 4 + x / 4];
    w.add(img, i % 3);
  }
  w.finish();
}

std::string write_tiny_config(const std::string& dir, const std::string& data_dir) {
  const std::string path = (fs::path(dir) / "tiny.toml").string();
  std::ofstream f(path);
  f << "[model]\ntask = \"sr3\"\nresolution = 16\nin_channels = 2\nout_channels = 1\nbase_channels = 8\n"
       "channel_mults = [1, 2]\nnum_res_blocks = 1\nattention_resolutions = [8]\nnorm_groups = 4\ndropout = "
       "0.1\n"
       "[diffusion]\ntimesteps = 200\nsampler = \"ddim\"\nsample_steps = 4\nsample_schedule = \"cosine\"\n"
       "[data]\ndir = \""
    << data_dir
    << "\"\nimage_size = 16\nlowres_size = 4\nchannels = 1\nhflip = true\n"
       "[train]\nsteps = 8\nbatch_size = 8\nlr = 1e-3\nwarmup_steps = 2\nlog_every = 1\ncheckpoint_every = "
       "4\n"
       "sample_every = 0\nsample_count = 2\nema_decay = 0.9\n";
  return path;
}

RunResult run_iris(const std::string& args) {
  return run_iris_after("", args);
}

RunResult run_shell(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

RunResult run_iris_after(const std::string& setup, const std::string& args) {
  return run_shell(setup + " exec " + std::string(iris_binary()) + " " + args);
}

bool kill_iris_when(const std::string& args, const std::function<bool()>& ready) {
  std::vector<std::string> words;
  {
    std::istringstream in(args);
    for (std::string w; in >> w;) words.push_back(w);
  }
  std::vector<char*> argv{const_cast<char*>(iris_binary())};
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FILE* f = std::freopen("/dev/null", "w", stdout);
    (void)f;
    ::dup2(::fileno(stdout), 2);
    ::execv(iris_binary(), argv.data());
    ::_exit(127);
  }
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60) && !ready())
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

}  // namespace iris::test
