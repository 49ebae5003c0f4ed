// Shard folders: ShardWriter (appends samples, writes a shard every K samples, then the index) and ShardSet
// (opens a folder through its index, validates every shard, reads samples). Format in shard.h.
#include "data/shard.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/resize.h"
#include "framework/io/hdf5.h"

namespace iris::data {

namespace fs = std::filesystem;

// ---- spec -------------------------------------------------------------------------------------------------

std::string lowres_dataset_name(int h) {
  return "lowres_" + std::to_string(h);
}

int ShardSpec::lowres_width(int h) const {
  IRIS_CHECK(height > 0 && h > 0 && (static_cast<int64_t>(h) * width) % height == 0,
             "shard spec: low-res height ", h, " gives a non-integer width for ", height, "x", width,
             " images");
  return static_cast<int>(static_cast<int64_t>(h) * width / height);
}

void ShardSpec::validate() const {
  IRIS_CHECK(height > 0 && width > 0, "shard spec: image size ", height, "x", width, " must be positive");
  IRIS_CHECK(channels == 1 || channels == 3, "shard spec: ", channels, " channels; expected 1 or 3");
  for (size_t i = 0; i < lowres_sizes.size(); ++i) {
    const int h = lowres_sizes[i];
    IRIS_CHECK(h > 0 && h < height, "shard spec: low-res size ", h, " must be in [1, ", height, ")");
    (void)lowres_width(h);
    for (size_t j = 0; j < i; ++j)
      IRIS_CHECK(lowres_sizes[j] != h, "shard spec: low-res size ", h, " repeated");
  }
}

// ---- writer -----------------------------------------------------------------------------------------------

ShardWriter::ShardWriter(std::string dir, ShardSpec spec, ShardWriterOptions options)
    : dir_(std::move(dir)), spec_(std::move(spec)), options_(std::move(options)) {
  spec_.validate();
  IRIS_CHECK(options_.samples_per_shard > 0, "ShardWriter '", dir_,
             "': samples_per_shard must be positive, got ", options_.samples_per_shard);
  IRIS_CHECK(!options_.prefix.empty() && options_.prefix.find('/') == std::string::npos, "ShardWriter '",
             dir_, "': bad shard prefix '", options_.prefix, "'");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  IRIS_CHECK(!ec && fs::is_directory(dir_), "ShardWriter: cannot create folder '", dir_, "': ", ec.message());
  const fs::path index = fs::path(dir_) / kShardIndexFile;
  if (fs::exists(index)) {
    IRIS_CHECK(options_.overwrite, "ShardWriter: '", dir_, "' already holds a shard set (", index.string(),
               "); remove it or pass overwrite");
    fs::remove(index, ec);
    IRIS_CHECK(!ec, "ShardWriter: cannot remove '", index.string(), "': ", ec.message());
  }
  lowres_.resize(spec_.lowres_sizes.size());
}

ShardWriter::~ShardWriter() = default;

void ShardWriter::add(const Image& image, int32_t label) {
  Sample s;
  s.image = image;
  s.label = label;
  add(s);
}

void ShardWriter::add(const Sample& sample) {
  IRIS_CHECK(!finished_, "ShardWriter '", dir_, "': add after finish");
  const std::string what = "ShardWriter '" + dir_ + "': sample " + std::to_string(total_);
  check_image(sample.image, what);
  const Image& im = sample.image;
  IRIS_CHECK(im.height == spec_.height && im.width == spec_.width && im.channels == spec_.channels, what,
             " is ", im.str(), " but the set holds ", spec_.height, "x", spec_.width, "x", spec_.channels,
             " images");
  if (spec_.has_labels) {
    IRIS_CHECK(sample.label >= 0, what, " has no label (", sample.label, ") but the set has labels");
    IRIS_CHECK(spec_.class_names.empty() || sample.label < static_cast<int32_t>(spec_.class_names.size()),
               what, " has label ", sample.label, " but the set has ", spec_.class_names.size(), " classes");
  } else {
    IRIS_CHECK(sample.label == -1, what, " has label ", sample.label, " but the set has no labels");
  }
  IRIS_CHECK(sample.lowres.empty() || sample.lowres.size() == spec_.lowres_sizes.size(), what, " has ",
             sample.lowres.size(), " low-res images; the set has ", spec_.lowres_sizes.size(),
             " low-res sizes");
  for (size_t k = 0; k < spec_.lowres_sizes.size(); ++k) {
    const int h = spec_.lowres_sizes[k], w = spec_.lowres_width(h);
    if (sample.lowres.empty()) {
      const Image lr = resize(im, h, w, Filter::bicubic);
      lowres_[k].insert(lowres_[k].end(), lr.pixels.begin(), lr.pixels.end());
    } else {
      const Image& lr = sample.lowres[k];
      check_image(lr, what + " low-res " + std::to_string(h));
      IRIS_CHECK(lr.height == h && lr.width == w && lr.channels == spec_.channels, what, " low-res image ", k,
                 " is ", lr.str(), "; expected ", h, "x", w, "x", spec_.channels);
      lowres_[k].insert(lowres_[k].end(), lr.pixels.begin(), lr.pixels.end());
    }
  }
  images_.insert(images_.end(), im.pixels.begin(), im.pixels.end());
  if (spec_.has_labels) labels_.push_back(sample.label);
  ++pending_;
  ++total_;
  if (pending_ == options_.samples_per_shard) flush_shard();
}

namespace {
void write_spec_attrs(h5::Group& root, const ShardSpec& spec) {
  root.set_string_attr("format", kShardFormat);
  root.set_int_attr("format_version", kShardFormatVersion);
  root.set_string_attr("source", spec.source);
  root.set_strings_attr("class_names", spec.class_names);
  root.set_int_attr("height", spec.height);
  root.set_int_attr("width", spec.width);
  root.set_int_attr("channels", spec.channels);
  root.set_ints_attr("lowres_sizes",
                     std::vector<int64_t>(spec.lowres_sizes.begin(), spec.lowres_sizes.end()));
  root.set_int_attr("has_labels", spec.has_labels ? 1 : 0);
}
}  // namespace

void ShardWriter::flush_shard() {
  if (pending_ == 0) return;
  char name[64];
  std::snprintf(name, sizeof(name), "-%05lld.h5", static_cast<long long>(shards_.size()));
  const std::string file = options_.prefix + name;
  const int64_t n = pending_;
  {
    h5::AtomicWriter w((fs::path(dir_) / file).string());
    h5::Group root = w.root();
    write_spec_attrs(root, spec_);
    root.set_int_attr("count", n);
    root.set_int_attr("shard_index", static_cast<int64_t>(shards_.size()));
    root.write_tensor("images", Tensor::from_vector(images_, {n, spec_.height, spec_.width, spec_.channels}));
    if (spec_.has_labels) root.write_tensor("labels", Tensor::from_vector(labels_, {n}));
    for (size_t k = 0; k < spec_.lowres_sizes.size(); ++k) {
      const int h = spec_.lowres_sizes[k];
      root.write_tensor(lowres_dataset_name(h),
                        Tensor::from_vector(lowres_[k], {n, h, spec_.lowres_width(h), spec_.channels}));
    }
    w.commit();
  }
  shards_.emplace_back(file, n);
  images_.clear();
  labels_.clear();
  for (auto& l : lowres_) l.clear();
  pending_ = 0;
}

void ShardWriter::finish() {
  IRIS_CHECK(!finished_, "ShardWriter '", dir_, "': finish called twice");
  flush_shard();
  nlohmann::ordered_json j;
  j["format"] = kShardFormat;
  j["format_version"] = kShardFormatVersion;
  j["source"] = spec_.source;
  j["height"] = spec_.height;
  j["width"] = spec_.width;
  j["channels"] = spec_.channels;
  j["lowres_sizes"] = spec_.lowres_sizes;
  j["has_labels"] = spec_.has_labels;
  j["class_names"] = spec_.class_names;
  j["num_samples"] = total_;
  j["samples_per_shard"] = options_.samples_per_shard;
  j["shards"] = nlohmann::ordered_json::array();
  for (const auto& [file, count] : shards_) {
    const auto bytes = static_cast<int64_t>(fs::file_size(fs::path(dir_) / file));
    j["shards"].push_back({{"file", file}, {"count", count}, {"bytes", bytes}});
  }
  h5::write_file_atomic((fs::path(dir_) / kShardIndexFile).string(), j.dump(2) + "\n");
  finished_ = true;
  if (options_.overwrite) remove_stale_shards();
}

// After overwriting a set, shards of the old set beyond the new count ("<prefix>-NNNNN.h5" not in the new
// index) would only waste space: remove them. Other files are left alone.
void ShardWriter::remove_stale_shards() {
  const std::string head = options_.prefix + "-";
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    const bool ours = name.size() == head.size() + 8 && name.compare(0, head.size(), head) == 0 &&
                      name.compare(name.size() - 3, 3, ".h5") == 0 &&
                      std::all_of(name.begin() + static_cast<std::ptrdiff_t>(head.size()), name.end() - 3,
                                  [](char c) { return c >= '0' && c <= '9'; });
    const bool listed =
        std::any_of(shards_.begin(), shards_.end(), [&](const auto& s) { return s.first == name; });
    if (ours && !listed) {
      std::error_code ec;
      fs::remove(entry.path(), ec);
    }
  }
}

// ---- reader -----------------------------------------------------------------------------------------------

namespace {

struct OpenShard {
  h5::File file;
  h5::Dataset images, labels;
  std::map<int, h5::Dataset> lowres;
  uint64_t last_use = 0;
};

ShardSpec spec_from_index(const nlohmann::json& j, const std::string& index_path) {
  const std::string format = j.at("format").get<std::string>();
  IRIS_CHECK(format == kShardFormat, "shard index '", index_path, "' has format '", format, "'; expected '",
             kShardFormat, "'");
  const int64_t version = j.at("format_version").get<int64_t>();
  IRIS_CHECK(version == kShardFormatVersion, "shard index '", index_path, "' has format version ", version,
             "; this build of Iris reads version ", kShardFormatVersion);
  ShardSpec spec;
  spec.source = j.value("source", std::string());
  spec.height = j.at("height").get<int>();
  spec.width = j.at("width").get<int>();
  spec.channels = j.at("channels").get<int>();
  spec.lowres_sizes = j.at("lowres_sizes").get<std::vector<int>>();
  spec.has_labels = j.at("has_labels").get<bool>();
  spec.class_names = j.at("class_names").get<std::vector<std::string>>();
  return spec;
}

// Checks one shard against the index; every message names the shard file.
void validate_shard(const std::string& path, const ShardSpec& spec, const ShardInfo& info, int64_t position,
                    bool verify) {
  const int64_t count = info.count;
  IRIS_CHECK(fs::exists(path), "missing shard '", path, "' (listed in ", kShardIndexFile, ")");
  const h5::File file = h5::File::open(path);
  const h5::Group root = file.root();
  IRIS_CHECK(root.has_attr("format") && root.string_attr("format") == kShardFormat, "'", path,
             "' is not an Iris shard (no format = \"", kShardFormat, "\" attribute)");
  const int64_t version = root.int_attr("format_version");
  IRIS_CHECK(version == kShardFormatVersion, "shard '", path, "' has format version ", version,
             "; this build of Iris reads version ", kShardFormatVersion);
  ShardSpec s;
  s.height = static_cast<int>(root.int_attr("height"));
  s.width = static_cast<int>(root.int_attr("width"));
  s.channels = static_cast<int>(root.int_attr("channels"));
  for (int64_t h : root.ints_attr("lowres_sizes")) s.lowres_sizes.push_back(static_cast<int>(h));
  s.has_labels = root.int_attr("has_labels") != 0;
  s.class_names = root.strings_attr("class_names");
  IRIS_CHECK(s.height == spec.height && s.width == spec.width && s.channels == spec.channels, "shard '", path,
             "' holds ", s.height, "x", s.width, "x", s.channels, " images but the index says ", spec.height,
             "x", spec.width, "x", spec.channels);
  IRIS_CHECK(s.lowres_sizes == spec.lowres_sizes && s.has_labels == spec.has_labels &&
                 s.class_names == spec.class_names,
             "shard '", path, "' has other low-res sizes, labels or class names than the index");
  const int64_t n = root.int_attr("count");
  IRIS_CHECK(n == count, "shard '", path, "' holds ", n, " samples but the index says ", count);
  const int64_t written_as = root.int_attr("shard_index");
  IRIS_CHECK(written_as == position, "shard '", path, "' was written as shard ", written_as,
             " but the index lists it ", "at position ", position,
             " (files swapped or copied from another set?)");

  auto check_dataset = [&](const std::string& name, DType dtype, const Shape& shape) {
    IRIS_CHECK(root.has(name), "shard '", path, "' has no dataset '", name, "'");
    const h5::Dataset ds = root.open_dataset(name);
    IRIS_CHECK(ds.dtype() == dtype && ds.shape() == shape, "shard '", path, "' dataset '", name, "' is ",
               dtype_name(ds.dtype()), shape_str(ds.shape()), "; expected ", dtype_name(dtype),
               shape_str(shape));
    if (verify) ds.verify_checksum();
  };
  check_dataset("images", DType::u8, {count, spec.height, spec.width, spec.channels});
  if (spec.has_labels) check_dataset("labels", DType::i32, {count});
  for (int h : spec.lowres_sizes)
    check_dataset(lowres_dataset_name(h), DType::u8, {count, h, spec.lowres_width(h), spec.channels});
  // Last, so that the checks above can say more precisely what is wrong with a replaced file.
  if (info.bytes >= 0) {
    const auto size = static_cast<int64_t>(fs::file_size(path));
    IRIS_CHECK(size == info.bytes, "shard '", path, "' is ", size, " bytes but the index says ", info.bytes,
               " (modified or replaced after the index was written?)");
  }
}

}  // namespace

struct ShardSet::Impl {
  std::string dir;
  ShardSpec spec;
  std::vector<ShardInfo> shards;
  int64_t total = 0;
  ShardSetOptions options;

  std::mutex mutex;  // guards the cache below
  std::map<int64_t, std::unique_ptr<OpenShard>> open;
  std::set<std::pair<int64_t, int>> verified;  // (shard, dataset kind) checked (options.verify_on_first_read)
  uint64_t clock = 0;

  std::string shard_path(int64_t s) const {
    return (fs::path(dir) / shards[static_cast<size_t>(s)].file).string();
  }

  // The open shard `s` (opening it, and closing the least recently used one, as needed). Caller holds mutex.
  OpenShard& get(int64_t s) {
    auto it = open.find(s);
    if (it == open.end()) {
      if (static_cast<int>(open.size()) >= std::max(1, options.max_open_files)) {
        auto lru = std::min_element(open.begin(), open.end(), [](const auto& a, const auto& b) {
          return a.second->last_use < b.second->last_use;
        });
        open.erase(lru);
      }
      auto o = std::make_unique<OpenShard>();
      o->file = h5::File::open(shard_path(s));
      const h5::Group root = o->file.root();
      o->images = root.open_dataset("images");
      if (spec.has_labels) o->labels = root.open_dataset("labels");
      for (int h : spec.lowres_sizes) o->lowres.emplace(h, root.open_dataset(lowres_dataset_name(h)));
      it = open.emplace(s, std::move(o)).first;
    }
    it->second->last_use = ++clock;
    return *it->second;
  }

  // Rows [start, start + count) of global samples of one dataset kind (h = 0: images, -1: labels, else the
  // low-res size) into dst, which holds count rows of row_bytes. Caller holds mutex.
  void read_locked(int h, int64_t start, int64_t count, uint8_t* dst, size_t row_bytes) {
    IRIS_CHECK(start >= 0 && count >= 0 && start + count <= total, "shard set '", dir, "': samples [", start,
               ", ", start + count, ") out of range (", total, " samples)");
    int64_t i = start;
    while (i < start + count) {
      const auto it = std::upper_bound(shards.begin(), shards.end(), i,
                                       [](int64_t v, const ShardInfo& s) { return v < s.first; });
      const int64_t s = (it - shards.begin()) - 1;
      const ShardInfo& info = shards[static_cast<size_t>(s)];
      const int64_t row = i - info.first;
      const int64_t n = std::min(start + count - i, info.count - row);
      OpenShard& o = get(s);
      const h5::Dataset& ds = h == 0 ? o.images : h < 0 ? o.labels : o.lowres.at(h);
      if (options.verify_on_first_read && !verified.count({s, h})) {
        ds.verify_checksum();
        verified.insert({s, h});
      }
      ds.read_rows_into(row, n, dst + static_cast<size_t>(i - start) * row_bytes,
                        static_cast<size_t>(n) * row_bytes);
      i += n;
    }
  }
  void read(int h, int64_t start, int64_t count, uint8_t* dst, size_t row_bytes) {
    std::lock_guard<std::mutex> lock(mutex);
    read_locked(h, start, count, dst, row_bytes);
  }
};

ShardSet ShardSet::open(const std::string& dir, const ShardSetOptions& options) {
  IRIS_CHECK(fs::is_directory(dir), "shard set '", dir, "': no such folder");
  const std::string index_path = (fs::path(dir) / kShardIndexFile).string();
  IRIS_CHECK(fs::exists(index_path), "shard set '", dir, "': no ", kShardIndexFile,
             " (not a shard folder, or its writing did not finish)");
  auto impl = std::make_shared<Impl>();
  impl->dir = dir;
  impl->options = options;
  try {
    std::ifstream in(index_path);
    IRIS_CHECK(in.good(), "cannot read shard index '", index_path, "'");
    const nlohmann::json j = nlohmann::json::parse(in);
    impl->spec = spec_from_index(j, index_path);
    for (const auto& s : j.at("shards")) {
      ShardInfo info;
      info.file = s.at("file").get<std::string>();
      info.count = s.at("count").get<int64_t>();
      info.first = impl->total;
      info.bytes = s.value("bytes", int64_t{-1});
      IRIS_CHECK(!info.file.empty() && info.file.find('/') == std::string::npos && info.file != "." &&
                     info.file != "..",
                 "shard index '", index_path, "' lists a bad shard file name '", info.file, "'");
      IRIS_CHECK(info.count > 0, "shard index '", index_path, "' lists shard '", info.file, "' with ",
                 info.count, " samples");
      impl->total += info.count;
      impl->shards.push_back(info);
    }
    const int64_t num = j.at("num_samples").get<int64_t>();
    IRIS_CHECK(num == impl->total, "shard index '", index_path, "' says ", num,
               " samples but its shards hold ", impl->total);
  } catch (const nlohmann::json::exception& e) {
    IRIS_THROW("shard index '", index_path, "' is malformed: ", e.what());
  }
  try {
    impl->spec.validate();
  } catch (const Error& e) {
    IRIS_THROW("shard index '", index_path, "': ", e.message());
  }
  for (size_t i = 0; i < impl->shards.size(); ++i)
    validate_shard((fs::path(dir) / impl->shards[i].file).string(), impl->spec, impl->shards[i],
                   static_cast<int64_t>(i), options.verify_checksums);
  ShardSet set;
  set.impl_ = std::move(impl);
  return set;
}

const std::string& ShardSet::dir() const {
  return impl_->dir;
}
const ShardSpec& ShardSet::spec() const {
  return impl_->spec;
}
int64_t ShardSet::size() const {
  return impl_->total;
}
const std::vector<ShardInfo>& ShardSet::shards() const {
  return impl_->shards;
}

std::pair<int64_t, int64_t> ShardSet::locate(int64_t i) const {
  IRIS_CHECK(i >= 0 && i < impl_->total, "shard set '", impl_->dir, "': sample ", i, " out of range (",
             impl_->total, " samples)");
  const auto& sh = impl_->shards;
  const auto it =
      std::upper_bound(sh.begin(), sh.end(), i, [](int64_t v, const ShardInfo& s) { return v < s.first; });
  const int64_t s = (it - sh.begin()) - 1;
  return {s, i - sh[static_cast<size_t>(s)].first};
}

Image ShardSet::image(int64_t i) const {
  const ShardSpec& sp = impl_->spec;
  Image im(sp.height, sp.width, sp.channels);
  impl_->read(0, i, 1, im.pixels.data(), im.size());
  return im;
}

Image ShardSet::lowres(int64_t i, int h) const {
  const ShardSpec& sp = impl_->spec;
  IRIS_CHECK(std::find(sp.lowres_sizes.begin(), sp.lowres_sizes.end(), h) != sp.lowres_sizes.end(),
             "shard set '", impl_->dir, "' has no low-res size ", h);
  Image im(h, sp.lowres_width(h), sp.channels);
  impl_->read(h, i, 1, im.pixels.data(), im.size());
  return im;
}

int32_t ShardSet::label(int64_t i) const {
  IRIS_CHECK(impl_->spec.has_labels, "shard set '", impl_->dir, "' has no labels");
  int32_t v = 0;
  impl_->read(-1, i, 1, reinterpret_cast<uint8_t*>(&v), sizeof(v));
  return v;
}

Sample ShardSet::sample(int64_t i) const {
  return samples({i}, impl_->spec.lowres_sizes)[0];
}

std::vector<Sample> ShardSet::samples(const std::vector<int64_t>& indices,
                                      const std::vector<int>& lowres_sizes) const {
  const ShardSpec& sp = impl_->spec;
  for (int h : lowres_sizes)
    IRIS_CHECK(std::find(sp.lowres_sizes.begin(), sp.lowres_sizes.end(), h) != sp.lowres_sizes.end(),
               "shard set '", impl_->dir, "' has no low-res size ", h);
  std::vector<Sample> out(indices.size());
  std::lock_guard<std::mutex> lock(
      impl_->mutex);  // once for the whole list: readers on other threads wait less
  for (size_t k = 0; k < indices.size(); ++k) {
    Sample& s = out[k];
    const int64_t i = indices[k];
    s.image = Image(sp.height, sp.width, sp.channels);
    impl_->read_locked(0, i, 1, s.image.pixels.data(), s.image.size());
    if (sp.has_labels) impl_->read_locked(-1, i, 1, reinterpret_cast<uint8_t*>(&s.label), sizeof(s.label));
    for (int h : lowres_sizes) {
      s.lowres.emplace_back(h, sp.lowres_width(h), sp.channels);
      impl_->read_locked(h, i, 1, s.lowres.back().pixels.data(), s.lowres.back().size());
    }
  }
  return out;
}

Tensor ShardSet::images(int64_t start, int64_t count) const {
  const ShardSpec& sp = impl_->spec;
  Tensor t = Tensor::empty({count, sp.height, sp.width, sp.channels}, DType::u8);
  impl_->read(0, start, count, t.data<uint8_t>(), static_cast<size_t>(sp.height) * sp.width * sp.channels);
  return t;
}

Tensor ShardSet::lowres(int h, int64_t start, int64_t count) const {
  const ShardSpec& sp = impl_->spec;
  IRIS_CHECK(std::find(sp.lowres_sizes.begin(), sp.lowres_sizes.end(), h) != sp.lowres_sizes.end(),
             "shard set '", impl_->dir, "' has no low-res size ", h);
  const int w = sp.lowres_width(h);
  Tensor t = Tensor::empty({count, h, w, sp.channels}, DType::u8);
  impl_->read(h, start, count, t.data<uint8_t>(), static_cast<size_t>(h) * w * sp.channels);
  return t;
}

Tensor ShardSet::labels(int64_t start, int64_t count) const {
  IRIS_CHECK(impl_->spec.has_labels, "shard set '", impl_->dir, "' has no labels");
  Tensor t = Tensor::empty({count}, DType::i32);
  impl_->read(-1, start, count, reinterpret_cast<uint8_t*>(t.data<int32_t>()), sizeof(int32_t));
  return t;
}

void ShardSet::check_labels(int64_t num_classes) const {
  IRIS_CHECK(impl_->spec.has_labels, "shard set '", impl_->dir, "' has no labels");
  for (const ShardInfo& info : impl_->shards) {
    const auto labels = this->labels(info.first, info.count).to_vector<int32_t>();
    for (size_t row = 0; row < labels.size(); ++row)
      IRIS_CHECK(labels[row] >= 0 && labels[row] < num_classes, "shard '",
                 impl_->shard_path(&info - impl_->shards.data()), "' sample ", row, " (index ",
                 info.first + static_cast<int64_t>(row), " of the set) has label ", labels[row],
                 ", outside [0, ", num_classes, ")");
  }
}

void ShardSet::verify_checksums() const {
  for (size_t i = 0; i < impl_->shards.size(); ++i)
    validate_shard(impl_->shard_path(static_cast<int64_t>(i)), impl_->spec, impl_->shards[i],
                   static_cast<int64_t>(i), true);
}

}  // namespace iris::data
