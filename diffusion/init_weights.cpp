#include "diffusion/init_weights.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "data/safetensors.h"
#include "diffusion/checkpoint.h"
#include "diffusion/train_settings.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "framework/nn/tensor_problems.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

namespace {

// The layout an Iris export records (tools/cmd_ckpt.cpp writes these notes): "PyTorch's: conv weights
// [Cout, Cin, kh, kw] ..." or "NHWC activations ...; conv weights [Cout, kh, kw, Cin] ...". "" for text that
// is neither (a file written elsewhere may use the key for something else).
std::string layout_of_note(const std::string& note) {
  if (note.rfind("PyTorch's", 0) == 0) return "torch";
  if (note.find("conv weights [Cout, kh, kw, Cin]") != std::string::npos) return "iris";
  return "";
}

// Iris's [Cout, kh, kw, Cin] as PyTorch's [Cout, Cin, kh, kw].
Shape torch_shape(const Shape& s) {
  return s.size() == 4 ? Shape{s[0], s[3], s[1], s[2]} : s;
}

// A tensor of the file as the model holds it: torch layout's 4-d tensors permuted back to
// [Cout, kh, kw, Cin] (export's (0, 3, 1, 2) inverted), floating dtypes converted to the model's.
Tensor to_iris(const Tensor& t, const std::string& layout, DType dtype) {
  Tensor v = layout == "torch" && t.dim() == 4 ? t.permute({0, 2, 3, 1}).contiguous() : t;
  return is_floating(v.dtype()) && is_floating(dtype) ? v.to(dtype) : v;
}

int64_t count_non_finite(const Tensor& t) {
  if (!is_floating(t.dtype())) return 0;
  const auto v = t.to(DType::f64).to_vector<double>();
  return std::count_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); });
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s;
}

WeightsFile read_hdf5(const std::string& path) {
  WeightsFile w{.path = path};
  std::string format;
  {
    const h5::File f = h5::File::open(path);  // checks the seal first: damage is named before HDF5 parses
    const h5::Group root = f.root();
    format = root.has_attr("format") ? root.string_attr("format") : "";
    if (format == "iris-weights") {
      IRIS_CHECK(root.has("params"), "'", path, "' is an Iris weights export without its /params group");
      const h5::Group params = root.open_group("params");
      for (const auto& name : params.children()) w.model[name] = params.read_tensor(name);
      if (root.has_attr("layout")) w.layout = layout_of_note(root.string_attr("layout"));
      if (root.has_attr("config")) w.config_toml = root.string_attr("config");
      w.kind = "Iris weights export (HDF5)";
      return w;
    }
  }
  IRIS_CHECK(format == kCheckpointFormat, "'", path,
             "' is an HDF5 file but neither an Iris checkpoint nor an Iris weights export (its format "
             "attribute is ",
             format.empty() ? std::string("missing") : "'" + format + "'", ")");
  // Checksums and finite values of every weight read, as for sampling.
  w.model = load_checkpoint_weights(path, /*ema=*/false);
  w.ema = load_checkpoint_weights(path, /*ema=*/true);
  w.config_toml = read_checkpoint_info(path).config_toml;
  w.layout = "iris";
  w.kind = "Iris checkpoint";
  return w;
}

// The layout a file without a `layout` entry uses, from the shapes of its 4-d tensors against the model's:
// "iris" or "torch", or "" when no tensor tells them apart (every convolution is square over as many input
// channels as its kernel is wide, or 1x1 over one channel). Throws when some fit only one and some only the
// other.
std::string infer_layout(const WeightsFile& file, const nn::StateDict& model) {
  std::vector<std::string> iris_only, torch_only;
  for (const auto& [name, t] : file.model) {
    const auto it = model.find(name);
    if (t.dim() != 4 || it == model.end() || it->second.dim() != 4) continue;
    const bool iris = t.shape() == it->second.shape(), torch = t.shape() == torch_shape(it->second.shape());
    if (iris && !torch) iris_only.push_back(name);
    if (torch && !iris) torch_only.push_back(name);
  }
  IRIS_CHECK(iris_only.empty() || torch_only.empty(), "'", file.path,
             "' mixes convolution layouts: Iris's [Cout, kh, kw, Cin] fits ", join(iris_only),
             "; PyTorch's [Cout, Cin, kh, kw] fits ", join(torch_only));
  if (!torch_only.empty()) return "torch";
  if (!iris_only.empty()) return "iris";
  return "";
}

}  // namespace

WeightsFile read_weights_file(const std::string& path) {
  IRIS_CHECK(fs::exists(path), "weights file '", path, "' does not exist");
  IRIS_CHECK(fs::is_regular_file(path), "weights file '", path, "' is not a file");
  if (h5::File::is_hdf5(path)) return read_hdf5(path);
  WeightsFile w{.path = path, .kind = "safetensors"};
  data::SafetensorsFile st;
  try {
    st = data::read_safetensors(path);
  } catch (const Error& e) {
    IRIS_THROW("weights file '", path, "' is neither HDF5 nor a readable safetensors file: ", e.message());
  }
  w.model = std::move(st.tensors);
  if (st.metadata.count("layout")) w.layout = layout_of_note(st.metadata.at("layout"));
  if (st.metadata.count("config")) w.config_toml = st.metadata.at("config");
  return w;
}

InitReport init_from_weights(const WeightsFile& file, nn::Module& net, optim::EMA& ema, const Config& config,
                             const InitOptions& o) {
  IRIS_CHECK(o.layout == "auto" || o.layout == "iris" || o.layout == "torch",
             "--init-layout must be auto, iris or torch, got '", o.layout, "'");
  const nn::StateDict model = net.state_dict();
  InitReport r{.kind = file.kind};
  // The layout: the file's word, an explicit choice (which must not contradict it), or the shapes.
  if (o.layout != "auto") {
    IRIS_CHECK(file.layout.empty() || file.layout == o.layout, "'", file.path, "' (", file.kind,
               ") stores convolution weights in ", file.layout, " layout, but --init-layout is ", o.layout);
    r.layout = o.layout;
  } else if (!file.layout.empty()) {
    r.layout = file.layout;
  } else {
    r.layout = infer_layout(file, model);
    r.layout_inferred = true;
    bool has_conv = false;
    for (const auto& [name, t] : file.model) has_conv = has_conv || t.dim() == 4;
    IRIS_CHECK(!r.layout.empty() || !has_conv, "cannot tell in which layout '", file.path,
               "' stores convolution weights (its shapes fit both Iris's [Cout, kh, kw, Cin] and PyTorch's "
               "[Cout, Cin, kh, kw]): pass --init-layout iris or --init-layout torch");
    if (r.layout.empty()) r.layout = "iris";  // no convolution at all: nothing to convert
  }
  if (!file.config_toml.empty()) {
    try {
      r.model_difference =
          model_difference(Config::from_toml(file.config_toml, file.path + " (config)"), config);
    } catch (const Error&) {
      // A config Iris cannot read (another version's keys) explains nothing; the tensors decide.
    }
  }

  // Every problem, for one message.
  nn::TensorProblems problems;
  nn::StateDict net_state, ema_state;
  const std::set<std::string> averaged = [&] {
    std::set<std::string> s;
    for (const auto& [name, t] : ema.averaged()) s.insert(name);
    return s;
  }();
  auto check = [&](const std::string& name, const Tensor& t, const Tensor& want, const char* where) {
    const Shape as_stored = r.layout == "torch" ? torch_shape(want.shape()) : want.shape();
    if (t.shape() != as_stored) {
      problems.misshaped.push_back("'" + name + "'" + where + ": " + shape_str(t.shape()) + " in the file, " +
                                   shape_str(as_stored) + " in the model" +
                                   (r.layout == "torch" ? " (torch layout)" : ""));
      return false;
    }
    if (is_floating(want.dtype()) != is_floating(t.dtype()) ||
        (!is_floating(want.dtype()) && want.dtype() != t.dtype())) {
      problems.wrong_dtype.push_back("'" + name + "'" + where + " is " + dtype_name(t.dtype()) +
                                     ", the model's " + dtype_name(want.dtype()));
      return false;
    }
    if (const int64_t bad = count_non_finite(t); bad > 0) {
      problems.non_finite.push_back("'" + name + "'" + where + " (" + std::to_string(bad) + ")");
      return false;
    }
    return true;
  };
  for (const auto& [name, want] : model) {
    const auto it = file.model.find(name);
    if (it == file.model.end()) {
      if (o.allow_new)
        r.fresh.push_back(name);
      else
        problems.missing.push_back(name);
      continue;
    }
    if (check(name, it->second, want, "")) net_state[name] = to_iris(it->second, r.layout, want.dtype());
    if (!file.ema.empty() && averaged.count(name)) {
      const auto e = file.ema.find(name);
      if (e == file.ema.end())
        problems.missing.push_back(name + " (EMA)");
      else if (check(name, e->second, want, " (EMA)"))
        ema_state[name] = to_iris(e->second, r.layout, want.dtype());
    }
  }
  for (const auto& [name, t] : file.model)
    if (!model.count(name)) problems.unexpected.push_back(name);
  for (const auto& [name, t] : file.ema)
    if (!model.count(name) && !file.model.count(name)) problems.unexpected.push_back(name + " (EMA)");

  if (problems.any()) {
    std::ostringstream os;
    os << "weights file '" << file.path << "' (" << file.kind << ", " << r.layout << " layout"
       << (r.layout_inferred ? ", inferred from the shapes" : "") << ") does not fit this model ("
       << model.size() << " tensors in the model, " << file.model.size() << " in the file)"
       << problems.describe();
    if (!r.model_difference.empty())
      os << ". The file's model differs from this config: " << r.model_difference;
    if (!problems.missing.empty() && problems.unexpected.empty() && problems.misshaped.empty())
      os << ". --init-allow-new starts the missing tensors fresh";
    IRIS_THROW(os.str());
  }

  // Fresh tensors keep their initial values: in the model (copied back onto themselves) and in the EMA,
  // whose averages started as copies of them.
  for (const auto& name : r.fresh) net_state[name] = model.at(name).clone();
  optim::State es = ema.state();
  for (auto& [name, t] : es.tensors) {
    if (ema_state.count(name))
      t = ema_state.at(name);
    else if (net_state.count(name) && !std::count(r.fresh.begin(), r.fresh.end(), name))
      t = net_state.at(name);  // an export: the EMA starts as the imported weights
    // else: a fresh tensor, whose average stays its initial value
  }
  net.load_state_dict(net_state);
  ema.load_state(es);
  r.imported = static_cast<int64_t>(model.size() - r.fresh.size());
  return r;
}

}  // namespace iris::diffusion
