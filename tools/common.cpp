#include "tools/common.h"

#include "data/image_set.h"
#include "diffusion/cas.h"
#include "framework/core/error.h"
#include "framework/cpu/blas.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/communicator.h"

namespace iris::tools {

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

diffusion::LabeledImages load_labeled(const char* tool, const std::string& spec, bool need_labels) {
  const data::ImageSet set = data::ImageSet::open(spec, {.tool = tool});
  if (need_labels && !set.has_labels()) {
    const std::string path = data::split_dataset(spec).first;
    switch (set.kind()) {
      case data::ImageSet::Kind::shards:
        IRIS_THROW(tool, ": the shard folder '", path, "' has no labels");
      case data::ImageSet::Kind::hdf5:
        IRIS_THROW(tool, ": '", path, "' has no 'labels' dataset (sample a class-conditional model)");
      default:
        IRIS_THROW(tool, ": '", path,
                   "' holds image files, which carry no labels (give a shard folder or an "
                   "HDF5 file with 'labels')");
    }
  }
  diffusion::LabeledImages s;
  s.what = spec;
  s.images = set.all_images();
  s.labels = set.labels();
  s.class_names = set.class_names();
  return s;
}

void keep_first(diffusion::LabeledImages& s, int64_t limit, const char* tool) {
  IRIS_CHECK(limit == -1 || limit > 0, tool, ": --limit must be positive");
  if (limit < 0 || limit >= s.images.size(0)) return;
  s.images = s.images.slice(0, 0, limit).contiguous();
  if (!s.labels.empty()) s.labels.resize(static_cast<size_t>(limit));
}

}  // namespace iris::tools
