// `iris ckpt`: look at, check and export training checkpoints (format: diffusion/checkpoint.h).
//  - inspect PATH: the tree (every group, every dataset's dtype, shape and size, group and file totals), the
//    root and group attributes (step, created, world size, optimizer and EMA settings) and the config TOML;
//  - verify PATH...: diffusion::check_checkpoint (seal, structure, checksums, finite values, counters); names
//    each damaged file and what is wrong, and exits non-zero when any fails;
//  - export PATH --out FILE [--raw] [--format hdf5|safetensors] [--layout iris|torch]: the EMA (or raw)
//    weights as a plain file of float32 arrays
//    (README.md, "Exporting weights");
//  - diff A B [--tolerance R]: compares two checkpoints tensor by tensor (model, EMA, optimizer) and counter
//    by counter (step, data cursor, schedule, samples seen): is a resume exact, where did two runs part.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

#include "data/safetensors.h"
#include "diffusion/checkpoint.h"
#include "diffusion/config.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace iris::tools {

namespace {

namespace fs = std::filesystem;

constexpr const char* kExportFormat = "iris-weights";
constexpr int64_t kExportVersion = 1;
constexpr const char* kLayoutNote =
    "NHWC activations [N, H, W, C]; conv weights [Cout, kh, kw, Cin]; linear weights [out, in]; biases "
    "[out]; GroupNorm weight/bias [C]; embedding tables [num_embeddings, dim]";
constexpr const char* kTorchLayoutNote =
    "PyTorch's: conv weights [Cout, Cin, kh, kw] (Iris's [Cout, kh, kw, Cin] transposed with axes (0, 3, 1, "
    "2)); "
    "linear weights [out, in]; biases [out]; GroupNorm weight/bias [C]; embedding tables [num_embeddings, "
    "dim]";

// "down.10.x" after "down.2.x": digit runs compare as numbers, so layers list in model order.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const std::string na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::vector<std::string> sorted_children(const h5::Group& g) {
  auto names = g.children();
  std::sort(names.begin(), names.end(), natural_less);
  return names;
}

// An attribute's value as text, whatever its type (integers, numbers, strings; one or several).
std::string attr_text(const h5::Object& o, const std::string& name) {
  auto join = [](const auto& v, auto fmt) {
    std::string s = v.size() == 1 ? "" : "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt(v[i]);
    return v.size() == 1 ? s : s + "]";
  };
  try {
    return join(o.ints_attr(name), [](int64_t x) { return std::to_string(x); });
  } catch (const Error&) {
  }
  try {
    std::ostringstream os;
    os.precision(6);
    os << o.double_attr(name);
    return os.str();
  } catch (const Error&) {
  }
  try {
    return join(o.strings_attr(name), [](const std::string& x) { return "\"" + x + "\""; });
  } catch (const Error&) {
  }
  return "(unreadable)";
}

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

struct Totals {
  int64_t datasets = 0, elements = 0;
  double bytes = 0;
};

struct DatasetInfo {
  std::string type = "?";  // dtype name ("?" for a type Iris has no dtype for)
  Shape shape;
  int64_t elements = 1;
  double bytes = 0;
};

DatasetInfo dataset_info(const h5::Dataset& d) {
  DatasetInfo i;
  i.shape = d.shape();
  for (int64_t s : i.shape) i.elements *= s;
  try {
    i.type = dtype_name(d.dtype());
    i.bytes = static_cast<double>(i.elements) * static_cast<double>(dtype_size(d.dtype()));
  } catch (const Error&) {
  }
  return i;
}

// Datasets, elements and bytes under `g`, subgroups included (metadata only).
Totals totals_of(const h5::Group& g) {
  Totals t;
  for (const auto& name : g.children()) {
    if (g.kind(name) == h5::ChildKind::group) {
      const Totals sub = totals_of(g.open_group(name));
      t.datasets += sub.datasets;
      t.elements += sub.elements;
      t.bytes += sub.bytes;
    } else if (g.kind(name) == h5::ChildKind::dataset) {
      const DatasetInfo i = dataset_info(g.open_dataset(name));
      ++t.datasets;
      t.elements += i.elements;
      t.bytes += i.bytes;
    }
  }
  return t;
}

// Prints a group's attributes. Per-parameter ones ("<param>.step" of the optimizer) are folded into one line
// per suffix; the bookkeeping list "int_keys" (which attributes are integers) is left out; long values are
// cut.
void print_attributes(const h5::Group& g) {
  std::map<std::string, std::vector<std::string>> folded;  // "*.step" -> values
  for (const auto& a : g.attr_names()) {
    if (a == "int_keys") continue;
    std::string value = attr_text(g, a);
    const size_t dot = a.rfind('.');
    if (dot != std::string::npos) {
      folded["*" + a.substr(dot)].push_back(value);
      continue;
    }
    if (value.size() > 100) value = value.substr(0, 96) + " ...";
    std::printf("    @%s = %s\n", a.c_str(), value.c_str());
  }
  for (auto& [pattern, values] : folded) {
    std::sort(values.begin(), values.end());
    const bool same = values.front() == values.back();
    std::printf("    @%s (%zu parameters) = %s\n", pattern.c_str(), values.size(),
                same ? values.front().c_str() : "(values differ)");
  }
}

// Prints group `g`: a header with its totals and attributes (not for the root), a line per dataset (unless
// `summary`), then its subgroups.
void print_group(const h5::Group& g, const std::string& path, bool summary) {
  if (path != "/") {
    const Totals t = totals_of(g);
    std::printf("%s  (%lld datasets, %s elements, %s)\n", path.c_str(), static_cast<long long>(t.datasets),
                with_commas(t.elements).c_str(), human_bytes(t.bytes).c_str());
    print_attributes(g);
  }
  std::vector<std::string> groups;
  for (const auto& name : sorted_children(g)) {
    if (g.kind(name) == h5::ChildKind::group) {
      groups.push_back(name);
    } else if (!summary && g.kind(name) == h5::ChildKind::dataset) {
      const DatasetInfo i = dataset_info(g.open_dataset(name));
      std::printf("    %-44s %-5s %-22s %10s\n", name.c_str(), i.type.c_str(), shape_text(i.shape).c_str(),
                  human_bytes(i.bytes).c_str());
    }
  }
  for (const auto& name : groups)
    print_group(g.open_group(name), (path == "/" ? "/" : path + "/") + name, summary);
}

void run_inspect(const std::string& path, bool summary, bool no_config) {
  const diffusion::CheckpointInfo info =
      diffusion::read_checkpoint_info(path);  // format checks, names the file
  const h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  std::printf("checkpoint %s (%s)\n", path.c_str(),
              human_bytes(static_cast<double>(fs::file_size(path))).c_str());
  std::printf("  step %lld, created %s, world size %lld, format %s v%lld, iris %s\n",
              static_cast<long long>(info.step), info.created.empty() ? "?" : info.created.c_str(),
              static_cast<long long>(info.world_size), diffusion::kCheckpointFormat,
              static_cast<long long>(info.format_version),
              root.has_attr("iris_version") ? root.string_attr("iris_version").c_str() : "?");
  print_group(root, "/", summary);
  const Totals t = totals_of(root);
  std::printf("total: %lld datasets, %s elements, %s of data\n", static_cast<long long>(t.datasets),
              with_commas(t.elements).c_str(), human_bytes(t.bytes).c_str());
  if (!no_config) std::printf("# config (resolved, as trained)\n%s", info.config_toml.c_str());
}

void run_verify(const std::vector<std::string>& paths) {
  int failed = 0;
  for (const auto& path : paths) {
    const diffusion::CheckpointReport r = diffusion::check_checkpoint(path);
    if (r.problems.empty()) {
      std::printf("OK      %s: step %lld, %lld datasets, checksums match%s\n", path.c_str(),
                  static_cast<long long>(r.step), static_cast<long long>(r.datasets),
                  r.sealed ? ", seal (whole-file checksum) matches"
                           : "; no whole-file checksum (written by an older Iris: damage to its HDF5 "
                             "structure cannot be ruled out)");
    } else {
      ++failed;
      std::printf("FAILED  %s: %zu problem(s)\n", path.c_str(), r.problems.size());
      for (const auto& p : r.problems) std::printf("        %s\n", p.c_str());
    }
  }
  std::fflush(stdout);
  IRIS_CHECK(failed == 0, failed, " of ", paths.size(), " checkpoint(s) failed verification");
}

struct ExportOptions {
  bool raw = false;             // the raw weights instead of the EMA
  std::string format = "hdf5";  // hdf5 | safetensors
  std::string layout = "iris";  // iris | torch (conv weights as [Cout, Cin, kh, kw])
};

void run_export(const std::string& path, const std::string& out, const ExportOptions& o) {
  IRIS_CHECK(o.format == "hdf5" || o.format == "safetensors", "--format must be hdf5 or safetensors, got '",
             o.format, "'");
  IRIS_CHECK(o.layout == "iris" || o.layout == "torch", "--layout must be iris or torch, got '", o.layout,
             "'");
  const diffusion::CheckpointInfo info = diffusion::read_checkpoint_info(path);
  const char* group = o.raw ? "model" : "ema";
  {
    // Refuse to export damaged weights.
    const h5::File f = h5::File::open(path);
    const h5::Group g = f.root().open_group(group);
    for (const auto& name : g.children()) g.open_dataset(name).verify_checksum();
  }
  const nn::StateDict weights = diffusion::load_checkpoint_weights(path, !o.raw);
  const Config config = Config::from_toml(info.config_toml, path + " (saved config)");
  std::error_code ec;
  IRIS_CHECK(!fs::equivalent(path, out, ec), "--out '", out,
             "' is the checkpoint itself; choose another file");
  const fs::path parent = fs::path(out).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  // Floating tensors become float32 (bf16 ones too); integer buffers, if a model has any, keep their type.
  // With --layout torch, the 4-d tensors (the convolution weights) are transposed to [Cout, Cin, kh, kw].
  std::map<std::string, Tensor> tensors;
  int64_t elements = 0;
  for (const auto& [name, t] : weights) {
    Tensor v = is_floating(t.dtype()) ? t.to(DType::f32) : t;
    if (o.layout == "torch" && v.dim() == 4) v = v.permute({0, 3, 1, 2}).contiguous();
    tensors[name] = v;
    elements += t.numel();
  }
  const std::map<std::string, std::string> attrs = {
      {"format", kExportFormat},
      {"format_version", std::to_string(kExportVersion)},
      {"source_checkpoint", path},
      {"step", std::to_string(info.step)},
      {"weights", o.raw ? "raw" : "ema"},
      {"task", config.get_string("model.task")},
      {"layout", o.layout == "torch" ? kTorchLayoutNote : kLayoutNote},
      {"config", info.config_toml}};
  if (o.format == "safetensors") {
    data::write_safetensors(out, {.tensors = tensors, .metadata = attrs});
  } else {
    h5::AtomicWriter w(out, static_cast<int64_t>(tensors.size()));
    {
      h5::Group root = w.root();
      for (const auto& [k, v] : attrs)
        if (k == "format_version" || k == "step")
          root.set_int_attr(k, std::stoll(v));
        else
          root.set_string_attr(k, v);
      h5::Group params = root.create_group("params");
      for (const auto& [name, v] : tensors) params.write_tensor(name, v, /*checksum=*/false);
      root.set_int_attr("num_tensors", static_cast<int64_t>(tensors.size()));
      root.set_int_attr("num_elements", elements);
    }
    w.commit();
  }
  std::printf("exported %zu tensors (%s values, %s weights, step %lld, %s layout) from %s to %s (%s)\n",
              tensors.size(), with_commas(elements).c_str(), o.raw ? "raw" : "EMA",
              static_cast<long long>(info.step), o.layout.c_str(), path.c_str(), out.c_str(),
              o.format.c_str());
}

// Differences between two tensors of the same name, element by element (compared in float64).
struct TensorDiff {
  std::string name;
  int64_t differing = 0;            // elements not bit-identical
  double max_abs = 0, max_rel = 0;  // rel: |a - b| / (|b| + 1e-3), as the training tests measure
};

TensorDiff diff_tensors(const std::string& name, const Tensor& a, const Tensor& b) {
  TensorDiff d{name};
  IRIS_CHECK(a.shape() == b.shape() && a.dtype() == b.dtype(), "'", name,
             "' differs in shape or dtype: ", a.summary(), " vs ", b.summary());
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  if (std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0) return d;
  const auto x = ca.to_vector<double>(), y = cb.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i]))) continue;
    ++d.differing;
    const double ad = std::abs(x[i] - y[i]);
    d.max_abs = std::max(d.max_abs, ad);
    d.max_rel = std::max(d.max_rel, std::isfinite(ad) ? ad / (std::abs(y[i]) + 1e-3) : INFINITY);
  }
  return d;
}

// Prints one line per group and returns the group's worst relative difference (0: bit-identical).
double diff_group(const char* group, const std::map<std::string, Tensor>& a,
                  const std::map<std::string, Tensor>& b) {
  std::vector<std::string> only_a, only_b;
  for (const auto& [name, t] : a)
    if (!b.count(name)) only_a.push_back(name);
  for (const auto& [name, t] : b)
    if (!a.count(name)) only_b.push_back(name);
  IRIS_CHECK(only_a.empty() && only_b.empty(), "the checkpoints hold different ", group, " tensors (",
             only_a.size(), " only in the first, e.g. '", only_a.empty() ? "" : only_a.front(), "'; ",
             only_b.size(), " only in the second, e.g. '", only_b.empty() ? "" : only_b.front(),
             "'): they are not of the same model");
  TensorDiff worst;
  int64_t tensors_differing = 0, elements = 0, differing = 0;
  for (const auto& [name, t] : a) {
    const TensorDiff d = diff_tensors(name, t, b.at(name));
    elements += t.numel();
    differing += d.differing;
    if (d.differing > 0) ++tensors_differing;
    if (d.differing > 0 && (worst.name.empty() || d.max_rel > worst.max_rel)) worst = d;
  }
  if (tensors_differing == 0) {
    std::printf("  %-10s identical (%zu tensors, %s values)\n", group, a.size(),
                with_commas(elements).c_str());
  } else {
    std::printf(
        "  %-10s %lld of %zu tensors differ (%s of %s values); max |a-b| %.3g, max relative %.3g in '%s'\n",
        group, static_cast<long long>(tensors_differing), a.size(), with_commas(differing).c_str(),
        with_commas(elements).c_str(), worst.max_abs, worst.max_rel, worst.name.c_str());
  }
  return worst.max_rel;
}

void run_diff(const std::string& path_a, const std::string& path_b, double tolerance) {
  IRIS_CHECK(tolerance >= 0, "--tolerance must be >= 0, got ", tolerance);
  const diffusion::TrainingCheckpoint a = diffusion::load_checkpoint(path_a, /*verify=*/true);
  const diffusion::TrainingCheckpoint b = diffusion::load_checkpoint(path_b, /*verify=*/true);
  std::printf("a: %s (step %lld)\nb: %s (step %lld)\n", path_a.c_str(), static_cast<long long>(a.step),
              path_b.c_str(), static_cast<long long>(b.step));
  // Counters first: two checkpoints at different steps or data positions are not the same state, whatever
  // their weights.
  std::vector<std::string> counters;
  auto counter = [&](const char* what, int64_t x, int64_t y) {
    if (x != y) counters.push_back(std::string(what) + " " + std::to_string(x) + " vs " + std::to_string(y));
  };
  counter("step", a.step, b.step);
  counter("data epoch", a.cursor.epoch, b.cursor.epoch);
  counter("data position", a.cursor.position, b.cursor.position);
  counter("schedule step", a.schedule_step, b.schedule_step);
  counter("samples seen", a.samples_seen, b.samples_seen);
  counter("seed", a.seed, b.seed);
  counter("updates skipped", a.skipped_updates, b.skipped_updates);
  counter("gradient norms seen", a.grad_norm_count, b.grad_norm_count);
  for (const auto& [name, v] : a.optimizer.ints) {
    const auto it = b.optimizer.ints.find(name);
    if (it == b.optimizer.ints.end() || it->second != v)
      counters.push_back("optimizer counter '" + name + "'");
  }
  std::printf("  %-10s %s\n", "counters", counters.empty() ? "identical" : "DIFFER");
  for (const auto& c : counters) std::printf("             %s\n", c.c_str());
  double worst = 0;
  worst = std::max(worst, diff_group("model", a.model, b.model));
  worst = std::max(worst, diff_group("ema", a.ema, b.ema));
  worst = std::max(worst, diff_group("optimizer", a.optimizer.tensors, b.optimizer.tensors));
  std::fflush(stdout);
  IRIS_CHECK(counters.empty(), "the checkpoints differ in their counters (", counters.front(), ")");
  IRIS_CHECK(worst <= tolerance, "the checkpoints differ: max relative difference ", worst,
             tolerance > 0 ? " above --tolerance " + std::to_string(tolerance)
                           : std::string(" (not bit-identical)"));
  std::printf(worst == 0 ? "identical\n" : "equal within --tolerance\n");
}

struct CkptOptions {
  std::string path, out;
  std::vector<std::string> paths;
  bool summary = false, no_config = false;
  double tolerance = 0;
  ExportOptions exp;
};

}  // namespace

void register_ckpt(CLI::App& app) {
  auto o = std::make_shared<CkptOptions>();
  auto* cmd = app.add_subcommand("ckpt", "Inspect, verify and export training checkpoints");
  cmd->require_subcommand(1);

  auto* inspect = cmd->add_subcommand("inspect", "Print a checkpoint's tree, attributes and config");
  inspect->add_option("path", o->path, "checkpoint file")->required();
  inspect->add_flag("--summary", o->summary, "group totals only, without a line per dataset");
  inspect->add_flag("--no-config", o->no_config, "leave out the config TOML");
  inspect->callback([o] { run_inspect(o->path, o->summary, o->no_config); });

  auto* verify =
      cmd->add_subcommand("verify", "Check checkpoints' structure and checksums (exit 1 on damage)");
  verify->add_option("paths", o->paths, "checkpoint files")->required();
  verify->callback([o] { run_verify(o->paths); });

  auto* exp = cmd->add_subcommand(
      "export",
      "Write the weights as a plain file of float32 arrays (HDF5, or safetensors for PyTorch users)");
  exp->add_option("path", o->path, "checkpoint file")->required();
  exp->add_option("--out", o->out, "output file (.h5 or .safetensors)")->required();
  exp->add_flag("--raw", o->exp.raw, "export the raw weights instead of the EMA");
  exp->add_option("--format", o->exp.format, "hdf5 (default) or safetensors");
  exp->add_option(
      "--layout", o->exp.layout,
      "iris (default: conv weights [Cout, kh, kw, Cin]) or torch ([Cout, Cin, kh, kw], PyTorch's)");
  exp->callback([o] { run_export(o->path, o->out, o->exp); });

  auto* diff = cmd->add_subcommand(
      "diff",
      "Compare two checkpoints: counters, then model, EMA and optimizer tensors (exit 1 if they differ)");
  diff->add_option("a", o->path, "first checkpoint")->required();
  diff->add_option("b", o->out, "second checkpoint")->required();
  diff->add_option(
      "--tolerance", o->tolerance,
      "accept tensors whose largest |a-b| / (|b| + 1e-3) is at most this (default 0: bit-identical)");
  diff->callback([o] { run_diff(o->path, o->out, o->tolerance); });
}

}  // namespace iris::tools
