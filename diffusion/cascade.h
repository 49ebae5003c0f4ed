// Cascades (CDM): a base model (or an input image) followed by any number of super-resolution stages, each
// with its own model, sampler, steps, guidance and augmentation level, keeping every stage's output.
//
// Conditioning augmentation at sampling time, for an SR stage trained with Gaussian-noise augmentation and
// sampled at level s (augment.sample_noise_level, a fraction of its schedule's T):
//  - non-truncated: the previous stage runs its full chain; its output is noised to gamma_s with the SR
//    stage's schedule and the SR model is told s;
//  - truncated: the previous stage's chain stops at gamma_s and its x_s is handed over as is (no extra
//    noise), again with s.
#pragma once

#include <memory>
#include <vector>

#include "diffusion/stage.h"

namespace iris::diffusion {

// One stage as it runs in a cascade: the model, how it is sampled, and how it takes the previous output.
struct CascadeStage {
  std::shared_ptr<const Stage> stage;
  SampleSettings settings;
  bool truncated = false;  // for an SR stage with augmentation: take the previous chain's x_s
  // For an SR stage after another: take the previous output at whatever size it comes and super-resolve it
  // by this stage's factor (any-size inference, diffusion/tiling.h), instead of requiring the previous
  // stage's resolution to be this stage's trained low-res size.
  bool any_size = false;
};

class Cascade {
 public:
  void add(CascadeStage added);
  size_t size() const { return stages_.size(); }
  const CascadeStage& stage(size_t i) const { return stages_.at(i); }

  // input.labels (a base first stage with classes), input.lowres (an SR first stage), or `count` samples of
  // an unconditional base. Returns each stage's output [N, H_i, W_i, C] in [-1, 1] (clipped), in order.
  std::vector<Tensor> run(const StageBatch& input, int64_t count, Generator& gen) const;

 private:
  std::vector<CascadeStage> stages_;
};

}  // namespace iris::diffusion
