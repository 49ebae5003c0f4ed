// What a sampling run is conditioned on (low-res images from a shard set or image files, class labels, or
// nothing), and the per-sample noise streams.
//
// Reproducibility: sample i draws all its noise from the Philox stream (seed, stream_of[i]), where
// stream_of[i] is its shard index when it comes from a shard set, else its position in the run. Its result
// therefore depends on neither the batch size nor the other samples of the run, nor on how the samples are
// split over ranks (bit for bit on the CPU, whose kernels split work over outputs only; GPU libraries may
// pick other algorithms for other batch sizes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/sampling_stage.h"
#include "diffusion/stage.h"
#include "framework/core/generator.h"
#include "framework/core/tensor.h"

namespace iris::h5 {
class Group;
}

namespace iris::diffusion {

// The conditions of a run: one entry per sample.
struct Inputs {
  std::vector<std::string> names;  // output file stems, unique
  Tensor lowres;                   // u8 [N, h, h, C] (super-resolution first stages)
  Tensor truth;                    // u8 [N, H, H, C] when a shard set gives it at the output size
  std::vector<int64_t> labels;     // class labels, or empty
  std::vector<int64_t> indices;    // shard indices (also the noise streams), or empty
  int64_t size() const { return static_cast<int64_t>(names.size()); }
};

struct InputOptions {
  std::string shard;               // a shard folder ...
  int64_t start = 0, count = 16;   // ... and the range [start, start + count) of it (count < 0: to the end)
  // or image sets "PATH[:DATASET]" (data/image_set.h): image files (PNG, JPEG), folders of them, HDF5
  // datasets of images (samples.h5:images), shard folders (DIR:lowres_<h>), every image of each
  std::vector<std::string> files;
  std::string dir;  // or every .png/.jpg/.jpeg in a folder, by name
  // Image inputs at their own size (any h x w, one size for the whole run): the output is h x w times the
  // stages' factors (any-size inference). Without it they are centre-cropped to a square and resized to
  // the first stage's low-res size.
  bool native_size = false;
  bool any() const { return !shard.empty() || !files.empty() || !dir.empty(); }
};

// What a run is conditioned on, as given on the command line.
struct ConditionOptions {
  InputOptions input;
  std::vector<std::string> labels;  // --labels items
  int64_t per_class = 0;            // --per-class K (0: not given)
  bool count_given = false;         // --count given (it must then concern the run)
};

// Class names of a shard folder's index.json; empty when there is none or it cannot be read.
std::vector<std::string> class_names_in(const std::string& shard_dir);
// "0,3,7", "bag,sandal" (names matched case-insensitively against `names`) or a mix -> indices in
// [0, num_classes). Throws naming the bad entry.
std::vector<int64_t> parse_labels(const std::vector<std::string>& items, int64_t num_classes,
                                  const std::vector<std::string>& names);
// k samples of each class 0..num_classes-1, class by class.
std::vector<int64_t> per_class_labels(int64_t k, int64_t num_classes);
// The name of class `label` (its index when there are no names).
std::string label_name(int64_t label, const std::vector<std::string>& names);
// "T-shirt/top" -> "T-shirt_top": characters safe in a file name (letters, digits, '-', '.', else '_').
std::string file_safe(const std::string& s);

// Low-res conditions of `lowres_size` x `lowres_size` with `channels` channels. A shard set must store that
// low-res size (its images at `truth_size` become the truth when it has them, as do its labels); image
// inputs (data/image_set.h) are converted to the channels, centre-cropped to a square when they are not one
// and resized (antialiased bicubic) when their size differs, or, with o.native_size, kept at their size
// (which must then be the same for all). Names: a file's stem; "<stem>_<index>" for the images of an HDF5
// file or a shard folder.
Inputs read_lowres_inputs(const InputOptions& o, int lowres_size, int channels, int truth_size);
// Class labels (and truth images at `truth_size` when stored) of a range of a shard set, for base stages.
Inputs read_shard_labels(const InputOptions& o, int truth_size);
// The size of the images a chain of stages makes from a shard set's samples: the first stage's low-res
// images at its data.lowres_size (a base stage: its resolution), taken through every stage's factor. This is
// the truth size to ask the shard set for. It is not the last stage's resolution when a stage was trained on
// crops (data.crop_size): a 16->64 patch stage with data.lowres_size 64 makes 256x256 images from the
// shard's 64x64 ones, and asking for the 64x64 "truth" would score the outputs against their own inputs.
// shard_output_sizes: every stage's output size along the chain (the last one is shard_output_size).
std::vector<int64_t> shard_output_sizes(const std::vector<const Stage*>& stages);
std::vector<int64_t> shard_output_sizes(const std::vector<LoadedStage>& stages);
int64_t shard_output_size(const std::vector<const Stage*>& stages);
int64_t shard_output_size(const std::vector<LoadedStage>& stages);

// The conditions of a run whose first stage is `first`: low-res inputs for an sr3 stage; class labels
// (--labels, --per-class, a shard range's labels; default 4 per class) or a count (unconditional) for a base
// stage. Truth images are taken at `truth_size` when a shard set stores them. `class_names` receives the
// class names of the shard set, or of the stage's config data set (data.dir), when they can be found.
Inputs gather_inputs(const LoadedStage& first, const ConditionOptions& o, int truth_size,
                     std::vector<std::string>& class_names);

// Noise streams: the shard indices when there are some, else 0..n-1.
std::vector<uint64_t> noise_streams(const Inputs& in, int64_t n);
// The per-sample generator of the samples `rows` (indices into `stream_of`).
Generator batch_generator(uint64_t seed, const std::vector<uint64_t>& stream_of,
                          const std::vector<int64_t>& rows);
// What the first stage of a run is conditioned on for the samples `rows`: their low-res inputs (sr3) or class
// labels (class-conditional base), on `device`.
StageBatch condition_rows(const Inputs& in, const std::vector<int64_t>& rows, const Stage& first,
                          Device device);

// CRC-32C of the sample names, low-res inputs and labels: part of a run's identity (the inputs must not
// change under a resumed run).
uint32_t inputs_checksum(const Inputs& in);
// Writes the inputs of a sampling run beside its outputs: `lowres`, `truth` (u8), `labels` (int32) and
// `indices` (int64) datasets, each only when the inputs have it.
void write_inputs(h5::Group& root, const Inputs& in);

// The rows `rows` of x, gathered into a new CPU tensor.
Tensor take_rows(const Tensor& x, const std::vector<int64_t>& rows);
// Copies u8 `src` [rows.size(), ...] into the rows `rows` of `dst`, allocated as u8 [total, ...] on first
// use.
void put_rows(Tensor& dst, int64_t total, const std::vector<int64_t>& rows, const Tensor& src);

}  // namespace iris::diffusion
