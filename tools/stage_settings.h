// Which sampling settings a stage has, and each stage's settings of a run: shared by `iris cascade`
// (per-stage lists on its command line) and `iris sweep` (one value per grid point, for every stage or one
// stage).
//
// The rule for a value given for "every stage": it goes to the stages it concerns (guidance to
// class-conditional base stages, the augmentation level to stages trained with noise augmentation); a
// per-stage list must have one value per stage, and a value for a stage the setting does not concern must be
// the neutral one. Unset settings come from each stage's config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/cascade.h"
#include "diffusion/sampling_stage.h"
#include "diffusion/stage.h"

namespace iris::tools {

using diffusion::LoadedStage;

// Per-stage lists: empty (each stage's config), one value for every stage, or one value per stage.
struct StageSettingLists {
  std::vector<std::string> samplers, schedules;
  std::vector<int64_t> steps;
  std::vector<double> etas, guidances, aug_levels;
  std::vector<int64_t> tiles, tile_overlaps;  // super-resolution stages (0: untiled)
};

// The settings of stage i of n (`L`), from `lists` over the stage's defaults. Throws iris::Error naming the
// option, the stage and its checkpoint for a bad value or a list of the wrong length.
diffusion::SampleSettings stage_settings(const LoadedStage& L, const StageSettingLists& lists, size_t i,
                                         size_t n);

// The sampling settings a sweep or a cascade can set: "sampler", "steps", "eta", "guidance", "aug_level",
// "truncated".
const std::vector<std::string>& setting_keys();

// Why stage i (`L`) does not have the setting `key` ("" when it has it): guidance needs a class-conditional
// base stage, aug_level a stage trained with noise augmentation (model.aug_embedding), truncated such a stage
// after another one, and sampler, steps and eta an iterative stage (Stage::iterative: not a one-pass
// regression stage). The one place that
// knows which stage has which setting.
std::string setting_missing(const LoadedStage& L, const std::string& key, size_t i);

// Whether stage i takes truncated conditioning: a stage after the first trained with noise augmentation.
bool stage_truncatable(const LoadedStage& L, size_t i);

// Appends `step` (stage i, loaded from stages[i]) to `cascade`. A stage that cannot follow the previous one
// (not super-resolution, another input size or channel count) is an error naming both checkpoints.
void add_cascade_stage(diffusion::Cascade& cascade, const std::vector<LoadedStage>& stages, size_t i,
                       diffusion::CascadeStage step);

}  // namespace iris::tools
