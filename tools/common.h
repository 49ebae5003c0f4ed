// Helpers shared by the iris subcommands: device choice and the start-up banner (number formatting is in
// framework/core/format.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "framework/core/device.h"
#include "framework/core/format.h"  // with_commas, human_bytes, human_duration

namespace iris::dist {
class Communicator;
}
namespace iris::data {
class ShardSet;
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

// Image-set arguments (iris eval, cas, fd): "PATH:NAME" -> {PATH, NAME} when PATH exists, NAME is not empty
// and the whole argument is not itself a path; else {arg, ""}.
std::pair<std::string, std::string> split_dataset(const std::string& arg);
// The low-res height a shard folder's dataset name selects: 0 for "images" or "", h for "lowres_<h>" when the
// set stores that size; otherwise an iris::Error from `tool` naming the folder and the datasets it has.
int shard_lowres_height(const data::ShardSet& set, const std::string& dataset, const char* tool);

// A labelled image set (iris cas, fd, sweep): a shard folder (PATH:lowres_<h> for its low-res copies) or an
// HDF5 file with images [N, H, W, C] (PATH:NAME for another dataset than "images") and 'labels' [N]. Errors
// start with `tool`; `need_labels` false accepts a set without labels.
diffusion::LabeledImages load_labeled(const char* tool, const std::string& spec, bool need_labels = true);
// --limit: only the first `limit` images (and labels) of `s`; -1 keeps them all.
void keep_first(diffusion::LabeledImages& s, int64_t limit, const char* tool);

}  // namespace iris::tools
