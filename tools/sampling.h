// What `iris sample` and `iris cascade` share: stages rebuilt from checkpoints, the conditions to sample
// from (low-res images from a shard set or image files, class labels), per-sample generators, the output
// files (one PNG per sample, grids, an HDF5 file of uint8 arrays) and a progress line.
//
// Reproducibility: sample i draws all its noise from the Philox stream (seed, stream_of[i]), where
// stream_of[i] is its shard index when it comes from a shard set, else its position in the output. Its
// result therefore depends on neither --batch nor the other samples of the run (bit for bit on the CPU, whose
// kernels split work over outputs only; GPU libraries may pick other algorithms for other batch sizes).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "diffusion/checkpoint.h"
#include "diffusion/stage.h"
#include "framework/core/tensor.h"
#include "framework/io/hdf5.h"

namespace iris::tools {

// A stage with its checkpoint's weights, in eval mode, on `device`.
struct LoadedStage {
  std::string path;  // the checkpoint
  diffusion::CheckpointInfo info;
  Config config;  // the checkpoint's resolved config with the overrides applied
  bool ema = true;
  std::shared_ptr<diffusion::Stage> stage;
};

// Reads the checkpoint's config (plus `sets`, "key=value" overrides such as diffusion.sample_schedule),
// builds its stage and loads the EMA weights (raw ones with `raw`) after checking their checksums. Errors
// name the checkpoint: a missing or foreign file, a config that no longer parses, damaged weights, weights
// that do not fit the model the config (with the overrides) describes.
LoadedStage load_stage(const std::string& ckpt, bool raw, const std::vector<std::string>& sets,
                       Device device);

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
  std::vector<std::string> files;  // or image files (PNG, JPEG)
  std::string dir;                 // or every .png/.jpg/.jpeg in a folder, by name
  bool any() const { return !shard.empty() || !files.empty() || !dir.empty(); }
};

// Low-res conditions of `lowres_size` x `lowres_size` with `channels` channels. A shard set must store that
// low-res size (its images at `truth_size` become the truth when it has them, as do its labels); image files
// are converted to the channels, centre-cropped to a square when they are not one and resized
// (antialiased bicubic) when their size differs.
Inputs read_lowres_inputs(const InputOptions& o, int lowres_size, int channels, int truth_size);
// Class labels (and truth images at `truth_size` when stored) of a range of a shard set, for base stages.
Inputs read_shard_labels(const InputOptions& o, int truth_size);

// What a run is conditioned on, as given on the command line.
struct ConditionOptions {
  InputOptions input;
  std::vector<std::string> labels;  // --labels items
  int64_t per_class = 0;            // --per-class K (0: not given)
  bool count_given = false;         // --count given (it must then concern the run)
};
// The conditions of a run whose first stage is `first`: low-res inputs for an sr3 stage; class labels
// (--labels, --per-class, a shard range's labels; default 4 per class) or a count (unconditional) for a base
// stage. Truth images are taken at `truth_size` when a shard set stores them. `class_names` receives the
// class names of the shard set, or of the stage's config data set (data.dir), when they can be found.
Inputs gather_inputs(const LoadedStage& first, const ConditionOptions& o, int truth_size,
                     std::vector<std::string>& class_names);

// The per-sample generator of the samples `rows` (indices into `stream_of`).
Generator batch_generator(uint64_t seed, const std::vector<uint64_t>& stream_of,
                          const std::vector<int64_t>& rows);
// Noise streams: the shard indices when there are some, else 0..n-1.
std::vector<uint64_t> noise_streams(const Inputs& in, int64_t n);
// What the first stage of a run is conditioned on for the samples `rows`: their low-res inputs (sr3) or class
// labels (class-conditional base), on `device`.
diffusion::StageBatch condition_rows(const Inputs& in, const std::vector<int64_t>& rows,
                                     const diffusion::Stage& first, Device device);

// The rows `rows` of x, gathered into a new CPU tensor.
Tensor take_rows(const Tensor& x, const std::vector<int64_t>& rows);
// Float images in [-1, 1] [N, H, W, C] -> uint8 on the CPU.
Tensor to_u8(const Tensor& x);
// Copies u8 `src` [rows.size(), ...] into the rows `rows` of `dst`, allocated as u8 [total, ...] on first
// use.
void put_rows(Tensor& dst, int64_t total, const std::vector<int64_t>& rows, const Tensor& src);
// "T-shirt/top" -> "T-shirt_top": characters safe in a file name (letters, digits, '-', '.', else '_').
std::string file_safe(const std::string& s);

// One progress line for a batched sampling run, on stderr: rewritten in place on a terminal, else one line
// per finished batch (logs stay readable).
class SamplingProgress {
 public:
  // `enabled` false: prints nothing (the ranks other than 0 of a launched job).
  SamplingProgress(std::string what, int64_t total_images, int64_t batches, bool enabled = true);
  // Step k of K (1-based) of batch `batch` (0-based) is done; `phase` says which chain ("" or "stage 2/3").
  void step(int64_t batch, const std::string& phase, int64_t k, int64_t K);
  void batch_done(int64_t batch, int64_t images_done);
  void finish();  // the total time

 private:
  void print(const std::string& line, bool final_line);
  std::string what_;
  int64_t total_, batches_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
  int64_t done_ = 0;
};

// Enlarges every image of a grid by the same integer factor (nearest neighbour) so that its largest image is
// at least `min_cell` pixels high: small models' 4x4 or 16x16 outputs are unreadable at their own size.
void enlarge_for_grid(std::vector<std::vector<data::Image>>& grid, int min_cell = 48);

// The grid of a cascade's (or one stage's) samples, at most 32 rows: a column for the low-res input when
// there is one, one per stage's output (u8 [N, H_i, W_i, C]) and one for the truth (or a real image of the
// class after a base first stage); rows titled with their class names when labelled.
void write_stage_grid(const std::string& path, const std::vector<LoadedStage>& stages, const Inputs& in,
                      const std::vector<Tensor>& outputs, const std::vector<std::string>& class_names);

// Writes the inputs of a sampling run beside its outputs: `lowres`, `truth` (u8), `labels` (int32) and
// `indices` (int64) datasets, each only when the inputs have it.
void write_inputs(h5::Group& root, const Inputs& in);

// Writes `img` as `dir`/`stem`.png, atomically (temporary name, then rename).
void write_sample_png(const std::string& dir, const std::string& stem, const data::Image& img);

}  // namespace iris::tools
