#include "tools/common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "data/shard.h"
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

std::pair<std::string, std::string> split_dataset(const std::string& arg) {
  namespace fs = std::filesystem;
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

}  // namespace iris::tools
