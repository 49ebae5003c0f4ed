// Conditioning augmentation for cascades (CDM, Ho et al. 2021): the Gaussian-noise part.
//
// The low-resolution conditioning image z [N, ...] of a super-resolution stage is corrupted by the forward
// process of the low-resolution model's schedule at a step s: z_s = √γ_s·z + √(1−γ_s)·ε. In training s is
// drawn uniformly from a configured range per sample (the model is trained amortised over s and receives the
// level as an extra conditioning input); at sampling time s is fixed (chosen by a sweep) and the finished
// low-resolution sample is re-noised to it (CDM's non-truncated variant; the truncated variant instead stops
// the low-resolution chain at γ_s, see sub_path() and the samplers).
//
// s is a continuous step in [0, T] of `schedule`, with γ_s interpolated linearly between the integer steps
// (NoiseSchedule::gamma_at); s = 0 gives γ_s = 1, i.e. no augmentation (z_s = z exactly).
#pragma once

#include "diffusion/schedule.h"
#include "framework/core/generator.h"

namespace iris::diffusion {

struct AugmentedCondition {
  Tensor z;      // z_s [N, ...]
  Tensor gamma;  // γ_s [N]: the level fed to the network's augmentation embedding
  Tensor s;      // [N]: the step s itself (s / T is Imagen's "aug_level" in [0, 1])
};

// s ~ U[s_min, s_max) per sample, then ε ~ N(0, I), both from `gen` (in that order; a per-sample generator
// gives each sample its own stream). Levels are f64 when z is f64, else f32; needs 0 <= s_min <= s_max <= T.
AugmentedCondition noise_augment(const Tensor& z, const NoiseSchedule& schedule, double s_min, double s_max,
                                 Generator& gen);

// The same at one fixed step s for every sample (sampling time).
AugmentedCondition noise_augment_at(const Tensor& z, const NoiseSchedule& schedule, double s, Generator& gen);

}  // namespace iris::diffusion
