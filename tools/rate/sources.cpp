#include "tools/rate/sources.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "data/image.h"
#include "data/shard.h"
#include "framework/core/error.h"
#include "framework/io/hdf5.h"

namespace iris::rate {

namespace fs = std::filesystem;

namespace {

// "PATH:NAME" -> {PATH, NAME} when PATH exists and the whole argument does not (as iris eval reads its sets).
std::pair<std::string, std::string> split_spec(const std::string& arg) {
  const auto colon = arg.rfind(':');
  if (colon != std::string::npos && colon + 1 < arg.size() && fs::exists(arg.substr(0, colon)) &&
      !fs::exists(arg))
    return {arg.substr(0, colon), arg.substr(colon + 1)};
  return {arg, ""};
}

bool is_shard_folder(const std::string& path) {
  return fs::is_directory(path) && fs::exists(fs::path(path) / data::kShardIndexFile);
}

// Images read one at a time (memory stays bounded for large sets).
class Rows {
 public:
  virtual ~Rows() = default;
  virtual int64_t size() const = 0;
  virtual data::Image image(int64_t i) const = 0;
  std::string what;  // "PATH:DATASET", for messages
};

class H5Rows : public Rows {
 public:
  H5Rows(const std::string& path, const std::string& dataset) : file_(h5::File::open(path)) {
    what = path + ":" + dataset;
    IRIS_CHECK(file_.root().has(dataset), "rate: '", path, "' has no dataset '", dataset,
               "' (it has: ", list(file_.root().children()), ")");
    ds_ = file_.root().open_dataset(dataset);
    const Shape& s = ds_.shape();
    IRIS_CHECK(ds_.dtype() == DType::u8 && s.size() == 4 && (s[3] == 1 || s[3] == 3), "rate: '", what,
               "' is ", dtype_name(ds_.dtype()), " ", shape_str(s), ", not uint8 images [N, H, W, 1 or 3]");
  }
  int64_t size() const override { return ds_.shape()[0]; }
  data::Image image(int64_t i) const override { return data::unstack_images(ds_.read_rows(i, 1))[0]; }
  static std::string list(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }

 private:
  h5::File file_;
  h5::Dataset ds_;
};

class ShardRows : public Rows {
 public:
  // `rows`: the set's rows to read, in order; empty: 0, 1, 2, ...
  ShardRows(const std::string& dir, const std::string& dataset, std::vector<int64_t> rows)
      : set_(data::ShardSet::open(dir)), rows_(std::move(rows)) {
    what = dir + (dataset.empty() ? "" : ":" + dataset);
    if (!dataset.empty() && dataset != "images") {
      const auto& sizes = set_.spec().lowres_sizes;
      const std::string prefix = "lowres_";
      if (dataset.rfind(prefix, 0) == 0) h_ = std::atoi(dataset.c_str() + prefix.size());
      IRIS_CHECK(h_ > 0 && std::find(sizes.begin(), sizes.end(), h_) != sizes.end(),
                 "rate: the shard folder '", dir, "' has no '", dataset,
                 "' (images, or lowres_<h> for a stored low-res size)");
    }
    for (int64_t r : rows_)
      IRIS_CHECK(r >= 0 && r < set_.size(), "rate: row ", r,
                 " of the methods' 'indices' is beyond the shard folder '", dir, "' (", set_.size(),
                 " images)");
  }
  int64_t size() const override { return rows_.empty() ? set_.size() : static_cast<int64_t>(rows_.size()); }
  data::Image image(int64_t i) const override {
    const int64_t r = rows_.empty() ? i : rows_[static_cast<size_t>(i)];
    return h_ > 0 ? set_.lowres(r, h_) : set_.image(r);
  }

 private:
  data::ShardSet set_;
  std::vector<int64_t> rows_;
  int h_ = 0;
};

// One method's file: its outputs and, when the file holds them, the truth, the inputs, names and indices.
struct MethodSet {
  std::string name, file;
  std::unique_ptr<Rows> output, truth, input;
  std::vector<std::string> names;
  std::vector<int64_t> indices;
  nlohmann::ordered_json attrs = nlohmann::ordered_json::object();
};

// The scalar attributes of an object (sampler settings, checkpoint, step), for study.json; the resolved config
// and lists are left out.
void copy_attrs(const h5::Object& o, nlohmann::ordered_json& out) {
  for (const auto& name : o.attr_names()) {
    if (name == "config" || name == h5::kChecksumAttr || name == "names" || name == "class_names" ||
        name == "checkpoints")
      continue;
    try {
      out[name] = o.string_attr(name);
    } catch (const Error&) {
      try {
        out[name] = o.double_attr(name);
      } catch (const Error&) {
      }
    }
  }
}

MethodSet open_method(const std::string& name, const std::string& spec) {
  MethodSet m;
  m.name = name;
  auto [path, dataset] = split_spec(spec);
  m.file = path;
  IRIS_CHECK(fs::exists(path), "rate: method '", name, "': '", path, "' does not exist");
  if (fs::is_directory(path)) {
    IRIS_CHECK(is_shard_folder(path), "rate: method '", name, "': '", path,
               "' is a folder but not a shard folder (no index.json)");
    m.output = std::make_unique<ShardRows>(path, dataset, std::vector<int64_t>{});
    return m;
  }
  IRIS_CHECK(h5::File::is_hdf5(path), "rate: method '", name, "': '", path,
             "' is neither an HDF5 file (samples.h5, cascade.h5) nor a shard folder");
  const h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  const std::string format = root.has_attr("format") ? root.string_attr("format") : "";
  if (dataset.empty()) {
    dataset = "images";
    if (format == "iris-cascade-samples")
      dataset = "stage_" + std::to_string(root.int_attr("num_stages") - 1);
  }
  copy_attrs(root, m.attrs);
  if (root.has(dataset) && root.kind(dataset) == h5::ChildKind::dataset)
    copy_attrs(root.open_dataset(dataset), m.attrs);
  m.output = std::make_unique<H5Rows>(path, dataset);
  if (dataset != "truth" && root.has("truth")) m.truth = std::make_unique<H5Rows>(path, "truth");
  if (root.has("lowres")) m.input = std::make_unique<H5Rows>(path, "lowres");
  if (root.has_attr("names")) m.names = root.strings_attr("names");
  if (root.has("indices")) m.indices = root.read_tensor("indices").to_vector<int64_t>();
  return m;
}

std::unique_ptr<Rows> open_truth(const std::string& spec, const std::vector<int64_t>& indices) {
  auto [path, dataset] = split_spec(spec);
  IRIS_CHECK(fs::exists(path), "rate: --truth '", path, "' does not exist");
  if (fs::is_directory(path)) {
    IRIS_CHECK(is_shard_folder(path), "rate: --truth '", path,
               "' is a folder but not a shard folder (no index.json)");
    return std::make_unique<ShardRows>(path, dataset, indices);
  }
  IRIS_CHECK(h5::File::is_hdf5(path), "rate: --truth '", path,
             "' is neither an HDF5 file nor a shard folder");
  if (dataset.empty()) dataset = h5::File::open(path).root().has("truth") ? "truth" : "images";
  return std::make_unique<H5Rows>(path, dataset);
}

std::string default_name(int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%06lld", static_cast<long long>(i));
  return buf;
}

}  // namespace

void write_png_atomic(const std::string& path, const data::Image& img) {
  fs::create_directories(fs::path(path).parent_path());
  const std::string tmp = h5::temp_path_for(path);
  data::write_png(tmp, img);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    IRIS_THROW("cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

std::pair<std::string, std::string> parse_method_arg(const std::string& arg) {
  const auto eq = arg.find('=');
  std::string name, spec;
  if (eq != std::string::npos && !fs::exists(arg)) {
    name = arg.substr(0, eq);
    spec = arg.substr(eq + 1);
  } else {
    spec = arg;
    const fs::path p(split_spec(arg).first);
    name = fs::is_directory(p) ? fs::absolute(p).lexically_normal().filename().string()
                               : fs::absolute(p).lexically_normal().parent_path().filename().string();
  }
  IRIS_CHECK(!spec.empty(), "rate: --method '", arg, "' names no file (NAME=PATH[:DATASET])");
  check_method_name(name);
  return {name, spec};
}

int auto_display_px(int height, int width) {
  const int d = std::max(height, width);
  if (d >= 256) return std::min(d, 512);
  return d * ((256 + d - 1) / d);
}

StudyConfig create_study(const std::string& dir, const CreateOptions& o,
                         const std::function<void(const std::string&)>& say) {
  IRIS_CHECK(!study_exists(dir), "rate: '", dir, "' already holds a study");
  IRIS_CHECK(!o.methods.empty(), "rate: a new study needs at least one --method NAME=FILE");
  std::vector<MethodSet> methods;
  for (const auto& arg : o.methods) {
    auto [name, spec] = parse_method_arg(arg);
    for (const auto& m : methods)
      IRIS_CHECK(m.name != name, "rate: two methods are named '", name, "' (name them: --method NAME=FILE)");
    methods.push_back(open_method(name, spec));
  }
  const auto label = [](const MethodSet& m) { return "method '" + m.name + "' ('" + m.output->what + "')"; };

  // The rows of a shard truth: the shard indices the samples were drawn from, the same for every method.
  std::vector<int64_t> indices;
  const MethodSet* indexed = nullptr;
  for (const auto& m : methods) {
    if (m.indices.empty()) continue;
    if (!indexed) {
      indices = m.indices, indexed = &m;
      continue;
    }
    IRIS_CHECK(m.indices == indices, "rate: ", label(m),
               " was sampled from other shard rows ('indices') than ", label(*indexed),
               "; methods must share their inputs");
  }
  std::unique_ptr<Rows> truth;
  const MethodSet* truth_owner = nullptr;
  if (!o.truth.empty()) {
    truth = open_truth(o.truth, indices);
  } else {
    for (auto& m : methods)
      if (m.truth) {
        truth_owner = &m;
        break;
      }
    IRIS_CHECK(truth_owner,
               "rate: no truth images: no method's file holds a 'truth' dataset (`iris sample --shard` "
               "stores one); give the camera images with --truth PATH[:DATASET]");
  }
  const Rows& ref = truth ? *truth : *truth_owner->truth;

  int64_t n = o.count;
  if (n < 0) {
    n = methods[0].output->size();
    for (const auto& m : methods)
      IRIS_CHECK(m.output->size() == n, "rate: ", label(m), " has ", m.output->size(), " images but ",
                 label(methods[0]), " has ", n, "; give --count N to use the first N of each");
  }
  IRIS_CHECK(n > 0, "rate: --count must be positive (got ", n, ")");
  for (const auto& m : methods)
    IRIS_CHECK(m.output->size() >= n, "rate: ", label(m), " has only ", m.output->size(),
               " images; the study uses ", n);
  IRIS_CHECK(ref.size() >= n, "rate: the truth '", ref.what, "' has only ", ref.size(),
             " images; the study uses ", n);
  const MethodSet* input_owner = nullptr;
  if (o.show_input) {
    for (const auto& m : methods)
      if (m.input) {
        input_owner = &m;
        break;
      }
    IRIS_CHECK(input_owner,
               "rate: --show-input needs the low-res inputs, and no method's file holds 'lowres'");
    IRIS_CHECK(input_owner->input->size() >= n, "rate: '", input_owner->input->what, "' has only ",
               input_owner->input->size(), " images; the study uses ", n);
  }
  const int64_t per_method = o.images_per_method < 0 ? n : o.images_per_method;
  IRIS_CHECK(per_method >= 1 && per_method <= n, "rate: --images-per-method ", per_method, " is not in [1, ",
             n, "] (the study's images)");

  StudyConfig s;
  s.seed = o.seed;
  s.view_ms = o.view_ms;
  s.images = n;
  s.images_per_method = per_method;
  s.show_input = o.show_input;
  s.token_hash = o.token_hash;
  s.truth_source = ref.what;
  s.created = utc_now_iso();
  for (const auto& m : methods) s.methods.push_back({m.name, m.output->what, 0, m.attrs});
  const MethodSet* named = nullptr;
  for (const auto& m : methods)
    if (static_cast<int64_t>(m.names.size()) >= n) {
      named = &m;
      break;
    }
  std::vector<uint32_t> crcs(methods.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    const std::string name = named ? named->names[static_cast<size_t>(i)] : default_name(i);
    s.image_names.push_back(name);
    const data::Image t = ref.image(i);
    if (i == 0) s.height = t.height, s.width = t.width, s.channels = t.channels;
    IRIS_CHECK(t.height == s.height && t.width == s.width && t.channels == s.channels, "rate: truth image ",
               i, " of '", ref.what, "' is ", t.str(), ", the first is ",
               data::Image(s.height, s.width, s.channels).str());
    s.truth_crc32c = h5::crc32c(t.pixels.data(), t.size(), s.truth_crc32c);
    write_png_atomic(truth_image_file(dir, i), t);
    for (size_t k = 0; k < methods.size(); ++k) {
      const MethodSet& m = methods[k];
      if (m.truth && &m != truth_owner) {
        IRIS_CHECK(m.truth->size() >= n, "rate: ", label(m), " holds ", m.truth->size(),
                   " truth images; the study uses ", n);
        const data::Image mt = m.truth->image(i);
        IRIS_CHECK(mt == t, "rate: the truth images of ", label(m), " differ from the study's ('", ref.what,
                   "'): image ", i, " ('", name,
                   "') is not the same; every method must be sampled from the same "
                   "inputs (the same shard range)");
      }
      const data::Image out = m.output->image(i);
      IRIS_CHECK(out.height == t.height && out.width == t.width && out.channels == t.channels,
                 "rate: ", label(m), ": image ", i, " is ", out.str(), " but the truth ('", ref.what,
                 "') is ", t.str());
      crcs[k] = h5::crc32c(out.pixels.data(), out.size(), crcs[k]);
      write_png_atomic(method_image_file(dir, m.name, i), out);
    }
    if (input_owner) write_png_atomic(input_image_file(dir, i), input_owner->input->image(i));
  }
  for (size_t k = 0; k < methods.size(); ++k) s.methods[k].crc32c = crcs[k];
  s.display_px = o.display_px > 0 ? o.display_px : auto_display_px(s.height, s.width);
  save_study(dir, s);
  say("created the study '" + dir + "': " + std::to_string(n) + " images x " +
      std::to_string(methods.size()) + " methods, " + std::to_string(s.trials_per_rater()) +
      " trials per rater; truth from '" + ref.what + "'");
  return s;
}

}  // namespace iris::rate
