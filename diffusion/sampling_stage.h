// The stages of a sampling run (iris sample, cascade, sweep), rebuilt from their checkpoints, and what makes
// a stage's samples what they are (its identity in a run's record, sampling_record.h).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffusion/checkpoint.h"
#include "diffusion/config.h"
#include "diffusion/stage.h"
#include "framework/core/device.h"

namespace iris::diffusion {

// A stage with its checkpoint's weights, in eval mode, on a device.
struct LoadedStage {
  std::string path;  // the checkpoint
  CheckpointInfo info;
  Config config;  // the checkpoint's resolved config with the overrides applied
  bool ema = true;
  std::shared_ptr<Stage> stage;
};

// Reads the checkpoint's config (plus `sets`, "key=value" overrides such as diffusion.sample_schedule),
// builds its stage and loads the EMA weights (raw ones with `raw`) after checking their checksums. Errors
// name the checkpoint: a missing or foreign file, a config that no longer parses, damaged weights, weights
// that do not fit the model the config (with the overrides) describes.
LoadedStage load_stage(const std::string& ckpt, bool raw, const std::vector<std::string>& sets,
                       Device device);
// Every checkpoint of `paths` loaded (load_stage, no overrides) on `device`, in order.
std::vector<LoadedStage> load_stages(const std::vector<std::string>& paths, bool raw, Device device);

// What makes a stage's samples what they are: its checkpoint (absolute path, step, EMA or raw), a checksum
// of its resolved config (with overrides) and its sampler settings (the tiling too, when tiled). Part of a
// run's identity.
nlohmann::json stage_identity(const LoadedStage& stage, const SampleSettings& settings);

}  // namespace iris::diffusion
