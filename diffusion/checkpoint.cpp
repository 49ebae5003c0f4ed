#include "diffusion/checkpoint.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <regex>

#include "framework/io/hdf5.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

namespace {

void write_dict(h5::Group&& g, const nn::StateDict& d) {
  for (const auto& [name, t] : d) g.write_tensor(name, t, /*checksum=*/true);
}

nn::StateDict read_dict(const h5::Group& g) {
  nn::StateDict d;
  for (const auto& name : g.children()) d[name] = g.read_tensor(name);
  return d;
}

void write_state(h5::Group& g, const optim::State& s) {
  for (const auto& [name, t] : s.tensors) g.write_tensor(name, t, true);
  for (const auto& [name, v] : s.ints) g.set_int_attr(name, v);
  for (const auto& [name, v] : s.floats) g.set_double_attr(name, v);
}

// Attributes of a state group: integers were written as int64, floats as double; tell them apart by the
// names recorded in "int_keys".
optim::State read_state(const h5::Group& g) {
  optim::State s;
  for (const auto& name : g.children()) s.tensors[name] = g.read_tensor(name);
  const auto int_keys = g.has_attr("int_keys") ? g.strings_attr("int_keys") : std::vector<std::string>{};
  for (const auto& a : g.attr_names()) {
    if (a == "int_keys") continue;
    if (std::find(int_keys.begin(), int_keys.end(), a) != int_keys.end())
      s.ints[a] = g.int_attr(a);
    else
      s.floats[a] = g.double_attr(a);
  }
  return s;
}

void write_state_with_keys(h5::Group&& g, const optim::State& s) {
  write_state(g, s);
  std::vector<std::string> keys;
  for (const auto& [k, v] : s.ints) keys.push_back(k);
  g.set_strings_attr("int_keys", keys);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

h5::File open_checked(const std::string& path) {
  IRIS_CHECK(fs::exists(path), "checkpoint '", path, "' does not exist");
  IRIS_CHECK(h5::File::is_hdf5(path), "checkpoint '", path,
             "' is not an HDF5 file (truncated or corrupted?)");
  h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  IRIS_CHECK(root.has_attr("format") && root.string_attr("format") == kCheckpointFormat, "'", path,
             "' is not an Iris checkpoint (format attribute is not '", kCheckpointFormat, "')");
  const int64_t version = root.int_attr("format_version");
  IRIS_CHECK(version == kCheckpointVersion, "checkpoint '", path, "' has format version ", version,
             "; this Iris reads version ", kCheckpointVersion);
  for (const char* g : {"model", "ema", "optimizer", "ema_state", "train"})
    IRIS_CHECK(root.has(g), "checkpoint '", path, "' lacks the group '/", g, "' (incomplete file)");
  return f;
}

void verify_group(const h5::Group& g) {
  for (const auto& name : g.children()) {
    if (g.kind(name) == h5::ChildKind::group)
      verify_group(g.open_group(name));
    else
      g.open_dataset(name).verify_checksum();
  }
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainingCheckpoint& c) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  h5::AtomicWriter w(path);
  {
    h5::Group root = w.root();
    root.set_string_attr("format", kCheckpointFormat);
    root.set_int_attr("format_version", kCheckpointVersion);
    root.set_int_attr("step", c.step);
    root.set_string_attr("config", c.config_toml);
    root.set_int_attr("world_size", c.world_size);
    root.set_string_attr("created", utc_now());
    root.set_string_attr("iris_version", "0.1.0");
    write_dict(root.create_group("model"), c.model);
    write_dict(root.create_group("ema"), c.ema);
    write_state_with_keys(root.create_group("optimizer"), c.optimizer);
    write_state_with_keys(root.create_group("ema_state"), c.ema_state);
    h5::Group t = root.create_group("train");
    t.set_int_attr("schedule_step", c.schedule_step);
    t.set_int_attr("epoch", c.cursor.epoch);
    t.set_int_attr("position", c.cursor.position);
    t.set_int_attr("seed", c.seed);
    t.set_int_attr("samples_seen", c.samples_seen);
    t.set_double_attr("elapsed_seconds", c.elapsed_seconds);
    t.set_double_attr("grad_norm_mean", c.grad_norm_mean);
    t.set_double_attr("grad_norm_var", c.grad_norm_var);
    t.set_int_attr("grad_norm_count", c.grad_norm_count);
    t.set_int_attr("skipped_updates", c.skipped_updates);
    t.set_int_attr("data_samples", c.data_samples);
    t.set_int_attr("data_index_crc32c", c.data_index_crc32c);
  }
  w.commit();
}

TrainingCheckpoint load_checkpoint(const std::string& path, bool verify) {
  if (verify) verify_checkpoint(path);
  h5::File f = open_checked(path);
  const h5::Group root = f.root();
  TrainingCheckpoint c;
  c.step = root.int_attr("step");
  c.config_toml = root.string_attr("config");
  c.world_size = root.has_attr("world_size") ? root.int_attr("world_size") : 1;
  c.model = read_dict(root.open_group("model"));
  c.ema = read_dict(root.open_group("ema"));
  c.optimizer = read_state(root.open_group("optimizer"));
  c.ema_state = read_state(root.open_group("ema_state"));
  const h5::Group t = root.open_group("train");
  c.schedule_step = t.int_attr("schedule_step");
  c.cursor.epoch = t.int_attr("epoch");
  c.cursor.position = t.int_attr("position");
  c.seed = t.int_attr("seed");
  c.samples_seen = t.int_attr("samples_seen");
  c.elapsed_seconds = t.double_attr("elapsed_seconds");
  if (t.has_attr("grad_norm_count")) {  // absent from checkpoints older than the spike guard
    c.grad_norm_mean = t.double_attr("grad_norm_mean");
    c.grad_norm_var = t.double_attr("grad_norm_var");
    c.grad_norm_count = t.int_attr("grad_norm_count");
    c.skipped_updates = t.int_attr("skipped_updates");
  }
  if (t.has_attr("data_samples")) {
    c.data_samples = t.int_attr("data_samples");
    c.data_index_crc32c = t.int_attr("data_index_crc32c");
  }
  return c;
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  h5::File f = open_checked(path);
  const h5::Group root = f.root();
  CheckpointInfo i;
  i.step = root.int_attr("step");
  i.format_version = root.int_attr("format_version");
  i.config_toml = root.string_attr("config");
  i.world_size = root.has_attr("world_size") ? root.int_attr("world_size") : 1;
  i.created = root.has_attr("created") ? root.string_attr("created") : "";
  return i;
}

void verify_checkpoint(const std::string& path) {
  h5::File f = open_checked(path);
  verify_group(f.root());
}

nn::StateDict load_checkpoint_weights(const std::string& path, bool ema) {
  h5::File f = open_checked(path);
  return read_dict(f.root().open_group(ema ? "ema" : "model"));
}

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%09lld.h5", static_cast<long long>(step));
  return buf;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!fs::is_directory(dir)) return {};
  static const std::regex pattern(R"(step_(\d{9})\.h5)");
  for (const auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && std::regex_match(name, m, pattern))
      found.push_back({std::stoll(m[1]), e.path().string()});
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::optional<std::string> find_resume_checkpoint(const std::string& dir,
                                                  const std::function<void(const std::string&)>& warn) {
  for (const auto& path : list_checkpoints(dir)) {
    try {
      verify_checkpoint(path);
      return path;
    } catch (const Error& e) {
      if (warn) warn("skipping damaged checkpoint '" + path + "': " + e.message());
    }
  }
  return std::nullopt;
}

void prune_checkpoints(const std::string& dir, int64_t keep) {
  const auto all = list_checkpoints(dir);
  for (size_t i = static_cast<size_t>(std::max<int64_t>(keep, 1)); i < all.size(); ++i) fs::remove(all[i]);
  // Temporary files of writers that died mid-write ("<name>.tmp-<pid>" whose process is gone).
  if (!fs::is_directory(dir)) return;
  static const std::regex tmp(R"(step_\d{9}\.h5\.tmp-(\d+))");
  for (const auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, tmp) && !fs::exists("/proc/" + std::string(m[1]))) fs::remove(e.path());
  }
}

}  // namespace iris::diffusion
