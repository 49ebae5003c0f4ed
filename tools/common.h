// Helpers shared by the iris subcommands: device choice and the start-up banner (number formatting is in
// framework/core/format.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "framework/core/device.h"
#include "framework/core/format.h"  // with_commas, human_bytes, human_duration

namespace iris::dist {
class Communicator;
}
namespace iris::diffusion {
struct LabeledImages;
}

namespace iris::tools {

// "auto" -> the first GPU when there is one, else the CPU; otherwise Device::parse. Checks the device exists.
Device resolve_device(const std::string& name);
// Under a launcher (mpirun, srun): a communicator over every rank of the job, each rank on its node-local GPU
// (`device` is updated to it). A plain process gets null and never initialises MPI.
std::shared_ptr<dist::Communicator> launch_communicator(Device& device);
// One line on what this process computes with: device, threads, BLAS path.
std::string compute_banner(Device device);

// A labelled image set (iris cas, fd, sweep), read whole: any "PATH[:DATASET]" of data/image_set.h (a shard
// folder, PATH:lowres_<h> for its low-res copies; an HDF5 file with images [N, H, W, C] and 'labels' [N]).
// Errors start with `tool`; `need_labels` false accepts a set without labels.
diffusion::LabeledImages load_labeled(const char* tool, const std::string& spec, bool need_labels = true);
// --limit: only the first `limit` images (and labels) of `s`; -1 keeps them all.
void keep_first(diffusion::LabeledImages& s, int64_t limit, const char* tool);

}  // namespace iris::tools
