// Training checkpoints in HDF5: everything a run needs to continue bit for bit.
//
// Layout (readable by h5py):
//   /                 attrs: format = "iris-checkpoint", format_version, step, config (the resolved TOML),
//                            world_size (when saved), created (UTC, ISO 8601), iris_version
//   /model/<name>     f32 parameters and buffers in Iris's layout (NHWC convs: [Cout, kh, kw, Cin]);
//                     <name> is the dotted module path, e.g. "down.3.conv1.weight"
//   /ema/<name>       the exponential moving average of each parameter
//   /optimizer/<key>  AdamW moments "<name>.m", "<name>.v", per-parameter step counts "<name>.step" (i64);
//                     attrs: hyperparameters in effect
//   /ema_state        attrs: the EMA's counters and decay
//   /train            attrs: lr schedule step, data cursor (epoch, position), seed, samples seen, elapsed
// Every dataset carries a CRC-32C checksum attribute, and the file a seal (framework/io/file_seal.h) that is
// checked before HDF5 parses it. Files are written to a temporary name, fsynced and renamed into place, so a
// crash mid-write leaves the previous checkpoint intact.
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/loader.h"
#include "framework/nn/module.h"
#include "framework/optim/state.h"

namespace iris::diffusion {

constexpr const char* kCheckpointFormat = "iris-checkpoint";
constexpr int64_t kCheckpointVersion = 1;

struct TrainingCheckpoint {
  int64_t step = 0;
  std::string config_toml;
  nn::StateDict model;
  nn::StateDict ema;
  optim::State optimizer;
  optim::State ema_state;  // counters and decay (its tensors live in `ema`)
  int64_t schedule_step = 0;
  data::LoaderCursor cursor;
  int64_t seed = 0;
  int64_t world_size = 1;
  int64_t samples_seen = 0;
  double elapsed_seconds = 0;  // training time so far, for ETAs across restarts
  // The gradient-norm spike guard (train.spike_zscore): running mean and variance of the norm, the norms
  // seen, the updates it skipped. 0 in checkpoints written before it existed.
  double grad_norm_mean = 0, grad_norm_var = 0;
  int64_t grad_norm_count = 0, skipped_updates = 0;
  // The training data it was trained on: samples and the CRC-32C of the shard folder's index.json (-1 when
  // unknown: checkpoints written before they were recorded).
  int64_t data_samples = -1, data_index_crc32c = -1;
  // The EMA model's PSNR on the run's validation batch at this step, when it was measured for this file
  // (train.keep_best writes it into checkpoints/best.h5); NaN otherwise.
  double val_psnr = std::numeric_limits<double>::quiet_NaN();
};

// Writes atomically (temporary name, fsync, rename). Throws iris::Error naming the path on failure.
void save_checkpoint(const std::string& path, const TrainingCheckpoint& ckpt);

// Reads a checkpoint. With `verify`, the whole checkpoint is checked first (verify_checkpoint). Throws
// iris::Error naming the file and what is wrong (damaged seal, truncated, not HDF5, wrong format or version,
// missing groups, checksum mismatch, NaN values, a step beyond its config's train.steps, a data cursor beyond
// its data). Weights read are always checked against their checksums.
TrainingCheckpoint load_checkpoint(const std::string& path, bool verify = true);

// Reads only the root attributes: format checks, step and config (for `iris ckpt inspect` and sampling).
struct CheckpointInfo {
  int64_t step = 0;
  int64_t format_version = 0;
  std::string config_toml;
  int64_t world_size = 1;
  std::string created;
  double val_psnr = std::numeric_limits<double>::quiet_NaN();  // see TrainingCheckpoint::val_psnr
};
CheckpointInfo read_checkpoint_info(const std::string& path);

// Every problem of a checkpoint, one message each (empty: it verifies): the seal (before HDF5 parses the
// file, see framework/io/file_seal.h), the structure, every dataset's checksum, NaN or infinite values, the
// EMA shadowing the model, the saved config, counters that fit the config and data.
struct CheckpointReport {
  bool sealed = false;  // carries a seal (whole-file checksum); false for checkpoints of older Iris versions
  int64_t step = -1;
  int64_t datasets = 0;
  std::vector<std::string> problems;
};
CheckpointReport check_checkpoint(const std::string& path);
// Throws naming the first problem check_checkpoint finds.
void verify_checkpoint(const std::string& path);

// The model (or EMA) weights alone, as a StateDict on the CPU (for sampling and export); throws when any
// is damaged or not finite.
nn::StateDict load_checkpoint_weights(const std::string& path, bool ema);

// Checkpoint files in a run's checkpoint folder are "step_<9-digit step>.h5", plus "best.h5" (train.keep_best:
// the state with the best validation PSNR so far), which resume, listing and pruning leave alone.
constexpr const char* kBestCheckpointName = "best.h5";
std::string checkpoint_name(int64_t step);
// Checkpoints in `dir`, newest first (by step in the name).
std::vector<std::string> list_checkpoints(const std::string& dir);
// The newest checkpoint in `dir` that verifies, falling back past damaged ones: `warn` is called with a
// message naming each one skipped and why. nullopt when there is none.
std::optional<std::string> find_resume_checkpoint(const std::string& dir,
                                                  const std::function<void(const std::string&)>& warn);
struct PruneOptions {
  int64_t keep = 3;          // the newest checkpoints that verify, kept
  int64_t keep_every = 0;    // milestones: checkpoints whose step is a multiple of this are never deleted
  std::string just_written;  // never deleted, whatever else is in the folder
  std::function<void(const std::string&)> warn;  // told about each damaged checkpoint found
};
// Keeps the newest `keep` checkpoints of `dir` that verify, and deletes only checkpoints older (by step)
// than the oldest of those: a damaged checkpoint never displaces a good one, and nothing is deleted before
// `keep` newer good ones exist (a kill while pruning therefore loses nothing). Each checkpoint is verified
// once per process (the result is remembered while its size and modification time stay the same). Also
// removes stale temporary files of dead writers.
void prune_checkpoints(const std::string& dir, const PruneOptions& options);

}  // namespace iris::diffusion
