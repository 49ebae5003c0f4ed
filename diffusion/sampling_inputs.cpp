#include "diffusion/sampling_inputs.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "data/image_set.h"
#include "data/resize.h"
#include "data/shard.h"
#include "framework/core/error.h"
#include "framework/io/hdf5.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// [start, start + count) of a set of `size` samples; count < 0 means: to the end.
std::pair<int64_t, int64_t> shard_range(const InputOptions& o, int64_t size) {
  IRIS_CHECK(o.start >= 0 && o.start < size, "--start ", o.start, " is outside the shard set '", o.shard,
             "' (", size, " samples)");
  IRIS_CHECK(o.count >= -1, "--count must be positive (or -1 for every sample from --start), got ", o.count);
  const int64_t n = o.count == -1 ? size - o.start : o.count;
  IRIS_CHECK(n > 0, "--count must be positive (or -1 for every sample from --start), got ", o.count);
  IRIS_CHECK(o.start + n <= size, "--start ", o.start, " --count ", n,
             " runs past the end of the shard set '", o.shard, "' (", size, " samples)");
  return {o.start, n};
}

bool has_lowres(const data::ShardSpec& sp, int h) {
  return std::find(sp.lowres_sizes.begin(), sp.lowres_sizes.end(), h) != sp.lowres_sizes.end();
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s.empty() ? "none" : s;
}

// Truth images and labels of [start, start + n) when the set has them; names "<index>[_<class>]".
void read_shard_extras(const data::ShardSet& set, int64_t start, int64_t n, int truth_size, Inputs& in) {
  const data::ShardSpec& sp = set.spec();
  if (sp.height == truth_size && sp.width == truth_size)
    in.truth = set.images(start, n);
  else if (sp.height == sp.width && has_lowres(sp, truth_size))
    in.truth = set.lowres(truth_size, start, n);
  if (sp.has_labels) {
    const auto l = set.labels(start, n).to_vector<int64_t>();
    in.labels.assign(l.begin(), l.end());
  }
  for (int64_t i = 0; i < n; ++i) {
    in.indices.push_back(start + i);
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%06lld", static_cast<long long>(start + i));
    std::string name = buf;
    if (sp.has_labels) {
      name += '_';
      name += file_safe(label_name(in.labels[static_cast<size_t>(i)], sp.class_names));
    }
    in.names.push_back(name);
  }
}

// The image files of --input-dir, in sorted name order (a folder image set).
std::vector<std::string> image_files_in(const std::string& dir) {
  IRIS_CHECK(fs::is_directory(dir), "--input-dir '", dir, "' is not a folder");
  IRIS_CHECK(!fs::exists(fs::path(dir) / data::kShardIndexFile), "--input-dir '", dir,
             "' is a shard folder: give it as --shard");
  const data::ImageSet set = data::ImageSet::open(dir, {.tool = "--input-dir"});
  std::vector<std::string> files;
  for (int64_t i = 0; i < set.size(); ++i) files.push_back((fs::path(dir) / set.name(i)).string());
  return files;
}

// The stems made safe for file names and unique ("a", "a_2", ...) when two inputs share one.
std::vector<std::string> unique_names(const std::vector<std::string>& stems) {
  std::vector<std::string> names;
  std::map<std::string, int> seen;
  for (const auto& s : stems) {
    std::string stem = file_safe(s);
    const int k = ++seen[stem];
    names.push_back(k == 1 ? stem : stem + "_" + std::to_string(k));
  }
  return names;
}

// The images of one --input item with their name stems: an image file as it always was read (by
// read_image, named by its stem), anything else as an image set (a folder: its files' stems; an HDF5
// dataset or a shard folder: "<file stem>_<index>").
void read_input_item(const std::string& item, std::vector<data::Image>& images,
                     std::vector<std::string>& stems) {
  const auto [path, dataset] = data::split_dataset(item);
  std::error_code ec;
  if (dataset.empty() && fs::is_regular_file(path, ec) && !h5::File::is_hdf5(path)) {
    images.push_back(data::read_image(path));
    stems.push_back(fs::path(path).stem().string());
    return;
  }
  const data::ImageSet set = data::ImageSet::open(item, {.tool = "--input"});
  const std::string base = fs::path(path).lexically_normal().filename().empty()
                               ? fs::path(path).lexically_normal().parent_path().filename().stem().string()
                               : fs::path(path).lexically_normal().filename().stem().string();
  for (int64_t i = 0; i < set.size(); ++i) {
    images.push_back(set.image(i));
    if (set.named()) {
      stems.push_back(fs::path(set.name(i)).stem().string());
    } else {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "_%06lld", static_cast<long long>(i));
      stems.push_back(base + buf);
    }
  }
}

}  // namespace

std::vector<std::string> class_names_in(const std::string& shard_dir) {
  const fs::path index = fs::path(shard_dir) / data::kShardIndexFile;
  std::error_code ec;
  if (shard_dir.empty() || !fs::is_regular_file(index, ec)) return {};
  try {
    std::ifstream in(index);
    const nlohmann::json j = nlohmann::json::parse(in);
    return j.value("class_names", std::vector<std::string>{});
  } catch (const nlohmann::json::exception&) {
    return {};  // names are a convenience: a broken index only costs them
  }
}

std::vector<int64_t> parse_labels(const std::vector<std::string>& items, int64_t num_classes,
                                  const std::vector<std::string>& names) {
  std::vector<int64_t> labels;
  for (const auto& item : items) {
    int64_t label = -1;
    const bool numeric = !item.empty() && std::all_of(item.begin(), item.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    if (numeric) {
      label = std::stoll(item);
    } else {
      for (size_t k = 0; k < names.size(); ++k)
        if (lower(names[k]) == lower(item)) label = static_cast<int64_t>(k);
      if (label < 0) {
        std::string known;
        for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
        IRIS_THROW("--labels: unknown class '", item, "'",
                   names.empty()
                       ? std::string(" (the model's data set has no class names: give indices 0..") +
                             std::to_string(num_classes - 1) + ")"
                       : "; the classes are: " + known);
      }
    }
    IRIS_CHECK(label < num_classes, "--labels: class ", label, " is out of range: the model has ",
               num_classes, " classes (0..", num_classes - 1, ")");
    labels.push_back(label);
  }
  IRIS_CHECK(!labels.empty(), "--labels: no labels given");
  return labels;
}

std::vector<int64_t> per_class_labels(int64_t k, int64_t num_classes) {
  IRIS_CHECK(k > 0, "--per-class must be positive, got ", k);
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < num_classes; ++c)
    for (int64_t i = 0; i < k; ++i) labels.push_back(c);
  return labels;
}

std::string label_name(int64_t label, const std::vector<std::string>& names) {
  return label >= 0 && static_cast<size_t>(label) < names.size() ? names[static_cast<size_t>(label)]
                                                                 : std::to_string(label);
}

std::string file_safe(const std::string& s) {
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    out += std::isalnum(u) || c == '-' || c == '.' ? c : '_';
  }
  return out.empty() ? "_" : out;
}

Inputs read_lowres_inputs(const InputOptions& o, int lowres_size, int channels, int truth_size) {
  const int sources = !o.shard.empty() + !o.files.empty() + !o.dir.empty();
  IRIS_CHECK(sources == 1, sources == 0 ? "a super-resolution stage needs low-res inputs: give --shard DIR, "
                                          "--input FILE... or --input-dir DIR"
                                        : "give only one of --shard, --input and --input-dir");
  Inputs in;
  if (!o.shard.empty()) {
    IRIS_CHECK(!o.native_size,
               "--native-size takes image inputs at their own size, and --shard gives the shard set's "
               "low-res images at the model's size; to super-resolve its images of another size give "
               "--input ",
               o.shard, ":lowres_<h> (or :images) instead");
    const data::ShardSet set = data::ShardSet::open(o.shard);
    const data::ShardSpec& sp = set.spec();
    IRIS_CHECK(sp.channels == channels, "the shard set '", o.shard, "' has ", sp.channels,
               " channels but the model works on ", channels);
    IRIS_CHECK(has_lowres(sp, lowres_size), "the shard set '", o.shard, "' stores no ", lowres_size, "x",
               lowres_size,
               " low-res images (the model's data.lowres_size; it has: ", join_ints(sp.lowres_sizes),
               "); re-shard with --lowres ", lowres_size);
    IRIS_CHECK(sp.lowres_width(lowres_size) == lowres_size, "the shard set '", o.shard, "' holds ", sp.height,
               "x", sp.width, " images; the model needs square ones");
    const auto [start, n] = shard_range(o, set.size());
    in.lowres = set.lowres(lowres_size, start, n);
    read_shard_extras(set, start, n, truth_size, in);
    return in;
  }
  std::vector<data::Image> images;
  std::vector<std::string> stems;
  if (o.files.empty()) {
    for (const auto& f : image_files_in(o.dir)) {
      images.push_back(data::read_image(f));
      stems.push_back(fs::path(f).stem().string());
    }
  } else {
    for (const auto& item : o.files) read_input_item(item, images, stems);
  }
  IRIS_CHECK(!images.empty(), "the inputs given hold no image");
  for (size_t i = 0; i < images.size(); ++i) {
    data::Image& img = images[i];
    img = data::to_channels(img, channels);
    if (o.native_size) {
      // Any size, but one per run: the samples of a run are batched and stored as [N, H, W, C].
      IRIS_CHECK(img.height == images[0].height && img.width == images[0].width, "--native-size: input '",
                 stems[i], "' is ", img.height, "x", img.width, " but '", stems[0], "' is ", images[0].height,
                 "x", images[0].width,
                 ": the inputs of a run must share one size (run the others separately)");
      continue;
    }
    if (img.height != img.width) img = data::center_square_crop(img);
    if (img.height != lowres_size) img = data::resize(img, lowres_size, lowres_size, data::Filter::bicubic);
  }
  in.lowres = data::stack_images(images);
  in.names = unique_names(stems);
  return in;
}

Inputs read_shard_labels(const InputOptions& o, int truth_size) {
  const data::ShardSet set = data::ShardSet::open(o.shard);
  const auto [start, n] = shard_range(o, set.size());
  Inputs in;
  read_shard_extras(set, start, n, truth_size, in);
  return in;
}

std::vector<int64_t> shard_output_sizes(const std::vector<const Stage*>& stages) {
  IRIS_CHECK(!stages.empty() && stages.front() != nullptr, "shard_output_sizes: no stages");
  const Stage& first = *stages.front();
  int64_t h = first.super_resolution() ? first.lowres_size() : 0;
  std::vector<int64_t> sizes;
  for (const Stage* st : stages) {
    IRIS_CHECK(st != nullptr, "shard_output_sizes: a stage is missing");
    h = st->output_size(h, h).first;  // a base stage: its resolution (it takes no input)
    sizes.push_back(h);
  }
  return sizes;
}

std::vector<int64_t> shard_output_sizes(const std::vector<LoadedStage>& stages) {
  std::vector<const Stage*> p;
  for (const LoadedStage& L : stages) p.push_back(L.stage.get());
  return shard_output_sizes(p);
}

int64_t shard_output_size(const std::vector<const Stage*>& stages) { return shard_output_sizes(stages).back(); }

int64_t shard_output_size(const std::vector<LoadedStage>& stages) { return shard_output_sizes(stages).back(); }

Inputs gather_inputs(const LoadedStage& L, const ConditionOptions& o, int truth_size,
                     std::vector<std::string>& class_names) {
  const Stage& st = *L.stage;
  const bool want_labels = !o.labels.empty() || o.per_class > 0;
  class_names = class_names_in(o.input.shard.empty() ? L.config.get_string("data.dir") : o.input.shard);
  if (st.super_resolution()) {
    IRIS_CHECK(!want_labels, "--labels and --per-class are for base stages; '", L.path,
               "' is a super-resolution stage (it samples from low-res inputs)");
    return read_lowres_inputs(o.input, static_cast<int>(L.config.get_int("data.lowres_size")),
                              static_cast<int>(st.channels()), truth_size);
  }
  IRIS_CHECK(o.input.files.empty() && o.input.dir.empty(),
             "--input and --input-dir are for super-resolution stages; '", L.path,
             "' is a base stage (use --labels, --per-class or --count)");
  IRIS_CHECK(!o.input.native_size,
             "--native-size is for super-resolution first stages (it keeps their input images' size); '",
             L.path, "' is a base stage");
  Inputs in;
  if (!o.input.shard.empty()) {
    // The shard range's labels (and its images at the model's size, when stored, as the truth).
    IRIS_CHECK(!want_labels, "give either --shard (its labels are used) or --labels/--per-class, not both");
    in = read_shard_labels(o.input, truth_size);
    if (st.num_classes() > 0)
      IRIS_CHECK(!in.labels.empty(), "the shard set '", o.input.shard,
                 "' has no labels, and the model is class-conditional: give --labels or --per-class");
    else
      in.labels.clear();
    return in;
  }
  if (st.num_classes() > 0) {
    IRIS_CHECK(!o.count_given, "--count applies to unconditional base stages and shard ranges; '", L.path,
               "' is class-conditional: give --labels or --per-class (default: 4 per class)");
    if (!o.labels.empty()) {
      IRIS_CHECK(o.per_class == 0, "give either --labels or --per-class, not both");
      in.labels = parse_labels(o.labels, st.num_classes(), class_names);
    } else {
      in.labels = per_class_labels(o.per_class > 0 ? o.per_class : 4, st.num_classes());
    }
  } else {
    IRIS_CHECK(!want_labels, "'", L.path,
               "' is an unconditional base stage: --labels and --per-class do not apply");
    IRIS_CHECK(o.input.count > 0, "--count must be positive, got ", o.input.count);
  }
  const int64_t n = in.labels.empty() ? o.input.count : static_cast<int64_t>(in.labels.size());
  for (int64_t i = 0; i < n; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%05lld", static_cast<long long>(i));
    in.names.push_back(in.labels.empty()
                           ? std::string(buf)
                           : std::string(buf) + "_" + file_safe(label_name(in.labels[i], class_names)));
  }
  return in;
}

std::vector<uint64_t> noise_streams(const Inputs& in, int64_t n) {
  std::vector<uint64_t> s;
  for (int64_t i = 0; i < n; ++i)
    s.push_back(in.indices.empty() ? static_cast<uint64_t>(i)
                                   : static_cast<uint64_t>(in.indices[static_cast<size_t>(i)]));
  return s;
}

Generator batch_generator(uint64_t seed, const std::vector<uint64_t>& stream_of,
                          const std::vector<int64_t>& rows) {
  std::vector<uint64_t> streams;
  for (int64_t r : rows) streams.push_back(stream_of.at(static_cast<size_t>(r)));
  return Generator::per_sample(seed, std::move(streams));
}

StageBatch condition_rows(const Inputs& in, const std::vector<int64_t>& rows, const Stage& first,
                          Device device) {
  StageBatch c;
  if (first.super_resolution()) c.lowres = data::u8_to_float(take_rows(in.lowres, rows)).to(device);
  if (!in.labels.empty() && first.num_classes() > 0) {
    std::vector<int64_t> labels;
    for (int64_t r : rows) labels.push_back(in.labels.at(static_cast<size_t>(r)));
    c.labels = Tensor::from_vector<int64_t>(labels, {static_cast<int64_t>(rows.size())}, device);
  }
  return c;
}

uint32_t inputs_checksum(const Inputs& in) {
  uint32_t crc = 0;
  for (const auto& n : in.names)
    crc = h5::crc32c(n.data(), n.size() + 1, crc);  // with the NUL: names stay apart
  if (in.lowres.defined()) {
    const Tensor c = in.lowres.cpu().contiguous();
    crc = h5::crc32c(c.data_ptr(), c.nbytes(), crc);
  }
  if (!in.labels.empty()) crc = h5::crc32c(in.labels.data(), in.labels.size() * sizeof(int64_t), crc);
  return crc;
}

void write_inputs(h5::Group& root, const Inputs& in) {
  if (in.lowres.defined()) root.write_tensor("lowres", in.lowres);
  if (in.truth.defined()) root.write_tensor("truth", in.truth);
  if (!in.labels.empty()) {
    std::vector<int32_t> l(in.labels.begin(), in.labels.end());
    root.write_tensor("labels", Tensor::from_vector<int32_t>(l, {static_cast<int64_t>(l.size())}));
  }
  if (!in.indices.empty())
    root.write_tensor("indices",
                      Tensor::from_vector<int64_t>(in.indices, {static_cast<int64_t>(in.indices.size())}));
}

Tensor take_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  const Tensor src = x.cpu().contiguous();
  Shape shape = src.shape();
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor out = Tensor::empty(shape, src.dtype());
  const size_t row_bytes = src.nbytes() / static_cast<size_t>(std::max<int64_t>(src.size(0), 1));
  for (size_t k = 0; k < rows.size(); ++k) {
    IRIS_ASSERT(rows[k] >= 0 && rows[k] < src.size(0));
    std::memcpy(static_cast<uint8_t*>(out.data_ptr()) + k * row_bytes,
                static_cast<const uint8_t*>(src.data_ptr()) + static_cast<size_t>(rows[k]) * row_bytes,
                row_bytes);
  }
  return out;
}

void put_rows(Tensor& dst, int64_t total, const std::vector<int64_t>& rows, const Tensor& src) {
  const Tensor s = src.cpu().contiguous();
  IRIS_ASSERT(s.dtype() == DType::u8 && s.dim() >= 1 && s.size(0) == static_cast<int64_t>(rows.size()));
  if (!dst.defined()) {
    Shape shape = s.shape();
    shape[0] = total;
    dst = Tensor::empty(shape, DType::u8);
  }
  const size_t row_bytes = dst.nbytes() / static_cast<size_t>(total);
  IRIS_ASSERT(s.numel() == s.size(0) * (dst.numel() / dst.size(0)));
  for (size_t k = 0; k < rows.size(); ++k) {
    IRIS_ASSERT(rows[k] >= 0 && rows[k] < total);
    std::memcpy(dst.data<uint8_t>() + static_cast<size_t>(rows[k]) * row_bytes,
                s.data<uint8_t>() + k * row_bytes, row_bytes);
  }
}

}  // namespace iris::diffusion
