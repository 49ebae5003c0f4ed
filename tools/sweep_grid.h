// The grid of `iris sweep`: `--vary KEY=V1,V2,...` options (KEY one of stage_settings.h's setting_keys(),
// optionally prefixed with a stage index, `1:aug_level=0,0.1`), their cartesian product (the points), and
// the sampling settings of every stage at a point.
//
// Points are numbered row-major over the axes in the order given: the first --vary changes slowest. A key
// without a prefix goes to every stage that has the setting (as one value of `iris cascade`'s per-stage
// lists does); a prefixed key to that stage only, over an unprefixed one of the same key.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffusion/sampling_stage.h"
#include "diffusion/stage.h"

namespace iris::tools {

using diffusion::LoadedStage;

struct SweepAxis {
  int stage = -1;                   // -1: every stage that has the setting
  std::string key;                  // sampler, steps, eta, guidance, aug_level, truncated
  std::vector<std::string> values;  // as given (they name the points), each checked for the key
  std::string name() const;         // "aug_level" or "1:aug_level"
};

// Parses one --vary option. Throws iris::Error naming the option for an unknown key, a bad stage prefix, an
// empty or repeated value, or a value the key does not take.
SweepAxis parse_axis(const std::string& spec);

// Checks the axes against the stages: no axis twice, a prefix names an existing stage that has the setting,
// an unprefixed key is a setting of at least one stage. Errors name the --vary option, the stage and its
// checkpoint, and why the stage lacks the setting.
void check_axes(const std::vector<SweepAxis>& axes, const std::vector<LoadedStage>& stages);

// A point: one value index per axis.
using SweepPoint = std::vector<size_t>;
std::vector<SweepPoint> grid_points(const std::vector<SweepAxis>& axes);

// The point's values by axis name: {"sampler": "ddim", "1:aug_level": "0.1"}.
nlohmann::json point_values(const std::vector<SweepAxis>& axes, const SweepPoint& point);

// What stage i samples with at a point.
struct StageChoice {
  diffusion::SampleSettings settings;
  bool truncated = false;
};
std::vector<StageChoice> point_settings(const std::vector<SweepAxis>& axes, const SweepPoint& point,
                                        const std::vector<LoadedStage>& stages);
nlohmann::json choice_json(const StageChoice& c);

// An eta axis must reach a stage that samples with ddim at some point (eta means nothing to the others).
// `choices[k]` holds point k's settings; throws naming the stage and its checkpoint.
void check_eta(const std::vector<SweepAxis>& axes, const std::vector<std::vector<StageChoice>>& choices,
               const std::vector<LoadedStage>& stages);

}  // namespace iris::tools
