// The [train] and [data] sections of a run's config as typed structs, read and checked once when a trainer
// starts (a bad value is refused naming its key before anything is built), so that the training loop reads
// fields, not string keys. The keys, defaults and meanings are in config_schema.cpp.
#pragma once

#include <cstdint>
#include <string>

#include "diffusion/config.h"
#include "framework/optim/schedule.h"

namespace iris::diffusion {

struct TrainSettings {
  int64_t steps = 0;       // optimizer steps in total
  int64_t batch_size = 0;  // global batch, split evenly over ranks
  int64_t microbatch = 0;  // rows per forward/backward pass on a rank (0: the rank's whole slice)
  optim::LRScheduleOptions lr;
  double weight_decay = 0, adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  double grad_clip = 0;     // 0: off
  double spike_zscore = 0;  // 0: the gradient-norm spike guard is off
  int64_t spike_warmup = 0;
  double ema_decay = 0;
  uint64_t seed = 0;
  std::string precision;    // f32, tf32, bf16
  std::string conv_search;  // cuDNN algorithm choice
  int64_t log_every = 1;
  int64_t checkpoint_every = 0;  // 0: only the final checkpoint
  int64_t keep_checkpoints = 1, keep_every = 0;
  bool keep_best = false;
  bool tensorboard = false;
  int64_t sample_every = 0, sample_count = 0, sample_steps = 0;

  static TrainSettings from_config(const Config& c);
};

struct DataSettings {
  std::string dir, val_dir;  // val_dir: dir when the config leaves it empty
  int image_size = 0, lowres_size = 0, channels = 0;
  int crop_size = 0;  // patch training: crops of this size (0: whole images)
  bool hflip = false;
  int prefetch = 0;

  static DataSettings from_config(const Config& c);
};

// The first [model] key whose value differs between a checkpoint's config and this run's, as
// "model.base_channels is 64 in the checkpoint, 32 now"; "" when both describe the same model. Keys that
// change only memory use or step 0 (model.checkpoint_res_blocks, model.zero_init) do not count.
std::string model_difference(const Config& saved, const Config& now);

}  // namespace iris::diffusion
