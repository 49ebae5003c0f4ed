// The SR3/CDM U-Net (DDPM-style residual blocks with a noise-level embedding, self-attention at chosen
// resolutions), channels-last, configurable from TOML. With the settings of configs/sr3_bench_128.toml it is
// exactly the benchmark model of tools/bench/SR3_BENCH.md (97,807,491 parameters).
//
// Conditioning: a scalar noise level per sample (sinusoidal embedding of a scaled level + MLP), optionally a
// class label (learned embedding with an extra "null" class for classifier-free guidance) and an
// augmentation level (a second sinusoidal embedding + MLP, CDM's conditioning augmentation); the embeddings
// are summed and every residual block adds a per-channel projection of the sum (or, with scale_shift_norm,
// uses it as the scale and shift of its second norm).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "diffusion/config.h"
#include "framework/core/generator.h"
#include "framework/nn/conv_layers.h"
#include "framework/nn/layers.h"
#include "framework/nn/module.h"

namespace iris::diffusion {

struct UNetConfig {
  int64_t resolution = 28, in_channels = 2, out_channels = 1, base_channels = 32;
  std::vector<int64_t> channel_mults{1, 2, 2};
  int64_t num_res_blocks = 2;
  std::vector<int64_t> attention_resolutions{7};
  int64_t attention_heads = 1, norm_groups = 8;
  double dropout = 0.0;
  int64_t emb_dim = 0, emb_hidden = 0;  // 0: base_channels, 4 x emb_dim
  std::string noise_embedding = "sqrt_gamma";
  double noise_embedding_scale = 1000.0;
  int64_t num_classes = 0;
  bool aug_embedding = false, resblock_updown = false, skip_rescale = false, scale_shift_norm = false;
  // Activation checkpointing of every ResBlock (with its attention) in training with grad on: less memory,
  // about one more forward pass of compute per step. Same results (see framework/autograd/checkpoint.h).
  bool checkpoint_res_blocks = false;
  // ADM/DDPM initialisation: the last convolution of every residual branch, the attention output projection
  // and the final convolution start at zero, so every block starts as the identity (its skip) and the
  // network's first output is 0. Only the initial weights differ; checkpoints load either way.
  bool zero_init = false;

  static UNetConfig from_config(const Config& c);
  // Throws iris::Error naming the first inconsistent setting (widths not divisible by the groups, ...).
  void validate() const;
  int64_t embedding_dim() const { return emb_dim > 0 ? emb_dim : base_channels; }
  int64_t embedding_hidden() const { return emb_hidden > 0 ? emb_hidden : 4 * embedding_dim(); }
  // The total downsampling 2^(levels - 1): the network takes any H x W that are multiples of it (it is
  // convolutional; attention and GroupNorm work on whatever size they get). `resolution` is the size it
  // was built and trained for.
  int64_t downsampling() const { return int64_t{1} << (channel_mults.size() - 1); }
};

// Self-attention over the H*W positions of [N, H, W, C]: x + proj(attention(qkv(norm(x)))).
class AttentionBlock : public nn::Module {
 public:
  AttentionBlock(int64_t channels, int64_t heads, int64_t groups, bool zero_init, Generator& init);
  Tensor forward(const Tensor& x) const;

 private:
  int64_t channels_, heads_;
  std::shared_ptr<nn::GroupNorm> norm_;
  std::shared_ptr<nn::Conv2d> qkv_, proj_;
};

enum class Resample { none, down, up };

// The residual block: conv(silu(norm(x))) + embedding, conv(dropout(silu(norm(h)))), plus a skip; optional
// attention after it; optional BigGAN-style resampling inside it.
class ResBlock : public nn::Module {
 public:
  ResBlock(int64_t cin, int64_t cout, const UNetConfig& cfg, bool attention, Resample resample,
           Generator& init);
  // x: [N, H, W, cin], emb: [N, emb_dim] -> [N, H', W', cout]; `rng` draws dropout (may be null in eval).
  // With cfg.checkpoint_res_blocks, in training mode with grad on, the block keeps only x and emb for
  // backward and runs again there: the module (and *rng) must then outlive the backward pass.
  Tensor forward(const Tensor& x, const Tensor& emb, Generator* rng) const;

 private:
  Tensor forward_block(const Tensor& x, const Tensor& emb, Generator* rng) const;

  int64_t cout_;
  double dropout_;
  bool skip_rescale_, scale_shift_, checkpoint_;
  Resample resample_;
  std::shared_ptr<nn::GroupNorm> norm1_, norm2_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, skip_;
  std::shared_ptr<nn::Linear> emb_proj_;
  std::shared_ptr<AttentionBlock> attn_;
};

// Sinusoidal embedding of scalar levels: [N] -> [N, dim], [sin(v f_k) for k, then cos(v f_k) for k],
// f_k = exp(-ln(10000) k / (dim/2)).
Tensor sinusoidal_embedding(const Tensor& values, int64_t dim);

class UNet : public nn::Module {
 public:
  UNet(const UNetConfig& cfg, Generator& init);

  // x: [N, H, W, in_channels] with H and W multiples of config().downsampling() (resolution x resolution in
  // training; any such size in sampling, see diffusion/tiling.h); noise_level: [N] (gamma, the signal
  // fraction); class_labels: [N] i64 in
  // [0, num_classes] (num_classes = null class) or undefined; aug_level: [N] or undefined (then 0).
  // Returns [N, H, W, out_channels]. `rng` draws dropout in training mode.
  Tensor forward(const Tensor& x, const Tensor& noise_level, const Tensor& class_labels = Tensor(),
                 const Tensor& aug_level = Tensor(), Generator* rng = nullptr) const;

  const UNetConfig& config() const { return cfg_; }
  // Multiply-accumulate-based FLOPs of one forward pass for one sample (2 per multiply-add; convolutions,
  // linear layers and attention), and the per-block breakdown printed by `iris info`.
  struct BlockInfo {
    std::string name;
    int64_t params;
    double flops;
    Shape out_shape;  // per sample
  };
  const std::vector<BlockInfo>& summary() const { return info_; }
  double flops_per_sample() const;  // forward
  // Forward + backward (2x forward, less the stem's input gradient, which is never needed): the work of a
  // training step per sample, as tools/bench/SR3_BENCH.md counts it.
  double train_flops_per_sample() const;

 private:
  Tensor embed(const Tensor& noise_level, const Tensor& class_labels, const Tensor& aug_level) const;

  UNetConfig cfg_;
  std::shared_ptr<nn::Linear> emb1_, emb2_, aug1_, aug2_;
  std::shared_ptr<nn::Embedding> class_emb_;
  std::shared_ptr<nn::Conv2d> stem_;
  // The down and up paths as flat lists of layers: a ResBlock, or a resampling conv (then the block is null).
  struct PathLayer {
    std::shared_ptr<ResBlock> block;   // a residual block, or
    std::shared_ptr<nn::Conv2d> conv;  // a Downsample conv (stride 2) / Upsample conv (after nearest x2)
    bool uses_skip = false;            // up path: the block takes concat(x, skip)
  };
  std::vector<PathLayer> down_, up_;
  std::shared_ptr<nn::ModuleList> down_list_, up_list_;  // own the layers' modules: "down.N", "up.N"
  std::shared_ptr<ResBlock> mid1_, mid2_;
  std::shared_ptr<nn::GroupNorm> out_norm_;
  std::shared_ptr<nn::Conv2d> out_conv_;
  std::vector<BlockInfo> info_;
  double stem_flops_ = 0;
};

}  // namespace iris::diffusion
