#include "data/image_set.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "data/image_folder.h"
#include "data/shard.h"
#include "framework/core/error.h"
#include "framework/io/hdf5.h"

namespace iris::data {

namespace fs = std::filesystem;

std::pair<std::string, std::string> split_dataset(const std::string& arg) {
  const auto colon = arg.rfind(':');
  if (colon != std::string::npos && colon + 1 < arg.size() && fs::exists(arg.substr(0, colon)) &&
      !fs::exists(arg))
    return {arg.substr(0, colon), arg.substr(colon + 1)};
  return {arg, ""};
}

// One of the four kinds of set; only the members of its kind are used.
struct ImageSet::Impl {
  Kind kind = Kind::image_file;
  std::string spec, tool;
  // image files
  std::vector<std::string> paths, names;
  // HDF5
  h5::File file;
  h5::Dataset dataset;
  // shards
  std::unique_ptr<ShardSet> shards;
  int lowres = 0;  // 0: the full-size images
  // HDF5 and shards
  std::vector<int64_t> labels;
  bool has_labels = false;
  std::vector<std::string> class_names;
};

namespace {

// The low-res height a shard folder's dataset name selects: 0 for "images" or "", h for "lowres_<h>" when
// the set stores that size; otherwise an error from `tool` naming the folder and the datasets it has.
int shard_lowres_height(const ShardSet& set, const std::string& dataset, const std::string& tool) {
  if (dataset.empty() || dataset == "images") return 0;
  const std::string prefix = "lowres_";
  int h = 0;
  if (dataset.rfind(prefix, 0) == 0) h = std::atoi(dataset.c_str() + prefix.size());
  const auto& sizes = set.spec().lowres_sizes;
  std::string have = "images";
  for (int s : sizes) have += ", " + lowres_dataset_name(s);
  IRIS_CHECK(h > 0 && std::find(sizes.begin(), sizes.end(), h) != sizes.end(), tool, ": the shard folder '",
             set.dir(), "' has no '", dataset, "' (it has: ", have, ")");
  return h;
}

std::string children_of(const h5::Group& g) {
  std::string s;
  for (const auto& c : g.children()) s += (s.empty() ? "" : ", ") + c;
  return s;
}

// "eval: prediction " / "cas: ": the start of a message about the set.
std::string who(const ImageSetOptions& o) {
  return o.tool + ": " + (o.role.empty() ? "" : o.role + " ");
}

}  // namespace

ImageSet ImageSet::open(const std::string& spec, const ImageSetOptions& o) {
  auto impl = std::make_shared<Impl>();
  impl->spec = spec;
  impl->tool = o.tool;
  auto [path, dataset] = split_dataset(spec);
  IRIS_CHECK(fs::exists(path), who(o), "'", path,
             "' does not exist (an image file, a folder of them, an HDF5 file or a shard folder)");
  if (fs::is_directory(path) && fs::exists(fs::path(path) / kShardIndexFile)) {
    impl->kind = Kind::shards;
    impl->shards = std::make_unique<ShardSet>(ShardSet::open(path));
    const ShardSpec& sp = impl->shards->spec();
    if (dataset.empty() && o.prefer_lowres) {
      IRIS_CHECK(sp.lowres_sizes.size() == 1, o.tool, ": shard folder '", path, "' has ",
                 sp.lowres_sizes.size(), " low-res sizes; name one as ", path, ":lowres_<h>");
      dataset = lowres_dataset_name(sp.lowres_sizes[0]);
    }
    impl->lowres = shard_lowres_height(*impl->shards, dataset, o.tool);
    impl->has_labels = sp.has_labels;
    if (sp.has_labels)
      for (int64_t l : impl->shards->labels(0, impl->shards->size()).to_vector<int64_t>())
        impl->labels.push_back(l);
    impl->class_names = sp.class_names;
  } else if (fs::is_directory(path)) {
    IRIS_CHECK(dataset.empty(), o.tool, ": '", path, "' is a folder of images; ':", dataset,
               "' has no meaning there");
    impl->kind = Kind::image_folder;
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && is_image_file_name(e.path().filename().string()))
        impl->paths.push_back(e.path().string());
    std::sort(impl->paths.begin(), impl->paths.end());
    IRIS_CHECK(!impl->paths.empty(), o.tool, ": the ", o.role.empty() ? "" : o.role + " ", "folder '", path,
               "' holds no PNG or JPEG file");
    for (const auto& p : impl->paths) impl->names.push_back(fs::path(p).filename().string());
  } else if (h5::File::is_hdf5(path)) {
    impl->kind = Kind::hdf5;
    impl->file = h5::File::open(path);
    const h5::Group root = impl->file.root();
    if (dataset.empty()) {
      dataset = "images";
      if (o.prefer_lowres) {
        std::vector<std::string> lows;
        for (const auto& k : root.children())
          if (k == "lowres" || k.rfind("lowres_", 0) == 0) lows.push_back(k);
        IRIS_CHECK(lows.size() <= 1, o.tool, ": '", path, "' has several low-res datasets (",
                   children_of(root), "); name one as ", path, ":<dataset>");
        if (!lows.empty()) dataset = lows[0];
      }
    }
    IRIS_CHECK(root.has(dataset), o.tool, ": '", path, "' has no dataset '", dataset,
               "' (it has: ", children_of(root), ")");
    impl->dataset = root.open_dataset(dataset);
    const Shape& s = impl->dataset.shape();
    IRIS_CHECK(s.size() == 4 && (s[3] == 1 || s[3] == 3), o.tool, ": '", path, "' dataset '", dataset,
               "' must be images [N, H, W, C] with C = 1 or 3, got ", shape_str(s));
    const DType dt = impl->dataset.dtype();
    IRIS_CHECK(dt == DType::u8 || dt == DType::f32 || dt == DType::f64, o.tool, ": '", path, "' dataset '",
               dataset, "' must be uint8 (or floats in [-1, 1]), got ", dtype_name(dt));
    if (root.has("labels")) {
      impl->has_labels = true;
      for (int64_t l : root.read_tensor("labels").to_vector<int64_t>()) impl->labels.push_back(l);
      IRIS_CHECK(static_cast<int64_t>(impl->labels.size()) == s[0], o.tool, ": '", path, "' has ",
                 impl->labels.size(), " labels for ", s[0], " images");
    }
    if (root.has_attr("class_names")) impl->class_names = root.strings_attr("class_names");
  } else {
    IRIS_CHECK(dataset.empty() && is_image_file_name(path), who(o), "'", path,
               "' is not an image file (.png, .jpg), a folder of them, an HDF5 file or a shard folder");
    impl->kind = Kind::image_file;
    impl->paths = {path};
    impl->names = {fs::path(path).filename().string()};
  }
  ImageSet set;
  set.impl_ = std::move(impl);
  return set;
}

ImageSet::Kind ImageSet::kind() const {
  return impl_->kind;
}

const std::string& ImageSet::spec() const {
  return impl_->spec;
}

int64_t ImageSet::size() const {
  switch (impl_->kind) {
    case Kind::image_file:
    case Kind::image_folder:
      return static_cast<int64_t>(impl_->paths.size());
    case Kind::hdf5:
      return impl_->dataset.shape()[0];
    case Kind::shards:
      return impl_->shards->size();
  }
  return 0;
}

Image ImageSet::image(int64_t i) const {
  IRIS_CHECK(i >= 0 && i < size(), impl_->tool, ": image ", i, " is outside '", impl_->spec, "' (", size(),
             " images)");
  switch (impl_->kind) {
    case Kind::image_file:
    case Kind::image_folder:
      return read_image(impl_->paths[static_cast<size_t>(i)]);
    case Kind::hdf5: {
      Tensor row = impl_->dataset.read_rows(i, 1);
      if (row.dtype() != DType::u8) row = float_to_u8(row);  // rounded as when saved to PNG
      return unstack_images(row)[0];
    }
    case Kind::shards:
      return impl_->lowres ? impl_->shards->lowres(i, impl_->lowres) : impl_->shards->image(i);
  }
  return {};
}

std::string ImageSet::name(int64_t i) const {
  if (named()) return impl_->names.at(static_cast<size_t>(i));
  std::string name = "#";  // appended, not "#" + ...: GCC 12 warns (-Wrestrict) about that spuriously
  name += std::to_string(i);
  return name;
}

Tensor ImageSet::images(int64_t start, int64_t count) const {
  IRIS_CHECK(start >= 0 && count >= 0 && start + count <= size(), impl_->tool, ": images [", start, ", ",
             start + count, ") are outside '", impl_->spec, "' (", size(), " images)");
  switch (impl_->kind) {
    case Kind::image_file:
    case Kind::image_folder: {
      std::vector<Image> imgs;
      for (int64_t i = start; i < start + count; ++i) {
        imgs.push_back(image(i));
        IRIS_CHECK(imgs.back().height == imgs.front().height && imgs.back().width == imgs.front().width &&
                       imgs.back().channels == imgs.front().channels,
                   impl_->tool, ": '", impl_->paths[static_cast<size_t>(i)], "' is ", imgs.back().str(),
                   " but '", impl_->paths[static_cast<size_t>(start)], "' is ", imgs.front().str(),
                   ": the images of a set must share one size");
      }
      return stack_images(imgs);
    }
    case Kind::hdf5: {
      Tensor rows = impl_->dataset.read_rows(start, count);
      return rows.dtype() == DType::u8 ? rows : float_to_u8(rows);
    }
    case Kind::shards:
      return impl_->lowres ? impl_->shards->lowres(impl_->lowres, start, count)
                           : impl_->shards->images(start, count);
  }
  return {};
}

bool ImageSet::has_labels() const {
  return impl_->has_labels;
}

std::vector<int64_t> ImageSet::labels() const {
  return impl_->labels;
}

const std::vector<std::string>& ImageSet::class_names() const {
  return impl_->class_names;
}

ImageSet ImageSet::matching(const std::vector<std::string>& names, const std::string& role) const {
  IRIS_CHECK(impl_->kind == Kind::image_folder, impl_->tool, ": '", impl_->spec,
             "' is not a folder of images: its images cannot be matched by name");
  std::map<std::string, std::string> have;
  for (size_t i = 0; i < impl_->names.size(); ++i) have[impl_->names[i]] = impl_->paths[i];
  auto impl = std::make_shared<Impl>();
  impl->kind = Kind::image_folder;
  impl->spec = impl_->spec;
  impl->tool = impl_->tool;
  std::vector<std::string> missing;
  for (const auto& n : names) {
    auto it = have.find(n);
    if (it == have.end()) {
      missing.push_back(n);
    } else {
      impl->paths.push_back(it->second);
      impl->names.push_back(n);
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < std::min<size_t>(5, missing.size()); ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += ", ...";
    IRIS_THROW(impl_->tool, ": the ", role, " folder '", impl_->spec, "' has no image named like ",
               missing.size(), " of the predictions (", list, ")");
  }
  ImageSet set;
  set.impl_ = std::move(impl);
  return set;
}

}  // namespace iris::data
