#include "diffusion/stage.h"

#include <numeric>

#include "diffusion/augment.h"
#include "diffusion/process.h"
#include "diffusion/tiling.h"
#include "framework/iris.h"

namespace iris::diffusion {

Task task_from_name(const std::string& name) {
  if (name == "sr3") return Task::sr3;
  if (name == "regression") return Task::regression;
  if (name == "base") return Task::base;
  IRIS_THROW("model.task must be sr3, regression or base, got '", name, "'");
}

const char* task_name(Task task) {
  switch (task) {
    case Task::sr3:
      return "sr3";
    case Task::regression:
      return "regression";
    case Task::base:
      return "base";
  }
  return "?";
}

namespace {
NoiseSchedule training_schedule(const Config& c) {
  const std::string kind = c.get_string("diffusion.schedule");
  const int64_t T = c.get_int("diffusion.timesteps");
  if (kind == "linear")
    return NoiseSchedule::linear(c.get_float("diffusion.beta_start"), c.get_float("diffusion.beta_end"), T);
  if (kind == "cosine") return NoiseSchedule::cosine(T);
  IRIS_THROW("diffusion.schedule must be linear or cosine, got '", kind, "'");
}

Parameterization parameterization(const std::string& name) {
  if (name == "eps") return Parameterization::eps;
  if (name == "v") return Parameterization::v;
  IRIS_THROW("diffusion.parameterization must be eps or v, got '", name, "'");
}
}  // namespace

Stage::Stage(const Config& config, Generator& init)
    : config_(config),
      task_(task_from_name(config.get_string("model.task"))),
      schedule_(training_schedule(config)) {
  const UNetConfig u = UNetConfig::from_config(config);
  const int64_t C = config.get_int("data.channels");
  IRIS_CHECK(u.out_channels == C, "model.out_channels (", u.out_channels, ") must equal data.channels (", C,
             ")");
  if (task_ == Task::sr3) {
    IRIS_CHECK(u.in_channels == 2 * C, "model.in_channels must be 2 x data.channels = ", 2 * C,
               " for sr3 (the upsampled low-res image and y_t), got ", u.in_channels);
    IRIS_CHECK(u.num_classes == 0, "model.num_classes: class conditioning is for the base task");
  } else if (task_ == Task::regression) {
    IRIS_CHECK(u.in_channels == C, "model.in_channels must equal data.channels (", C,
               ") for regression (its only input is the upsampled low-res image), got ", u.in_channels);
    IRIS_CHECK(u.num_classes == 0, "model.num_classes: class conditioning is for the base task");
    IRIS_CHECK(!u.aug_embedding,
               "model.aug_embedding: noise conditioning augmentation is for sr3 stages (a regression "
               "stage has no noise level to trade against it)");
  } else {
    IRIS_CHECK(u.in_channels == C, "model.in_channels must equal data.channels (", C, ") for base, got ",
               u.in_channels);
    IRIS_CHECK(!u.aug_embedding, "model.aug_embedding is for super-resolution stages");
  }
  // The U-Net trains on whole data.image_size images, or on data.crop_size crops of them (patch training).
  const int64_t image_size = config.get_int("data.image_size"), crop = config.get_int("data.crop_size");
  const int64_t lowres_size = config.get_int("data.lowres_size");
  IRIS_CHECK(crop >= 0, "data.crop_size must be >= 0 (0: whole images), got ", crop);
  if (crop == 0) {
    IRIS_CHECK(image_size == u.resolution, "data.image_size (", image_size, ") must equal model.resolution (",
               u.resolution, ")");
    lowres_resolution_ = super_resolution() ? lowres_size : 0;
  } else {
    IRIS_CHECK(crop == u.resolution, "model.resolution (", u.resolution, ") must equal data.crop_size (",
               crop, "): the U-Net works on the crops");
    IRIS_CHECK(crop <= image_size, "data.crop_size ", crop,
               " is larger than the images it is cut from (data.image_size ", image_size, ")");
    if (super_resolution()) {
      IRIS_CHECK(lowres_size > 0 && image_size % lowres_size == 0,
                 "data.crop_size needs an integer scale factor between the images and their low-res copies, "
                 "but data.image_size / data.lowres_size is ",
                 image_size, " / ", lowres_size);
      const int64_t f = image_size / lowres_size;
      IRIS_CHECK(crop % f == 0, "data.crop_size ", crop, " is not a multiple of the scale factor ", f,
                 " (data.image_size ", image_size, " / data.lowres_size ", lowres_size,
                 "): its low-res crop would not cover the same region; ", crop - crop % f, " or ",
                 crop - crop % f + f, " would");
      lowres_resolution_ = crop / f;
    }
    crop_trained_ = true;
  }
  objective_.target = parameterization(config.get_string("diffusion.parameterization"));
  const std::string loss = config.get_string("diffusion.loss");
  IRIS_CHECK(loss == "l1" || loss == "l2", "diffusion.loss must be l1 or l2, got '", loss, "'");
  objective_.norm = loss == "l1" ? LossNorm::l1 : LossNorm::l2;
  objective_.min_snr_gamma = config.get_float("diffusion.min_snr_gamma");
  cond_drop_prob_ = config.get_float("diffusion.cond_drop_prob");
  IRIS_CHECK(cond_drop_prob_ >= 0 && cond_drop_prob_ < 1, "diffusion.cond_drop_prob must be in [0, 1)");
  aug_noise_ = config.get_bool("augment.noise");
  aug_noise_max_ = config.get_float("augment.noise_level_max");
  IRIS_CHECK(!aug_noise_ || (task_ == Task::sr3 && u.aug_embedding),
             "augment.noise needs task sr3 and "
             "model.aug_embedding = true (the network must see the augmentation level)");
  IRIS_CHECK(aug_noise_max_ >= 0 && aug_noise_max_ <= 1, "augment.noise_level_max must be in [0, 1]");
  blur_.prob = config.get_float("augment.blur_prob");
  const auto sig = config.get_float_list("augment.blur_sigma");
  IRIS_CHECK(sig.size() == 2, "augment.blur_sigma must be [lo, hi]");
  blur_.sigma_lo = sig[0];
  blur_.sigma_hi = sig[1];
  IRIS_CHECK(blur_.prob == 0 || super_resolution(), "augment.blur_prob is for super-resolution stages");
  if (super_resolution()) {
    lowres_size_ = config.get_int("data.lowres_size");
    IRIS_CHECK(lowres_size_ > 0, "data.lowres_size must be positive for ", task_name(task_), " stages, got ",
               lowres_size_);
  }
  net_ = std::make_shared<UNet>(u, init);
}

Tensor Stage::upsample_condition(const Tensor& z, int64_t H, int64_t W) const {
  return resize_tensor(z, H > 0 ? H : resolution(), W > 0 ? W : resolution(), data::Filter::bicubic);
}

std::pair<int64_t, int64_t> Stage::output_size(int64_t h, int64_t w) const {
  // The factor the network learnt: resolution() over the low-res size it was trained with at that
  // resolution (for a stage trained on crops, the low-res crop's size, not data.lowres_size).
  const int64_t R = resolution(), r = lowres_resolution_;
  if (!super_resolution()) return {R, R};
  IRIS_CHECK(h > 0 && w > 0, "a super-resolution input must not be empty, got ", h, "x", w);
  IRIS_CHECK(h * R % r == 0 && w * R % r == 0, "a ", h, "x", w, " input cannot be super-resolved by this ", r,
             "->", R, " stage: its output would be ", h, "x", w, " times ", R, "/", r,
             ", not whole pixels (give inputs whose sides are multiples of ", r / std::gcd(r, R), ")");
  return {h * R / r, w * R / r};
}

Tensor Stage::predict(const Tensor& x_t, const Tensor& gamma, const Tensor& cond_image, const Tensor& labels,
                      const Tensor& aug_level, Generator* rng) const {
  const Tensor input = task_ == Task::sr3 ? cat({cond_image.to(x_t.dtype()), x_t}, 3) : x_t;
  return net_->forward(input, gamma, labels, aug_level, rng);
}

Tensor Stage::regress(const Tensor& cond_image, Generator* rng) const {
  // The level is a constant: the embedding gives the blocks a learned bias, nothing else.
  const Tensor gamma = Tensor::ones({cond_image.size(0)}, DType::f32, cond_image.device());
  return net_->forward(cond_image, gamma, Tensor(), Tensor(), rng);
}

Tensor Stage::loss(const StageBatch& b, Generator& gen) const {
  check_defined(b.hr, "Stage::loss", "hr");
  const Tensor& x0 = b.hr;
  const int64_t N = x0.size(0);
  IRIS_CHECK(
      x0.dim() == 4 && x0.size(1) == resolution() && x0.size(2) == resolution() && x0.size(3) == channels(),
      "Stage::loss: images must be [N, ", resolution(), ", ", resolution(), ", ", channels(), "], got ",
      x0.summary());
  Tensor cond, labels, aug_level;
  if (super_resolution()) {
    IRIS_CHECK(b.lowres.defined() && b.lowres.dim() == 4 && b.lowres.size(0) == N,
               "Stage::loss: ", task_name(task_), " needs low-res images [N, h, w, C] for the ", N,
               " images, got ", b.lowres.summary());
    Tensor z = blur_augment(b.lowres, blur_, gen);
    if (aug_noise_) {
      const AugmentedCondition a = noise_augment(z, schedule_, 0.0, aug_noise_max_ * schedule_.T(), gen);
      z = a.z;
      aug_level = div(a.s, static_cast<double>(schedule_.T()));
    } else if (net_->config().aug_embedding) {
      aug_level = Tensor::zeros({N}, DType::f32, x0.device());
    }
    cond = upsample_condition(z);
    if (task_ == Task::regression) {
      // Straight to the high-res image: mean over samples of the per-sample L1 or L2 distance.
      const Tensor pred = regress(cond.to(x0.dtype()), &gen).to(x0.dtype());
      return mean(per_sample_loss(pred, x0, objective_.norm));
    }
  } else if (num_classes() > 0) {
    IRIS_CHECK(b.labels.defined() && b.labels.dim() == 1 && b.labels.size(0) == N,
               "Stage::loss: the class-"
               "conditional base task needs labels [N], got ",
               b.labels.summary());
    labels = b.labels.to(DType::i64);
    if (cond_drop_prob_ > 0) {
      // Classifier-free guidance training: the null class (index num_classes) with probability p.
      const Tensor drop = lt(rand({N}, gen, DType::f32, labels.device()), cond_drop_prob_);
      const Tensor null_label =
          Tensor::full({N}, static_cast<double>(num_classes()), DType::i64, labels.device());
      labels = where(drop, null_label.to(DType::f32), labels.to(DType::f32)).to(DType::i64);
    }
  }
  const TrainingLevels lv = sample_training_levels(schedule_, N, gen, x0.device(), DType::f32);
  const Tensor eps = randn(x0.shape(), gen, x0.dtype(), x0.device());
  const Tensor x_t = q_sample(x0, lv.gamma, eps);
  const Tensor pred = predict(x_t, lv.gamma, cond, labels, aug_level, &gen).to(x0.dtype());
  return diffusion_loss(pred, x0, eps, lv.gamma, objective_);
}

SampleSettings Stage::default_sample_settings() const {
  SampleSettings s;
  if (!iterative()) {
    s.sampler = "none";  // one forward pass (recorded so in run records)
    s.steps = 1;
    return s;
  }
  s.sampler = config_.get_string("diffusion.sampler");
  s.steps = config_.get_int("diffusion.sample_steps");
  s.schedule = config_.get_string("diffusion.sample_schedule");
  s.eta = config_.get_float("diffusion.ddim_eta");
  s.guidance = config_.get_float("diffusion.guidance_scale");
  s.clip_x0 = config_.get_bool("diffusion.clip_x0");
  s.aug_level = aug_noise_ ? config_.get_float("augment.sample_noise_level") : 0.0;
  return s;
}

std::vector<double> Stage::sampling_path(const SampleSettings& s) const {
  IRIS_CHECK(s.steps >= 1, "sampling needs at least one step, got ", s.steps);
  const std::string kind = s.schedule.empty() ? config_.get_string("diffusion.sample_schedule") : s.schedule;
  std::vector<double> path;
  if (kind == "linear")
    path = NoiseSchedule::linear(config_.get_float("diffusion.sample_beta_start"),
                                 config_.get_float("diffusion.sample_beta_end"), s.steps)
               .sampling_path();
  else if (kind == "cosine")
    path = NoiseSchedule::cosine(s.steps).sampling_path();
  else if (kind == "respaced")
    path = schedule_.respaced(s.steps).sampling_path();
  else
    IRIS_THROW("the sampling schedule (diffusion.sample_schedule) must be linear, cosine or respaced, got '",
               kind, "'");
  // Every sampler starts from pure noise, x ~ N(0, I), at the path's first level: that level must be close
  // to pure noise. A fresh linear schedule with the training beta range and few steps is not (linear(1e-4,
  // 0.1) over 10 steps starts at gamma 0.59): the samples would come out wrong without any error.
  if (path.front() > kMaxStartGamma) {
    if (kind == "respaced")  // more steps cannot help: the training levels themselves stop short of noise
      IRIS_THROW(
          "sampling: the training schedule (diffusion.schedule, timesteps, beta_end) ends at gamma ",
          path.front(),
          " (the signal fraction), far from the pure noise sampling starts from (gamma <= ", kMaxStartGamma,
          " needed): sample with a linear or cosine schedule (--schedule), or train with a "
          "schedule that reaches noise");
    IRIS_THROW("sampling: the ", kind, " schedule with ", s.steps, " steps starts at gamma ", path.front(),
               " (the signal fraction), but sampling starts from pure noise (gamma <= ", kMaxStartGamma,
               " needed): use more steps or the respaced schedule (--schedule respaced, "
               "diffusion.sample_schedule = \"respaced\")");
  }
  if (s.stop_gamma < 1.0) {
    // Truncated conditioning: the chain stops at the next stage's augmentation level. A level noisier than
    // where the chain starts would leave this stage not a single step to run.
    IRIS_CHECK(s.stop_gamma > path.front(), "sampling: truncated conditioning stops this stage at gamma ",
               s.stop_gamma, " (the next stage's augmentation level s), which is noisier than where its ",
               kind, " path of ", s.steps, " steps starts (gamma ", path.front(),
               "): not one step would run; lower s, give this stage more steps, or use non-truncated "
               "conditioning");
    path = sub_path(path, path.front(), s.stop_gamma);
  }
  return path;
}

Tensor Stage::sample(const StageBatch& c, int64_t count, Generator& gen, const SampleSettings& s) const {
  NoGradGuard ng;
  Device device = net_->parameters().front().device();
  Tensor cond, aug_level, labels;
  Denoiser windowed, regress_windows;  // super-resolution at sizes the network cannot take whole, or tiled
  int64_t N = count, H = resolution(), W = resolution();
  IRIS_CHECK(s.tile == 0 || super_resolution(), "sample: tiling (--tile) is for super-resolution stages");
  if (super_resolution()) {
    IRIS_CHECK(c.lowres.defined() && c.lowres.dim() == 4 && c.lowres.size(3) == channels(),
               "sample: ", task_name(task_), " needs low-res images [N, h, w, ", channels(), "], got ",
               c.lowres.summary());
    N = c.lowres.size(0);
    // (A stage trained on crops scales by its crops' factor: output_size uses lowres_resolution().)
    std::tie(H, W) = output_size(c.lowres.size(1), c.lowres.size(2));
    Tensor z = c.lowres.to(device).to(DType::f32);
    if (net_->config().aug_embedding) {
      IRIS_CHECK(s.aug_level >= 0 && s.aug_level <= 1,
                 "sample: the augmentation level must be in [0, 1], got ", s.aug_level);
      if (s.renoise_condition && s.aug_level > 0)
        z = noise_augment_at(z, schedule_, s.aug_level * schedule_.T(), gen).z;
      aug_level = Tensor::full({N}, s.aug_level, DType::f32, device);
    }
    cond = upsample_condition(z, H, W);
    // Outputs of any size: the network runs on windows of the image padded to a multiple of its
    // downsampling (one window without tiling), blended at every step. Sizes that need neither keep the
    // plain path (bit-identical to it anyway: one window, no padding).
    const int64_t m = net_->config().downsampling();
    if (s.tile > 0 || H % m != 0 || W % m != 0) {
      const TilePlan plan = plan_tiles(H, W, m, s.tile, s.tile_overlap);
      if (task_ == Task::regression)
        regress_windows =
            tiled_denoiser([this](const Tensor&, const Tensor&,
                                  const Tensor& window_cond) { return regress(window_cond, nullptr); },
                           cond, plan);
      else
        windowed = tiled_denoiser(
            [this, &labels, &aug_level](const Tensor& x_t, const Tensor& gamma, const Tensor& window_cond) {
              return predict(x_t, gamma, window_cond, labels, aug_level, nullptr);
            },
            cond, plan);
    }
    if (task_ == Task::regression) {
      IRIS_CHECK(s.sampler == "none" && s.steps == 1 && s.stop_gamma == 1.0,
                 "sample: a regression stage takes "
                 "one forward pass; sampler '",
                 s.sampler, "' with ", s.steps, " steps does not apply to it");
      // The windowed path takes an x_t it ignores: the regression network sees only the condition.
      const Tensor raw = regress_windows
                             ? regress_windows(Tensor::zeros({N, H, W, channels()}, DType::f32, device),
                                               Tensor::ones({N}, DType::f32, device))
                             : regress(cond, nullptr);
      const Tensor out = clamp(raw, -1.0, 1.0);
      if (s.on_step) s.on_step({1, 1, 1.0, out, out});
      return out;
    }
  } else if (num_classes() > 0) {
    IRIS_CHECK(c.labels.defined() && c.labels.dim() == 1, "sample: this base model is class-conditional (",
               num_classes(), " classes): give labels [N]");
    labels = c.labels.to(device).to(DType::i64);
    N = labels.size(0);
  }
  IRIS_CHECK(N > 0, "sample: nothing to sample (N = 0)");
  // The network's evaluation: f(x_t, gamma, cond, labels, aug_level) (undefined where not used).
  std::function<Tensor(const std::vector<Tensor>&)> evaluate = [this](const std::vector<Tensor>& in) {
    return predict(in[0], in[1], in[2], in[3], in[4], nullptr);
  };
  if (!windowed && device.is_cuda() && cuda_graphs_enabled()) {
    // The same evaluation through a graph per (batch, shapes, precision), replayed at every step after the
    // first two (replay_graph.h): one launch instead of hundreds. Its inputs are copied into the graph's.
    if (!graphs_) graphs_ = std::make_shared<GraphedFunction>("sample", cuda_graph_capturer());
    const std::string variant =
        autocast_enabled() ? std::string("autocast ") + dtype_name(autocast_dtype()) : std::string("exact");
    evaluate = [graphs = graphs_, variant, eager = evaluate](const std::vector<Tensor>& in) {
      return (*graphs)(in, variant, eager);
    };
  }
  const Denoiser plain = windowed ? windowed : Denoiser([&](const Tensor& x_t, const Tensor& gamma) {
    return evaluate({x_t, gamma, cond, labels, aug_level});
  });
  Denoiser model = plain;
  if (task_ == Task::base && num_classes() > 0 && s.guidance != 1.0) {
    const ConditionalDenoiser conditional = [&](const Tensor& x_t, const Tensor& gamma, const Tensor& lab) {
      return evaluate({x_t, gamma, Tensor(), lab, Tensor()});
    };
    const Tensor null_labels = Tensor::full({1}, static_cast<double>(num_classes()), DType::i64, device);
    model = classifier_free_guidance(conditional, labels, null_labels, s.guidance);
  }
  SamplerOptions opt;
  opt.parameterization = objective_.target;
  opt.clip_x0 = s.clip_x0;
  opt.device = device;
  opt.on_step = s.on_step;
  const std::vector<double> path = sampling_path(s);
  const Shape shape{N, H, W, channels()};
  if (s.sampler == "ddpm") return ddpm_sample(model, path, shape, gen, DdpmVariance::beta, opt);
  if (s.sampler == "ddim") return ddim_sample(model, path, shape, gen, s.eta, opt);
  if (s.sampler == "dpmpp2m") return dpm_solver_pp_2m_sample(model, path, shape, gen, opt);
  IRIS_THROW("unknown sampler '", s.sampler, "' (expected ddpm, ddim or dpmpp2m)");
}

}  // namespace iris::diffusion
