// A cascade stage: one trainable diffusion model with its settings, read from a config.
//
//  - task "sr3": SR3 super-resolution. The low-res image (optionally augmented, CDM: Gaussian noise with its
//    level fed to the augmentation embedding, or Gaussian blur) is upsampled to the model's resolution with
//    the data pipeline's antialiased bicubic filter and concatenated with y_t along channels.
//  - task "regression": SR3's regression baseline (SR3 Tables 1-3): the same U-Net maps the upsampled low-res
//    image (its only input: model.in_channels = data.channels) straight to the high-res image, trained with
//    diffusion.loss (L1 or L2) against it and sampled in one forward pass. It sees a constant noise level
//    (gamma = 1), so its embedding MLP only adds learned biases. Low-res blur augmentation applies as for sr3.
//  - task "base": a class-conditional (model.num_classes > 0, with classifier-free guidance: labels are
//    replaced by the null class with probability diffusion.cond_drop_prob in training) or unconditional
//    generator: a cascade's first stage.
//
// Training noise levels follow SR3 (t ~ U{1..T}, gamma ~ U(gamma_t, gamma_{t-1}), the network sees the
// continuous level), so the sampling schedule (diffusion.sample_*) is independent of the training one.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "diffusion/condition.h"
#include "diffusion/config.h"
#include "diffusion/objective.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "diffusion/unet.h"
#include "framework/core/replay_graph.h"

namespace iris::diffusion {

enum class Task { sr3, regression, base };

struct StageBatch {
  Tensor hr;      // [N, H, W, C] in [-1, 1]: the images to learn
  Tensor lowres;  // [N, h, w, C] in [-1, 1]: the condition (sr3)
  Tensor labels;  // [N] i64 class labels (base with classes)
};

struct SampleSettings {
  std::string sampler = "ddpm";  // ddpm, ddim, dpmpp2m
  int64_t steps = 100;
  // The sampling path: linear or cosine (a fresh schedule of `steps`), respaced (the training levels),
  // or "" for the config's diffusion.sample_schedule.
  std::string schedule;
  double eta = 0.0;               // ddim
  double guidance = 1.0;          // classifier-free guidance scale (base with classes)
  double aug_level = 0.0;         // sr3 with noise augmentation: s as a fraction of T (0: none)
  bool renoise_condition = true;  // sr3 with aug: noise the condition to aug_level (CDM non-truncated); false
                                  // when the condition is already the base chain's x_s (truncated)
  double stop_gamma = 1.0;        // < 1: stop the chain at this level and return x_s (truncated cascades)
  bool clip_x0 = true;
  // Super-resolution stages: run the network on tile x tile windows of the output overlapping by at least
  // tile_overlap pixels, blended at every step (diffusion/tiling.h); 0: the whole image at once.
  int64_t tile = 0, tile_overlap = 0;
  StepCallback on_step;
};

class Stage {
 public:
  // The highest first level of a sampling path: samplers start from pure noise there.
  static constexpr double kMaxStartGamma = 0.05;

  Stage(const Config& config, Generator& init);

  Task task() const { return task_; }
  // Conditioned on a low-res image (sr3, regression): the stage super-resolves.
  bool super_resolution() const { return task_ != Task::base; }
  // Samples by walking a noise path with a sampler (sr3, base); a regression stage takes one forward pass, and
  // sampler, steps and eta do not apply to it.
  bool iterative() const { return task_ != Task::regression; }
  const Config& config() const { return config_; }
  UNet& net() { return *net_; }
  const UNet& net() const { return *net_; }
  const NoiseSchedule& schedule() const { return schedule_; }
  int64_t resolution() const { return net_->config().resolution; }
  // Super-resolution stages: the low-res size they were trained on (data.lowres_size); 0 for base stages.
  int64_t lowres_size() const { return lowres_size_; }
  // The size of this stage's output for an h x w input: (h R / r) x (w R / r) for a super-resolution stage
  // trained at r -> R (any input size; R x R for an r x r input), R x R for a base stage (which has no
  // input). Throws naming the sizes when h R / r or w R / r is not a whole number.
  std::pair<int64_t, int64_t> output_size(int64_t h, int64_t w) const;
  int64_t channels() const { return net_->config().out_channels; }
  int64_t num_classes() const { return net_->config().num_classes; }
  // Super-resolution stages: the low-res size that goes with resolution(): data.lowres_size, or for a stage
  // trained on crops (data.crop_size) the low-res crop's size, data.crop_size / (image_size / lowres_size).
  // 0 for base stages.
  int64_t lowres_resolution() const { return lowres_resolution_; }
  // Trained on data.crop_size crops of larger images (patch training).
  bool crop_trained() const { return crop_trained_; }

  // The training loss of a batch. `gen` should be a per-sample generator (Generator::per_sample): every
  // random draw of a sample (noise level, noise, augmentation, label dropout, dropout) then comes from that
  // sample's stream, so a sample's loss does not depend on how the batch is split.
  Tensor loss(const StageBatch& batch, Generator& gen) const;

  // Sampling defaults from the config (diffusion.sampler, sample_steps, ddim_eta, guidance_scale, clip_x0;
  // augment.sample_noise_level).
  SampleSettings default_sample_settings() const;
  // The decreasing-noise path of levels the sampler walks (see schedule.h).
  std::vector<double> sampling_path(const SampleSettings& s) const;
  // sr3, regression: `lowres` [N, h, w, C] of any size (the output is output_size(h, w); sizes that are not
  // multiples of the network's downsampling are padded, and s.tile runs it on windows: diffusion/tiling.h);
  // base: `labels` [N] i64 (or N to draw unconditionally via `count`).
  Tensor sample(const StageBatch& condition, int64_t count, Generator& gen, const SampleSettings& s) const;
  // What sample()'s CUDA graphs (IRIS_CUDA_GRAPHS=1) did so far, and why the last capture failed ("" when
  // none did); zeros when graphs are off or never used.
  GraphedFunction::Stats sample_graph_stats() const { return graphs_ ? graphs_->stats() : GraphedFunction::Stats{}; }
  std::string sample_graph_failure() const { return graphs_ ? graphs_->last_failure() : std::string(); }

  // sr3: the network's conditioning image for low-res `z` [N, h, w, C] (upsampled to the resolution, or to
  // H x W when given).
  Tensor upsample_condition(const Tensor& z, int64_t H = 0, int64_t W = 0) const;

 private:
  Tensor predict(const Tensor& x_t, const Tensor& gamma, const Tensor& cond_image, const Tensor& labels,
                 const Tensor& aug_level, Generator* rng) const;
  // regression: the network's high-res estimate [N, H, W, C] from the upsampled low-res image.
  Tensor regress(const Tensor& cond_image, Generator* rng) const;

  Config config_;
  Task task_;
  int64_t lowres_size_ = 0;
  std::shared_ptr<UNet> net_;
  NoiseSchedule schedule_;
  ObjectiveConfig objective_;
  double cond_drop_prob_ = 0.0;
  bool aug_noise_ = false;
  double aug_noise_max_ = 0.0;
  int64_t lowres_resolution_ = 0;
  bool crop_trained_ = false;
  BlurAugment blur_;
  // sample()'s U-Net evaluations through CUDA graphs (IRIS_CUDA_GRAPHS=1, a CUDA device, whole images, with
  // or without guidance; tiled sampling stays eager), made on first use; shared by copies of the stage,
  // which share its network.
  mutable std::shared_ptr<GraphedFunction> graphs_;
};

Task task_from_name(const std::string& name);
const char* task_name(Task task);

}  // namespace iris::diffusion
