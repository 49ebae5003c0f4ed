#include "tools/stage_settings.h"

#include "diffusion/tiling.h"
#include "framework/core/error.h"

namespace iris::tools {

namespace {

using diffusion::Task;

// The value of a per-stage list for stage i of n: none given (nullptr), one for all, or one per stage.
template <class T>
const T* pick(const std::vector<T>& values, size_t i, size_t n, const char* option) {
  if (values.empty()) return nullptr;
  IRIS_CHECK(values.size() == 1 || values.size() == n, option, " has ", values.size(), " values for ", n,
             " stages: give one value for all stages or one per stage");
  return values.size() == 1 ? &values[0] : &values[i];
}

bool guided(const LoadedStage& L) {
  return L.stage->task() == Task::base && L.stage->num_classes() > 0;
}

bool augmented(const LoadedStage& L) {
  return L.stage->task() == Task::sr3 && L.stage->net().config().aug_embedding;
}

}  // namespace

bool stage_truncatable(const LoadedStage& L, size_t i) {
  return i > 0 && augmented(L);
}

const std::vector<std::string>& setting_keys() {
  static const std::vector<std::string> keys = {"sampler",  "schedule",  "steps",    "eta",
                                                "guidance", "aug_level", "truncated"};
  return keys;
}

std::string setting_missing(const LoadedStage& L, const std::string& key, size_t i) {
  if (key == "sampler" || key == "schedule" || key == "steps" || key == "eta")
    return L.stage->iterative() ? "" : "it is a regression stage, sampled in one forward pass (no sampler)";
  if (key == "guidance")
    return guided(L) ? "" : "classifier-free guidance applies to class-conditional base stages only";
  if (key == "aug_level")
    return augmented(L) ? ""
                        : "it was not trained with noise conditioning augmentation (model.aug_embedding is "
                          "false)";
  if (key == "truncated") {
    if (!augmented(L))
      return "truncated conditioning needs a stage trained with noise conditioning augmentation "
             "(model.aug_embedding)";
    return i > 0 ? "" : "truncated conditioning needs a stage after another one (this is the first stage)";
  }
  IRIS_THROW("internal error: unknown setting '", key, "'");
}

diffusion::SampleSettings stage_settings(const LoadedStage& L, const StageSettingLists& o, size_t i,
                                         size_t n) {
  const diffusion::Stage& st = *L.stage;
  diffusion::SampleSettings s = st.default_sample_settings();
  const std::string where = "stage " + std::to_string(i) + " ('" + L.path + "')";
  // A one-pass stage takes no sampler settings: a value meant for it alone (a per-stage value, or the value
  // of a one-stage run) is an error; a value for every stage goes to the iterative ones.
  if (const std::string why = setting_missing(L, "sampler", i); !why.empty()) {
    const auto aimed = [n](size_t size) { return size > 0 && (size > 1 || n == 1); };
    IRIS_CHECK(!aimed(o.samplers.size()) && !aimed(o.steps.size()) && !aimed(o.etas.size()) &&
                   !aimed(o.schedules.size()),
               "--sampler, --schedule, --steps and --eta do not apply to ", where, ": ", why);
  } else {
    if (const auto* v = pick(o.samplers, i, n, "--sampler")) s.sampler = *v;
    IRIS_CHECK(s.sampler == "ddpm" || s.sampler == "ddim" || s.sampler == "dpmpp2m", "--sampler for ", where,
               " must be ddpm, ddim or dpmpp2m, got '", s.sampler, "'");
    if (const auto* v = pick(o.schedules, i, n, "--schedule")) s.schedule = *v;
    IRIS_CHECK(s.schedule == "linear" || s.schedule == "cosine" || s.schedule == "respaced", "--schedule for ",
               where, " must be linear, cosine or respaced, got '", s.schedule, "'");
    if (const auto* v = pick(o.steps, i, n, "--steps")) s.steps = *v;
    IRIS_CHECK(s.steps >= 1, "--steps for ", where, " must be at least 1, got ", s.steps);
    if (const auto* v = pick(o.etas, i, n, "--eta")) {
      IRIS_CHECK(*v >= 0 && *v <= 1, "--eta for ", where, " must be in [0, 1], got ", *v);
      IRIS_CHECK(*v == 0 || s.sampler == "ddim" || o.etas.size() == 1, "--eta for ", where,
                 " applies to the ddim sampler; this stage uses ", s.sampler);
      s.eta = *v;
    }
  }
  // Settings that concern some stages only: a single value goes to the stages it concerns; a per-stage
  // value for another stage must be the neutral one.
  if (const auto* v = pick(o.guidances, i, n, "--guidance")) {
    if (setting_missing(L, "guidance", i).empty())
      s.guidance = *v;
    else
      IRIS_CHECK(o.guidances.size() == 1 || *v == 1.0, "--guidance for ", where,
                 ": guidance applies to class-conditional base stages (give 1 for this stage)");
  }
  if (const auto* v = pick(o.aug_levels, i, n, "--aug-level")) {
    IRIS_CHECK(*v >= 0 && *v <= 1, "--aug-level for ", where, " must be in [0, 1], got ", *v);
    if (setting_missing(L, "aug_level", i).empty())
      s.aug_level = *v;
    else
      IRIS_CHECK(o.aug_levels.size() == 1 || *v == 0.0, "--aug-level for ", where,
                 ": this stage was not trained "
                 "with noise conditioning augmentation (give 0 for it)");
  }
  // Tiling: a single value goes to the super-resolution stages; a per-stage value (or the value of a
  // one-stage run) for a base stage must be 0.
  const auto* tile = pick(o.tiles, i, n, "--tile");
  const auto* overlap = pick(o.tile_overlaps, i, n, "--tile-overlap");
  if (!st.super_resolution()) {
    const auto aimed = [n](size_t size, const int64_t* v) { return v && *v != 0 && (size > 1 || n == 1); };
    IRIS_CHECK(!aimed(o.tiles.size(), tile) && !aimed(o.tile_overlaps.size(), overlap),
               "--tile and "
               "--tile-overlap for ",
               where, ": tiling applies to super-resolution stages (give 0 for this stage)");
  } else {
    if (tile) s.tile = *tile;
    // One overlap for every stage concerns the tiled ones.
    if (overlap && (s.tile > 0 || o.tile_overlaps.size() > 1 || n == 1)) s.tile_overlap = *overlap;
    try {
      diffusion::check_tiling(s.tile, s.tile_overlap, st.net().config().downsampling());
    } catch (const Error& e) {
      IRIS_THROW(where, ": ", e.message());
    }
  }
  return s;
}

void add_cascade_stage(diffusion::Cascade& cascade, const std::vector<LoadedStage>& stages, size_t i,
                       diffusion::CascadeStage step) {
  try {
    cascade.add(std::move(step));
  } catch (const Error& e) {
    if (i == 0) throw;
    IRIS_THROW("--stage '", stages[i].path, "' (stage ", i, ") cannot follow --stage '", stages[i - 1].path,
               "' (stage ", i - 1, "): ", e.message());
  }
}

}  // namespace iris::tools
