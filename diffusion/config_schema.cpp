// Every configuration key Iris understands: its type, default and meaning. This list is the documentation
// (`iris config --keys` prints it); keep it stable, add rather than rename.
#include "diffusion/config.h"

namespace iris {

namespace {
using V = std::vector<int64_t>;
using F = std::vector<double>;
using S = std::vector<std::string>;
using T = ConfigType;
}  // namespace

const std::vector<ConfigKey>& config_schema() {
  static const std::vector<ConfigKey> keys = {
      // ---- model: the U-Net ------------------------------------------------------------------------------
      {"model.task", T::string, std::string("sr3"),
       "what is trained: sr3 (super-resolution conditioned on an upsampled low-res image), regression "
       "(SR3's baseline: the same U-Net maps the upsampled low-res image straight to the high-res one, one "
       "forward pass; in_channels = data.channels), base (class-conditional or unconditional generator; a "
       "cascade's first stage)"},
      {"model.resolution", T::integer, int64_t{28}, "image size the U-Net works at (square)"},
      {"model.in_channels", T::integer, int64_t{2},
       "input channels (sr3: image channels x 2: low-res and y_t)"},
      {"model.out_channels", T::integer, int64_t{1}, "output channels (the image channels)"},
      {"model.base_channels", T::integer, int64_t{32}, "width of the first level"},
      {"model.channel_mults", T::int_list, V{1, 2, 2}, "width multiplier of each level, from the top"},
      {"model.num_res_blocks", T::integer, int64_t{2},
       "residual blocks per level on the way down (up: one more)"},
      {"model.attention_resolutions", T::int_list, V{7},
       "resolutions at which res blocks have self-attention"},
      {"model.attention_heads", T::integer, int64_t{1}, "attention heads (the channels split evenly)"},
      {"model.norm_groups", T::integer, int64_t{8}, "GroupNorm groups"},
      {"model.dropout", T::number, 0.0, "dropout in res blocks (SR3: 0.2 for 16->128, else 0)"},
      {"model.emb_dim", T::integer, int64_t{0}, "noise-level embedding width (0: base_channels)"},
      {"model.emb_hidden", T::integer, int64_t{0}, "hidden width of the embedding MLP (0: 4 x emb_dim)"},
      {"model.noise_embedding", T::string, std::string("sqrt_gamma"),
       "what the sinusoidal embedding sees: sqrt_gamma (SR3/WaveGrad) or log_snr"},
      {"model.noise_embedding_scale", T::number, 1000.0,
       "multiplier applied before the sinusoid (without one the embedding has no high frequencies)"},
      {"model.num_classes", T::integer, int64_t{0},
       "class-conditional when > 0 (plus a null class for guidance)"},
      {"model.aug_embedding", T::boolean, false,
       "condition on a conditioning-augmentation level through a second embedding (CDM)"},
      {"model.resblock_updown", T::boolean, false, "BigGAN-style res blocks that down/upsample (SR3)"},
      {"model.skip_rescale", T::boolean, false, "scale residual sums by 1/sqrt(2) (SR3)"},
      {"model.scale_shift_norm", T::boolean, false,
       "the embedding gives a scale and shift of the norm (ADM)"},
      {"model.zero_init", T::boolean, false,
       "ADM/DDPM initialisation: each res block's last conv, the attention output projection and the final "
       "conv start at zero (every block starts as its skip connection)"},
      {"model.checkpoint_res_blocks", T::boolean, false,
       "activation checkpointing: recompute each res block in backward instead of keeping its activations"},
      // ---- diffusion: noise schedule, objective, sampling -------------------------------------------------
      {"diffusion.schedule", T::string, std::string("linear"), "training schedule: linear or cosine"},
      {"diffusion.timesteps", T::integer, int64_t{2000}, "training steps T (SR3: 2000)"},
      {"diffusion.beta_start", T::number, 1e-6, "linear schedule's first beta"},
      {"diffusion.beta_end", T::number, 1e-2, "linear schedule's last beta"},
      {"diffusion.parameterization", T::string, std::string("eps"), "network predicts eps (SR3) or v"},
      {"diffusion.loss", T::string, std::string("l1"), "l1 (SR3's best) or l2"},
      {"diffusion.min_snr_gamma", T::number, 0.0,
       "min-SNR loss weighting with this gamma (0: off; 5 is usual)"},
      {"diffusion.cond_drop_prob", T::number, 0.1,
       "probability of training with the null class (classifier-free guidance; base task with classes)"},
      {"diffusion.sampler", T::string, std::string("ddpm"), "ddpm (ancestral), ddim or dpmpp2m"},
      {"diffusion.sample_steps", T::integer, int64_t{100}, "sampling steps (SR3: at most 100)"},
      {"diffusion.sample_schedule", T::string, std::string("linear"),
       "sampling schedule: linear or cosine (a fresh schedule of sample_steps), or respaced (training "
       "levels)"},
      {"diffusion.sample_beta_start", T::number, 1e-4, "sampling schedule's first beta (linear)"},
      {"diffusion.sample_beta_end", T::number, 0.1, "sampling schedule's last beta (linear)"},
      {"diffusion.ddim_eta", T::number, 0.0, "DDIM noise (0: deterministic)"},
      {"diffusion.guidance_scale", T::number, 1.0, "classifier-free guidance scale (1: none)"},
      {"diffusion.clip_x0", T::boolean, true, "clip predicted x0 to [-1, 1] while sampling"},
      // ---- augment: conditioning augmentation for super-resolution stages (CDM) ---------------------------
      {"augment.noise", T::boolean, false, "Gaussian-noise conditioning augmentation of the low-res input"},
      {"augment.noise_level_max", T::number, 0.5,
       "augmentation level s ~ U[0, max] during training; the low-res input is noised to gamma_s = 1 - s"},
      {"augment.sample_noise_level", T::number, 0.1, "augmentation level used when sampling"},
      {"augment.blur_prob", T::number, 0.0,
       "probability of blurring the low-res input in training (CDM: 0.5)"},
      {"augment.blur_sigma", T::number_list, F{0.4, 0.6}, "range of the blur's sigma, in low-res pixels"},
      // ---- data -------------------------------------------------------------------------------------------
      {"data.dir", T::string, std::string("data-cache/fashion-mnist/train"),
       "shard folder (with index.json)"},
      {"data.val_dir", T::string, std::string(""), "validation shard folder (default: data.dir)"},
      {"data.image_size", T::integer, int64_t{28},
       "high-res image size (the shards' images, or a stored low-res copy of that height)"},
      {"data.lowres_size", T::integer, int64_t{7}, "low-res input size (sr3)"},
      {"data.channels", T::integer, int64_t{1}, "image channels"},
      {"data.crop_size", T::integer, int64_t{0},
       "patch training: train on random crop_size x crop_size crops of the data.image_size images (0: the "
       "whole images). model.resolution must equal it; the low-res input is the same region of the stored "
       "data.lowres_size copy (crop_size and the crop's position are multiples of the scale factor "
       "image_size / lowres_size); the validation batch takes centre crops"},
      {"data.hflip", T::boolean, false, "random horizontal flips"},
      {"data.prefetch", T::integer, int64_t{4}, "batches prepared ahead by background threads"},
      // ---- train ------------------------------------------------------------------------------------------
      {"train.steps", T::integer, int64_t{2000}, "optimizer steps in total"},
      {"train.batch_size", T::integer, int64_t{32}, "global batch (split evenly over ranks)"},
      {"train.microbatch", T::integer, int64_t{0},
       "samples per forward/backward on a rank (0: its whole slice); gradients accumulate to the same step"},
      {"train.lr", T::number, 1e-4, "peak learning rate (SR3: 1e-4)"},
      {"train.warmup_steps", T::integer, int64_t{100}, "linear learning-rate warm-up (SR3: 10000)"},
      {"train.lr_schedule", T::string, std::string("constant"), "after warm-up: constant or cosine"},
      {"train.final_lr", T::number, 0.0, "cosine schedule's last learning rate"},
      {"train.weight_decay", T::number, 0.0, "AdamW decoupled weight decay"},
      {"train.adam_beta1", T::number, 0.9, "Adam beta1"},
      {"train.adam_beta2", T::number, 0.999, "Adam beta2"},
      {"train.adam_eps", T::number, 1e-8, "Adam epsilon"},
      {"train.grad_clip", T::number, 1.0, "clip the global gradient norm to this (0: off)"},
      {"train.spike_zscore", T::number, 0.0,
       "skip the update when the gradient norm is this many standard deviations above its running mean "
       "(0: off; e.g. 6)"},
      {"train.spike_warmup", T::integer, int64_t{100},
       "steps of gradient norms seen before the spike guard acts"},
      {"train.ema_decay", T::number, 0.999, "EMA decay of the weights (with warm-up)"},
      {"train.seed", T::integer, int64_t{0}, "seed of all randomness (data order, noise, dropout, init)"},
      {"train.precision", T::string, std::string("f32"),
       "f32, tf32 (TF32 tensor cores for f32 GEMMs and convolutions) or bf16 (autocast); CUDA only, the CPU "
       "trains in f32"},
      {"train.conv_search", T::string, std::string("heuristic"),
       "CUDA convolution algorithms: heuristic (cuDNN's ranking; a resumed run is bit-identical) or find "
       "(timed once per shape: faster, but a resumed run may differ in the last bits)"},
      {"train.device", T::string, std::string("auto"), "auto (a GPU if there is one), cpu, cuda or cuda:N"},
      {"train.log_every", T::integer, int64_t{50}, "steps between progress lines and metrics records"},
      {"train.checkpoint_every", T::integer, int64_t{500}, "steps between checkpoints"},
      {"train.keep_checkpoints", T::integer, int64_t{3}, "newest checkpoints kept"},
      {"train.keep_every", T::integer, int64_t{0},
       "also keep every checkpoint whose step is a multiple of this (milestones; 0: none)"},
      {"train.keep_best", T::boolean, true,
       "super-resolution stages: keep the state with the best validation PSNR so far (the EMA model on the "
       "validation batch, measured with each sample grid) as checkpoints/best.h5"},
      {"train.tensorboard", T::boolean, true,
       "also write TensorBoard event files (scalars, sample grids, the config) to RUN/tensorboard"},
      {"train.sample_every", T::integer, int64_t{1000}, "steps between sample grids of the validation batch"},
      {"train.sample_count", T::integer, int64_t{8}, "images in the validation batch"},
      {"train.sample_steps", T::integer, int64_t{0},
       "sampling steps for training-time grids (0: diffusion's)"},
  };
  return keys;
}

}  // namespace iris
