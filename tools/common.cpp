#include "tools/common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "data/image.h"
#include "data/shard.h"
#include "diffusion/cas.h"
#include "framework/core/error.h"
#include "framework/cpu/blas.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/communicator.h"
#include "framework/io/hdf5.h"

namespace iris::tools {

namespace fs = std::filesystem;

Device resolve_device(const std::string& name) {
  if (name == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  const Device d = Device::parse(name);
  if (d.is_cuda()) {
    IRIS_CHECK(cuda_available(), "device ", d.str(), " requested, but ",
#ifdef IRIS_WITH_CUDA
               "no CUDA device is visible"
#else
               "this build of Iris has no CUDA support (configure with CUDA to use GPUs)"
#endif
    );
    IRIS_CHECK(d.index < cuda_device_count(), "device ", d.str(), " requested, but only ",
               cuda_device_count(), " CUDA device(s) are visible");
  }
  return d;
}

std::shared_ptr<dist::Communicator> launch_communicator(Device& device) {
  if (!dist::detect_launcher().detected()) return nullptr;
  auto comm = dist::init_distributed(dist::Backend::automatic, device);
  device = comm->device();
  return comm;
}

std::string compute_banner(Device device) {
  if (device.is_cuda()) return "device " + device.str();
  return "device cpu, " + std::to_string(num_threads()) + " threads, BLAS " + cpu::blas_info();
}

std::pair<std::string, std::string> split_dataset(const std::string& arg) {
  const auto colon = arg.rfind(':');
  if (colon != std::string::npos && colon + 1 < arg.size() && fs::exists(arg.substr(0, colon)) &&
      !fs::exists(arg))
    return {arg.substr(0, colon), arg.substr(colon + 1)};
  return {arg, ""};
}

int shard_lowres_height(const data::ShardSet& set, const std::string& dataset, const char* tool) {
  if (dataset.empty() || dataset == "images") return 0;
  const std::string prefix = "lowres_";
  int h = 0;
  if (dataset.rfind(prefix, 0) == 0) h = std::atoi(dataset.c_str() + prefix.size());
  const auto& sizes = set.spec().lowres_sizes;
  std::string have = "images";
  for (int s : sizes) have += ", " + data::lowres_dataset_name(s);
  IRIS_CHECK(h > 0 && std::find(sizes.begin(), sizes.end(), h) != sizes.end(), tool, ": the shard folder '",
             set.dir(), "' has no '", dataset, "' (it has: ", have, ")");
  return h;
}

diffusion::LabeledImages load_labeled(const char* tool, const std::string& spec, bool need_labels) {
  diffusion::LabeledImages s;
  s.what = spec;
  auto [path, name] = split_dataset(spec);
  if (fs::is_directory(path)) {  // a shard folder: its images, or DIR:lowres_<h>
    const data::ShardSet set = data::ShardSet::open(path);
    IRIS_CHECK(set.spec().has_labels || !need_labels, tool, ": the shard folder '", path, "' has no labels");
    const int h = shard_lowres_height(set, name, tool);
    s.images = h > 0 ? set.lowres(h, 0, set.size()) : set.images(0, set.size());
    if (set.spec().has_labels)
      for (int64_t l : set.labels(0, set.size()).to_vector<int64_t>()) s.labels.push_back(l);
    s.class_names = set.spec().class_names;
    return s;
  }
  if (name.empty()) name = "images";
  IRIS_CHECK(fs::exists(path), tool, ": '", path, "' does not exist (a shard folder or an HDF5 file)");
  const h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  IRIS_CHECK(root.has(name), tool, ": '", path, "' has no dataset '", name, "'");
  IRIS_CHECK(root.has("labels") || !need_labels, tool, ": '", path,
             "' has no 'labels' dataset (sample a class-conditional model)");
  Tensor images = root.read_tensor(name);
  IRIS_CHECK(images.dim() == 4, tool, ": '", path, "' dataset '", name, "' must be images [N, H, W, C], got ",
             shape_str(images.shape()));
  if (images.dtype() != DType::u8) images = data::float_to_u8(images);  // as saved to PNG
  s.images = images;
  if (root.has("labels"))
    for (int64_t l : root.read_tensor("labels").to_vector<int64_t>()) s.labels.push_back(l);
  if (root.has_attr("class_names")) s.class_names = root.strings_attr("class_names");
  return s;
}

void keep_first(diffusion::LabeledImages& s, int64_t limit, const char* tool) {
  IRIS_CHECK(limit == -1 || limit > 0, tool, ": --limit must be positive");
  if (limit < 0 || limit >= s.images.size(0)) return;
  s.images = s.images.slice(0, 0, limit).contiguous();
  if (!s.labels.empty()) s.labels.resize(static_cast<size_t>(limit));
}

}  // namespace iris::tools
