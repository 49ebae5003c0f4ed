#include "diffusion/train_settings.h"

#include "framework/core/error.h"

namespace iris::diffusion {

TrainSettings TrainSettings::from_config(const Config& c) {
  TrainSettings t;
  t.steps = c.get_int("train.steps");
  t.batch_size = c.get_int("train.batch_size");
  t.microbatch = c.get_int("train.microbatch");
  t.keep_checkpoints = c.get_int("train.keep_checkpoints");
  t.checkpoint_every = c.get_int("train.checkpoint_every");
  t.keep_every = c.get_int("train.keep_every");
  t.grad_clip = c.get_float("train.grad_clip");
  // Refused before anything is built, so that a typo such as train.steps=-5 is not silently a run that
  // trains nothing.
  IRIS_CHECK(t.steps > 0, "train.steps must be positive, got ", t.steps);
  IRIS_CHECK(t.keep_checkpoints > 0, "train.keep_checkpoints must be positive, got ", t.keep_checkpoints);
  IRIS_CHECK(t.batch_size > 0, "train.batch_size must be positive, got ", t.batch_size);
  IRIS_CHECK(t.microbatch >= 0, "train.microbatch must be >= 0 (0: no micro-batches), got ", t.microbatch);
  IRIS_CHECK(t.checkpoint_every >= 0,
             "train.checkpoint_every must be >= 0 (0: only the final checkpoint), got ", t.checkpoint_every);
  IRIS_CHECK(t.keep_every >= 0, "train.keep_every must be >= 0 (0: no milestones), got ", t.keep_every);
  IRIS_CHECK(t.grad_clip >= 0, "train.grad_clip must be >= 0 (0: off), got ", t.grad_clip);

  t.lr.base_lr = c.get_float("train.lr");
  t.lr.warmup_steps = c.get_int("train.warmup_steps");
  const std::string kind = c.get_string("train.lr_schedule");
  IRIS_CHECK(kind == "constant" || kind == "cosine", "train.lr_schedule must be constant or cosine, got '",
             kind, "'");
  t.lr.decay =
      kind == "cosine" ? optim::LRScheduleOptions::Decay::cosine : optim::LRScheduleOptions::Decay::constant;
  t.lr.total_steps = t.steps;
  t.lr.final_lr = c.get_float("train.final_lr");

  t.weight_decay = c.get_float("train.weight_decay");
  t.adam_beta1 = c.get_float("train.adam_beta1");
  t.adam_beta2 = c.get_float("train.adam_beta2");
  t.adam_eps = c.get_float("train.adam_eps");
  t.spike_zscore = c.get_float("train.spike_zscore");
  t.spike_warmup = c.get_int("train.spike_warmup");
  t.ema_decay = c.get_float("train.ema_decay");
  t.seed = static_cast<uint64_t>(c.get_int("train.seed"));
  t.precision = c.get_string("train.precision");
  IRIS_CHECK(t.precision == "f32" || t.precision == "tf32" || t.precision == "bf16",
             "train.precision must be f32, tf32 or bf16, got '", t.precision, "'");
  t.conv_search = c.get_string("train.conv_search");
  t.log_every = std::max<int64_t>(1, c.get_int("train.log_every"));
  t.keep_best = c.get_bool("train.keep_best");
  t.tensorboard = c.get_bool("train.tensorboard");
  t.sample_every = c.get_int("train.sample_every");
  t.sample_count = c.get_int("train.sample_count");
  t.sample_steps = c.get_int("train.sample_steps");
  return t;
}

DataSettings DataSettings::from_config(const Config& c) {
  DataSettings d;
  d.dir = c.get_string("data.dir");
  d.val_dir = c.get_string("data.val_dir").empty() ? d.dir : c.get_string("data.val_dir");
  d.image_size = static_cast<int>(c.get_int("data.image_size"));
  d.lowres_size = static_cast<int>(c.get_int("data.lowres_size"));
  d.channels = static_cast<int>(c.get_int("data.channels"));
  d.crop_size = static_cast<int>(c.get_int("data.crop_size"));
  IRIS_CHECK(d.crop_size >= 0, "data.crop_size must be >= 0 (0: whole images), got ", d.crop_size);
  d.hflip = c.get_bool("data.hflip");
  d.prefetch = static_cast<int>(c.get_int("data.prefetch"));
  return d;
}

std::string model_difference(const Config& saved, const Config& now) {
  for (const ConfigKey& k : config_schema()) {
    if (k.key.rfind("model.", 0) != 0 || k.key == "model.checkpoint_res_blocks" || k.key == "model.zero_init")
      continue;
    if (saved.value(k.key) != now.value(k.key))
      return k.key + " is " + saved.value_text(k.key) + " in the checkpoint, " + now.value_text(k.key) +
             " now";
  }
  return "";
}

}  // namespace iris::diffusion
