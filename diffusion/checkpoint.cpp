#include "diffusion/checkpoint.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>

#include "diffusion/config.h"
#include "framework/io/file_seal.h"
#include "framework/io/hdf5.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

namespace {

void write_dict(h5::Group&& g, const nn::StateDict& d) {
  for (const auto& [name, t] : d) g.write_tensor(name, t, /*checksum=*/true);
}

// The number of NaN or infinite values of a floating-point tensor (0 for integer tensors).
int64_t count_non_finite(const Tensor& t) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64 && t.dtype() != DType::bf16) return 0;
  const auto v = t.to(DType::f64).to_vector<double>();
  return std::count_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); });
}

// Weights that are used as read (sampling, export, resume) are checked against their stored checksum: a
// damaged weight would otherwise give wrong images with no error.
nn::StateDict read_dict(const h5::Group& g) {
  nn::StateDict d;
  for (const auto& name : g.children()) {
    const h5::Dataset ds = g.open_dataset(name);
    Tensor t = ds.read();
    if (ds.has_checksum())
      IRIS_CHECK(ds.int_attr(h5::kChecksumAttr) == static_cast<int64_t>(h5::crc32c(t.data_ptr(), t.nbytes())),
                 "hdf5: checksum mismatch in ", ds.where(), " (the file is corrupted)");
    d[name] = std::move(t);
  }
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
  // The seal first (h5::File::open checks it too): damage must be reported as such, not as "not HDF5".
  (void)h5::check_seal(path);
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

// Every dataset below `g`: its checksum and, for floating-point data, that every value is finite (a NaN
// weight with a valid checksum is still a broken checkpoint). One message per problem.
void check_group(const h5::Group& g, CheckpointReport& r) {
  for (const auto& name : g.children()) {
    try {
      if (g.kind(name) == h5::ChildKind::group) {
        check_group(g.open_group(name), r);
        continue;
      }
      ++r.datasets;
      const h5::Dataset ds = g.open_dataset(name);
      ds.verify_checksum();
      if (const int64_t bad = count_non_finite(ds.read()); bad > 0)
        r.problems.push_back(ds.where() + " holds " + std::to_string(bad) + " NaN or infinite value(s)");
    } catch (const Error& e) {
      r.problems.push_back(e.message());
    }
  }
}

// The counters must fit the run they describe; a damaged or edited counter would otherwise be believed.
void check_counters(const std::string& path, const TrainingCheckpoint& c, CheckpointReport& r) {
  auto problem = [&](const std::string& m) { r.problems.push_back("checkpoint '" + path + "': " + m); };
  try {
    const Config saved = Config::from_toml(c.config_toml, path + " (saved config)");
    const int64_t steps = saved.get_int("train.steps");
    if (c.step < 0 || c.step > steps)
      problem("step " + std::to_string(c.step) + " is outside [0, " + std::to_string(steps) +
              "] (train.steps of its saved config)");
  } catch (const Error& e) {
    problem("the saved config does not parse: " + e.message());
  }
  if (c.schedule_step < 0 || c.samples_seen < 0 || c.seed < 0 || c.world_size < 1)
    problem("implausible counters (schedule step " + std::to_string(c.schedule_step) + ", samples seen " +
            std::to_string(c.samples_seen) + ", seed " + std::to_string(c.seed) + ", world size " +
            std::to_string(c.world_size) + ")");
  const bool cursor_ok = c.cursor.epoch >= 0 && c.cursor.position >= 0 &&
                         (c.data_samples < 0 || c.cursor.position <= c.data_samples);
  if (!cursor_ok)
    problem("data cursor (epoch " + std::to_string(c.cursor.epoch) + ", position " +
            std::to_string(c.cursor.position) + ") does not fit its data of " +
            std::to_string(c.data_samples) + " samples");
}

void check_ema_shadows_model(const std::string& path, const h5::Group& root, CheckpointReport& r) {
  const h5::Group model = root.open_group("model"), ema = root.open_group("ema");
  for (const auto& name : model.children()) {
    if (!ema.has(name))
      r.problems.push_back("'" + path + "': /ema lacks '" + name + "' (present in /model)");
    else if (ema.open_dataset(name).shape() != model.open_dataset(name).shape())
      r.problems.push_back("'" + path + "': /ema/" + name + " has shape " +
                           shape_str(ema.open_dataset(name).shape()) + " but /model/" + name + " has " +
                           shape_str(model.open_dataset(name).shape()));
  }
  for (const auto& name : ema.children())
    if (!model.has(name)) r.problems.push_back("'" + path + "': /ema has '" + name + "', which /model lacks");
}

// The counters of /train and the root (no tensors).
void read_counters(const h5::Group& root, TrainingCheckpoint& c) {
  c.step = root.int_attr("step");
  c.config_toml = root.string_attr("config");
  c.world_size = root.has_attr("world_size") ? root.int_attr("world_size") : 1;
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
  if (t.has_attr("val_psnr")) c.val_psnr = t.double_attr("val_psnr");
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainingCheckpoint& c) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  const auto datasets = static_cast<int64_t>(c.model.size() + c.ema.size() + c.optimizer.tensors.size() +
                                             c.ema_state.tensors.size());
  h5::AtomicWriter w(path, datasets);
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
    if (std::isfinite(c.val_psnr)) t.set_double_attr("val_psnr", c.val_psnr);
  }
  w.commit();
}

TrainingCheckpoint load_checkpoint(const std::string& path, bool verify) {
  if (verify) verify_checkpoint(path);
  h5::File f = open_checked(path);
  const h5::Group root = f.root();
  TrainingCheckpoint c;
  read_counters(root, c);
  c.model = read_dict(root.open_group("model"));
  c.ema = read_dict(root.open_group("ema"));
  c.optimizer = read_state(root.open_group("optimizer"));
  c.ema_state = read_state(root.open_group("ema_state"));
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
  if (root.has("train")) {
    const h5::Group t = root.open_group("train");
    if (t.has_attr("val_psnr")) i.val_psnr = t.double_attr("val_psnr");
  }
  return i;
}

CheckpointReport check_checkpoint(const std::string& path) {
  CheckpointReport r;
  try {
    const h5::File f = open_checked(path);  // checks the seal first
    r.sealed = h5::check_seal(path).state == h5::SealState::sealed;
    const h5::Group root = f.root();
    TrainingCheckpoint counters;
    read_counters(root, counters);
    r.step = counters.step;
    check_group(root, r);
    check_ema_shadows_model(path, root, r);
    check_counters(path, counters, r);
  } catch (const Error& e) {
    r.problems.push_back(e.message());
  }
  return r;
}

void verify_checkpoint(const std::string& path) {
  const CheckpointReport r = check_checkpoint(path);
  if (r.problems.empty()) return;
  IRIS_THROW(r.problems.front(), r.problems.size() > 1 ? " (and " + std::to_string(r.problems.size() - 1) +
                                                             " more problem(s); see iris ckpt verify)"
                                                       : std::string());
}

nn::StateDict load_checkpoint_weights(const std::string& path, bool ema) {
  h5::File f = open_checked(path);
  const char* group = ema ? "ema" : "model";
  nn::StateDict d = read_dict(f.root().open_group(group));
  for (const auto& [name, t] : d)
    IRIS_CHECK(count_non_finite(t) == 0, "checkpoint '", path, "': /", group, "/", name, " holds ",
               count_non_finite(t), " NaN or infinite value(s): these weights cannot give images");
  return d;
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

namespace {

// verify_checkpoint, remembered per file while its size and modification time stay the same: pruning runs
// after every checkpoint and should not re-read the ones it already checked.
bool verifies_cached(const std::string& path, const std::function<void(const std::string&)>& warn) {
  static std::mutex mutex;
  static std::map<std::string, std::pair<fs::file_time_type, uintmax_t>> good;
  std::error_code ec;
  const auto stamp = std::make_pair(fs::last_write_time(path, ec), fs::file_size(path, ec));
  if (ec) return false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = good.find(path);
    if (it != good.end() && it->second == stamp) return true;
  }
  try {
    verify_checkpoint(path);
  } catch (const Error& e) {
    if (warn) warn("keeping damaged checkpoint '" + path + "' out of the newest kept: " + e.message());
    return false;
  }
  std::lock_guard<std::mutex> lock(mutex);
  good[path] = stamp;
  return true;
}

int64_t step_of_name(const std::string& path) {
  return std::stoll(fs::path(path).filename().string().substr(5, 9));  // "step_NNNNNNNNN.h5"
}

}  // namespace

void prune_checkpoints(const std::string& dir, const PruneOptions& o) {
  const auto all = list_checkpoints(dir);  // newest first
  // The oldest step among the newest `keep` that verify; everything older may go.
  int64_t good = 0, cutoff = -1;
  for (const auto& path : all) {
    if (good < std::max<int64_t>(o.keep, 1) && verifies_cached(path, o.warn)) {
      ++good;
      cutoff = step_of_name(path);
    }
  }
  if (good >= std::max<int64_t>(o.keep, 1)) {
    for (const auto& path : all) {
      const int64_t step = step_of_name(path);
      const bool milestone = o.keep_every > 0 && step % o.keep_every == 0;
      const bool protected_file =
          !o.just_written.empty() && fs::path(path).filename() == fs::path(o.just_written).filename();
      if (step < cutoff && !milestone && !protected_file) {
        std::error_code ec;
        fs::remove(path, ec);
      }
    }
  }
  // Temporary files of writers that died mid-write ("<name>.tmp-<pid>" whose process is gone).
  if (!fs::is_directory(dir)) return;
  static const std::regex tmp(R"((?:step_\d{9}|best)\.h5\.tmp-(\d+))");
  for (const auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, tmp) && !fs::exists("/proc/" + std::string(m[1]))) fs::remove(e.path());
  }
}

}  // namespace iris::diffusion
