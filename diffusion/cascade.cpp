#include "diffusion/cascade.h"

#include "framework/iris.h"

namespace iris::diffusion {

void Cascade::add(CascadeStage added) {
  IRIS_CHECK(added.stage != nullptr, "Cascade::add: stage ", stages_.size(), " is null");
  if (!stages_.empty()) {
    const Stage& prev = *stages_.back().stage;
    const Stage& cur = *added.stage;
    IRIS_CHECK(cur.super_resolution(), "cascade stage ", stages_.size(),
               " must be a super-resolution (sr3 or regression) stage");
    IRIS_CHECK(added.any_size || cur.lowres_resolution() == prev.resolution(), "cascade stage ", stages_.size(),
               " expects ", cur.config().get_int("data.lowres_size"), "x",
               cur.config().get_int("data.lowres_size"), " inputs but stage ", stages_.size() - 1,
               " produces ", prev.resolution(), "x", prev.resolution(),
               " (any-size inference takes it at that size: --native-size)");
    IRIS_CHECK(cur.channels() == prev.channels(), "cascade stage ", stages_.size(), " has ", cur.channels(),
               " channels, the previous stage ", prev.channels());
  }
  if (added.truncated)
    IRIS_CHECK(
        added.stage->task() == Task::sr3 && added.stage->net().config().aug_embedding && !stages_.empty(),
        "cascade stage ", stages_.size(),
        ": truncated conditioning needs an SR stage after another stage, "
        "trained with noise augmentation (model.aug_embedding)");
  stages_.push_back(std::move(added));
}

std::vector<Tensor> Cascade::run(const StageBatch& input, int64_t count, Generator& gen) const {
  IRIS_CHECK(!stages_.empty(), "Cascade::run: no stages");
  std::vector<Tensor> outputs;
  Tensor handed;  // the previous stage's output (x_0, or x_s of a truncated chain)
  for (size_t i = 0; i < stages_.size(); ++i) {
    const CascadeStage& st = stages_[i];
    SampleSettings s = st.settings;
    // Does the next stage want this chain truncated at its augmentation level?
    if (i + 1 < stages_.size() && stages_[i + 1].truncated) {
      const CascadeStage& next = stages_[i + 1];
      const double level = next.settings.aug_level * next.stage->schedule().T();
      s.stop_gamma = next.stage->schedule().gamma_at(level);
    }
    StageBatch cond;
    if (i == 0) {
      cond = input;
    } else {
      cond.lowres = handed;
      s.renoise_condition = !st.truncated;
    }
    Tensor out = st.stage->sample(cond, count, gen, s);
    handed = out;
    // A truncated chain's output is x_s (still slightly noisy): what the next stage needs, and what is kept.
    outputs.push_back(clamp(out, -1.0, 1.0));
  }
  return outputs;
}

}  // namespace iris::diffusion
