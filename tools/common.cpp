#include "tools/common.h"

#include <cstdio>

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

}  // namespace iris::tools
