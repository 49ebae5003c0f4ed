#include "framework/dist/rendezvous.h"

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "framework/core/error.h"

namespace iris::dist {

namespace fs = std::filesystem;

namespace {

const char* lookup(const EnvLookup& fn, const char* key) {
  return fn ? fn(key) : std::getenv(key);
}

bool safe_key(const std::string& key) {
  if (key.empty()) return false;
  for (char c : key)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') return false;
  return true;
}

}  // namespace

std::string RendezvousConfig::path() const {
  return (fs::path(dir) / ("iris-rendezvous-" + key)).string();
}

RendezvousConfig rendezvous_from_env(const EnvLookup& getenv_fn) {
  RendezvousConfig c;
  const char* dir = lookup(getenv_fn, "IRIS_RENDEZVOUS_DIR");
  if (!dir || !*dir) return c;
  c.dir = dir;
  if (const char* key = lookup(getenv_fn, "IRIS_RENDEZVOUS_KEY"); key && *key) {
    c.key = key;
  } else {
    const char* job = lookup(getenv_fn, "SLURM_JOB_ID");
    const char* step = lookup(getenv_fn, "SLURM_STEP_ID");
    IRIS_CHECK(job && *job,
               "IRIS_RENDEZVOUS_DIR is set but there is no IRIS_RENDEZVOUS_KEY (and no SLURM_JOB_ID): "
               "set IRIS_RENDEZVOUS_KEY to a name unique to this job");
    c.key = std::string(job) + "." + (step && *step ? step : "0");
  }
  IRIS_CHECK(safe_key(c.key), "rendezvous key '", c.key,
             "' must be letters, digits, '.', '-' or '_' (it becomes part of a file name)");
  return c;
}

std::vector<uint8_t> rendezvous_exchange(const RendezvousConfig& config, int rank,
                                         const std::vector<uint8_t>& bytes, size_t size, double timeout_s) {
  IRIS_CHECK(config.enabled(), "rendezvous_exchange: no rendezvous folder");
  const std::string path = config.path();
  if (rank == 0) {
    IRIS_CHECK(bytes.size() == size, "rendezvous_exchange: rank 0 publishes ", bytes.size(),
               " bytes, expected ", size);
    IRIS_CHECK(fs::is_directory(config.dir), "IRIS_RENDEZVOUS_DIR '", config.dir, "' is not a folder");
    const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      f.flush();
      IRIS_CHECK(f.good(), "rank 0: cannot write '", tmp, "' (IRIS_RENDEZVOUS_DIR)");
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
      fs::remove(tmp, ec);
      IRIS_THROW("rank 0: cannot rename '", tmp, "' to '", path, "': ", ec.message());
    }
    return bytes;
  }
  const auto start = std::chrono::steady_clock::now();
  auto wait = std::chrono::milliseconds(5);
  for (;;) {
    std::ifstream f(path, std::ios::binary);
    if (f) {
      std::vector<uint8_t> got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      IRIS_CHECK(got.size() == size, "rank ", rank, ": rendezvous file '", path, "' holds ", got.size(),
                 " bytes, expected ", size, " (a file of another job? set IRIS_RENDEZVOUS_KEY)");
      return got;
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    IRIS_CHECK(timeout_s <= 0 || waited < timeout_s, "rank ", rank, ": no rendezvous file '", path,
               "' after ", waited, " s: did rank 0 start, and is IRIS_RENDEZVOUS_DIR ('", config.dir,
               "') on a filesystem every node shares?");
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::milliseconds(200));
  }
}

void rendezvous_remove(const RendezvousConfig& config) {
  if (!config.enabled()) return;
  std::error_code ec;
  fs::remove(config.path(), ec);
}

int slurm_tasks_on_node(const std::string& spec, int node_id) {
  // Comma-separated groups "N" or "N(xM)": N tasks on each of M nodes.
  if (node_id < 0) return -1;
  size_t i = 0;
  int node = 0;
  auto number = [&](int& out) {
    if (i >= spec.size() || !std::isdigit(static_cast<unsigned char>(spec[i]))) return false;
    long v = 0;
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) {
      v = v * 10 + (spec[i++] - '0');
      if (v > 1000000) return false;
    }
    out = static_cast<int>(v);
    return true;
  };
  // The whole text is checked before the answer is looked up: a malformed one gives -1 for every node.
  std::vector<std::pair<int, int>> groups;  // (tasks, nodes)
  while (i < spec.size()) {
    int tasks = 0, repeat = 1;
    if (!number(tasks)) return -1;
    if (i < spec.size() && spec[i] == '(') {
      if (spec.compare(i, 2, "(x") != 0) return -1;
      i += 2;
      if (!number(repeat) || i >= spec.size() || spec[i] != ')') return -1;
      ++i;
    }
    groups.emplace_back(tasks, repeat);
    if (i < spec.size()) {
      if (spec[i] != ',' || i + 1 == spec.size()) return -1;
      ++i;
    }
  }
  for (const auto& [tasks, repeat] : groups) {
    if (node_id < node + repeat) return tasks;
    node += repeat;
  }
  return -1;
}

}  // namespace iris::dist
