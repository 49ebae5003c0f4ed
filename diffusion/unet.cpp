#include "diffusion/unet.h"

#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "framework/iris.h"

namespace iris::diffusion {

// ---- config ---------------------------------------------------------------------------------------------

UNetConfig UNetConfig::from_config(const Config& c) {
  UNetConfig u;
  u.resolution = c.get_int("model.resolution");
  u.in_channels = c.get_int("model.in_channels");
  u.out_channels = c.get_int("model.out_channels");
  u.base_channels = c.get_int("model.base_channels");
  u.channel_mults = c.get_int_list("model.channel_mults");
  u.num_res_blocks = c.get_int("model.num_res_blocks");
  u.attention_resolutions = c.get_int_list("model.attention_resolutions");
  u.attention_heads = c.get_int("model.attention_heads");
  u.norm_groups = c.get_int("model.norm_groups");
  u.dropout = c.get_float("model.dropout");
  u.emb_dim = c.get_int("model.emb_dim");
  u.emb_hidden = c.get_int("model.emb_hidden");
  u.noise_embedding = c.get_string("model.noise_embedding");
  u.noise_embedding_scale = c.get_float("model.noise_embedding_scale");
  u.num_classes = c.get_int("model.num_classes");
  u.aug_embedding = c.get_bool("model.aug_embedding");
  u.resblock_updown = c.get_bool("model.resblock_updown");
  u.skip_rescale = c.get_bool("model.skip_rescale");
  u.scale_shift_norm = c.get_bool("model.scale_shift_norm");
  u.checkpoint_res_blocks = c.get_bool("model.checkpoint_res_blocks");
  u.zero_init = c.get_bool("model.zero_init");
  u.validate();
  return u;
}

void UNetConfig::validate() const {
  IRIS_CHECK(in_channels > 0 && out_channels > 0, "model: in_channels and out_channels must be positive");
  IRIS_CHECK(base_channels > 0 && !channel_mults.empty(),
             "model: base_channels must be positive and "
             "channel_mults non-empty");
  IRIS_CHECK(num_res_blocks >= 1, "model.num_res_blocks must be at least 1, got ", num_res_blocks);
  IRIS_CHECK(norm_groups >= 1, "model.norm_groups must be at least 1");
  IRIS_CHECK(dropout >= 0 && dropout < 1, "model.dropout must be in [0, 1), got ", dropout);
  IRIS_CHECK(noise_embedding == "sqrt_gamma" || noise_embedding == "log_snr",
             "model.noise_embedding must be sqrt_gamma or log_snr, got '", noise_embedding, "'");
  IRIS_CHECK(embedding_dim() % 2 == 0, "model.emb_dim must be even, got ", embedding_dim());
  IRIS_CHECK(base_channels % norm_groups == 0, "model.base_channels (", base_channels,
             ") must be divisible by model.norm_groups (", norm_groups, ")");
  int64_t r = resolution;
  for (size_t i = 0; i < channel_mults.size(); ++i) {
    const int64_t w = base_channels * channel_mults[i];
    IRIS_CHECK(channel_mults[i] > 0 && w % norm_groups == 0, "model: level ", i, " width ", w,
               " must be positive and divisible by model.norm_groups (", norm_groups, ")");
    for (int64_t a : attention_resolutions)
      if (a == r)
        IRIS_CHECK(w % attention_heads == 0, "model: width ", w, " at resolution ", r,
                   " is not divisible by model.attention_heads (", attention_heads, ")");
    if (i + 1 < channel_mults.size()) {
      IRIS_CHECK(r % 2 == 0, "model.resolution ", resolution, " cannot be halved ", channel_mults.size() - 1,
                 " times (", r, " is odd at level ", i, ")");
      r /= 2;
    }
  }
}

// ---- embedding ------------------------------------------------------------------------------------------

namespace {
// The embedding's frequencies exp(-log(10000) i / half), i < half, f32 [half] on `device`, made once per
// (half, device) and kept: made per call, the host-to-device copy of the exponents would sit inside every
// U-Net evaluation, where a CUDA graph cannot capture it (replay_graph.h). The same bits as made per call.
Tensor embedding_frequencies(int64_t half, Device device) {
  static std::mutex mutex;
  static auto* cache = new std::map<std::pair<int64_t, std::string>, Tensor>;  // leaked: no teardown order
  const std::lock_guard<std::mutex> lock(mutex);
  Tensor& freqs = (*cache)[{half, device.str()}];
  if (!freqs.defined())
    freqs = exp(Tensor::arange(half, DType::f32, device, 0.0, -std::log(10000.0) / static_cast<double>(half)));
  return freqs;
}
}  // namespace

Tensor sinusoidal_embedding(const Tensor& values, int64_t dim) {
  IRIS_CHECK(values.dim() == 1, "sinusoidal_embedding: expected levels of shape [N], got ", values.summary());
  const int64_t half = dim / 2;
  const Tensor freqs = embedding_frequencies(half, values.device());
  const Tensor arg = mul(values.to(DType::f32).unsqueeze(1), freqs.unsqueeze(0));  // [N, half]
  return cat({sin(arg), cos(arg)}, 1);
}

// ---- blocks ---------------------------------------------------------------------------------------------

namespace {
// Zero-initialises a convolution (weight and bias). The generator has already drawn its weights, so the draws
// of every later layer are the same with and without zero_init.
void zero_conv(nn::Conv2d& conv) {
  NoGradGuard no_grad;
  conv.weight.zero_();
  if (conv.bias.defined()) conv.bias.zero_();
}
}  // namespace

AttentionBlock::AttentionBlock(int64_t channels, int64_t heads, int64_t groups, bool zero_init,
                               Generator& init)
    : channels_(channels), heads_(heads) {
  norm_ = register_module("norm", std::make_shared<nn::GroupNorm>(groups, channels));
  qkv_ = register_module("qkv", std::make_shared<nn::Conv2d>(channels, 3 * channels, 1, init, 1, 0, false));
  proj_ = register_module("proj", std::make_shared<nn::Conv2d>(channels, channels, 1, init));
  if (zero_init) zero_conv(*proj_);
}

Tensor AttentionBlock::forward(const Tensor& x) const {
  const int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = channels_, d = C / heads_;
  const Tensor qkv = qkv_->forward(norm_->forward(x)).reshape({N, H * W, 3, heads_, d});
  // [N, T, 3, heads, d] -> three [N, heads, T, d] views
  const Tensor q = qkv.select(2, 0).permute({0, 2, 1, 3});
  const Tensor k = qkv.select(2, 1).permute({0, 2, 1, 3});
  const Tensor v = qkv.select(2, 2).permute({0, 2, 1, 3});
  const Tensor o = attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(d)));  // [N, heads, T, d]
  const Tensor merged = o.permute({0, 2, 1, 3}).reshape({N, H, W, C});
  return add(x, proj_->forward(merged));
}

ResBlock::ResBlock(int64_t cin, int64_t cout, const UNetConfig& cfg, bool attention, Resample resample,
                   Generator& init)
    : cout_(cout),
      dropout_(cfg.dropout),
      skip_rescale_(cfg.skip_rescale),
      scale_shift_(cfg.scale_shift_norm),
      checkpoint_(cfg.checkpoint_res_blocks),
      resample_(resample) {
  norm1_ = register_module("norm1", std::make_shared<nn::GroupNorm>(cfg.norm_groups, cin));
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(cin, cout, 3, init, 1, 1));
  emb_proj_ = register_module(
      "emb_proj", std::make_shared<nn::Linear>(cfg.embedding_dim(), scale_shift_ ? 2 * cout : cout, init));
  norm2_ = register_module("norm2", std::make_shared<nn::GroupNorm>(cfg.norm_groups, cout));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(cout, cout, 3, init, 1, 1));
  if (cfg.zero_init) zero_conv(*conv2_);
  if (cin != cout) skip_ = register_module("skip", std::make_shared<nn::Conv2d>(cin, cout, 1, init));
  if (attention)
    attn_ = register_module("attn", std::make_shared<AttentionBlock>(cout, cfg.attention_heads, cfg.norm_groups,
                                                                     cfg.zero_init, init));
}

Tensor ResBlock::forward(const Tensor& x, const Tensor& emb, Generator* rng) const {
  if (checkpoint_ && is_training() && grad_enabled()) {
    // Keeps x and emb only; the block (and its attention) is recomputed in backward, with the same dropout.
    // parameters() lists every weight forward_block touches, so they all get their gradients.
    return checkpoint([this, rng](const std::vector<Tensor>& in) { return forward_block(in[0], in[1], rng); },
                      {x, emb}, parameters(), rng);
  }
  return forward_block(x, emb, rng);
}

Tensor ResBlock::forward_block(const Tensor& x_in, const Tensor& emb, Generator* rng) const {
  Tensor x = x_in;
  Tensor h = norm1_->forward_silu(x);
  if (resample_ == Resample::down) {
    h = avg_pool2x(h);
    x = avg_pool2x(x);
  } else if (resample_ == Resample::up) {
    h = upsample_nearest2x(h);
    x = upsample_nearest2x(x);
  }
  h = conv1_->forward(h);
  const Tensor e = emb_proj_->forward(emb);  // [N, cout] or [N, 2 cout]
  const int64_t N = e.size(0);
  if (scale_shift_) {
    const Tensor scale = e.slice(1, 0, cout_).reshape({N, 1, 1, cout_});
    const Tensor shift = e.slice(1, cout_, 2 * cout_).reshape({N, 1, 1, cout_});
    h = silu(add(mul(norm2_->forward(h), add(scale, 1.0)), shift));
  } else {
    h = norm2_->forward_silu(add(h, e.reshape({N, 1, 1, cout_})));
  }
  if (dropout_ > 0 && is_training()) {
    IRIS_CHECK(rng != nullptr, "ResBlock: dropout in training mode needs a generator");
    h = dropout(h, dropout_, *rng, true);
  }
  h = conv2_->forward(h);
  Tensor out = add(h, skip_ ? skip_->forward(x) : x);
  if (skip_rescale_) out = mul(out, 1.0 / std::sqrt(2.0));
  return attn_ ? attn_->forward(out) : out;
}

// ---- the U-Net ------------------------------------------------------------------------------------------

namespace {
// FLOPs (2 per multiply-add) of the GEMM-like work of one sample.
double conv_flops(int64_t res_out, int64_t cin, int64_t cout, int64_t k) {
  return 2.0 * static_cast<double>(res_out * res_out) * static_cast<double>(cout * k * k * cin);
}
double resblock_flops(int64_t cin, int64_t cout, int64_t res_out, bool attn, int64_t emb_dim,
                      int64_t emb_out) {
  double f = conv_flops(res_out, cin, cout, 3) + conv_flops(res_out, cout, cout, 3) + 2.0 * emb_dim * emb_out;
  if (cin != cout) f += conv_flops(res_out, cin, cout, 1);
  if (attn) {
    const double T = static_cast<double>(res_out * res_out);
    f += conv_flops(res_out, cout, 3 * cout, 1) + 2.0 * 2.0 * T * T * cout +
         conv_flops(res_out, cout, cout, 1);
  }
  return f;
}
}  // namespace

UNet::UNet(const UNetConfig& cfg, Generator& init) : cfg_(cfg) {
  cfg_.validate();
  const int64_t E = cfg.embedding_dim(), EH = cfg.embedding_hidden(), base = cfg.base_channels;
  emb1_ = register_module("emb1", std::make_shared<nn::Linear>(E, EH, init));
  emb2_ = register_module("emb2", std::make_shared<nn::Linear>(EH, E, init));
  if (cfg.num_classes > 0)
    class_emb_ = register_module("class_emb", std::make_shared<nn::Embedding>(cfg.num_classes + 1, E, init));
  if (cfg.aug_embedding) {
    aug1_ = register_module("aug1", std::make_shared<nn::Linear>(E, EH, init));
    aug2_ = register_module("aug2", std::make_shared<nn::Linear>(EH, E, init));
  }
  down_list_ = std::make_shared<nn::ModuleList>();
  up_list_ = std::make_shared<nn::ModuleList>();
  stem_ = register_module("stem", std::make_shared<nn::Conv2d>(cfg.in_channels, base, 3, init, 1, 1));
  const int64_t emb_out_mult = cfg.scale_shift_norm ? 2 : 1;
  auto note = [&](const std::string& name, const nn::Module& m, double flops, int64_t r, int64_t c) {
    info_.push_back({name, m.num_parameters(), flops, {r, r, c}});
  };
  {
    double f = 2.0 * 2.0 * E * EH;
    note("noise embedding", *emb1_, f, 1, E);
    info_.back().params += emb2_->num_parameters();
    if (class_emb_) note("class embedding", *class_emb_, 0, 1, E);
    if (aug1_) {
      note("augmentation embedding", *aug1_, f, 1, E);
      info_.back().params += aug2_->num_parameters();
    }
  }
  stem_flops_ = conv_flops(cfg.resolution, cfg.in_channels, base, 3);
  note("stem", *stem_, stem_flops_, cfg.resolution, base);

  auto has_attn = [&](int64_t r) {
    for (int64_t a : cfg.attention_resolutions)
      if (a == r) return true;
    return false;
  };
  const size_t levels = cfg.channel_mults.size();
  std::vector<int64_t> skips{base};
  int64_t ch = base, res = cfg.resolution;
  for (size_t i = 0; i < levels; ++i) {
    const int64_t width = base * cfg.channel_mults[i];
    for (int64_t b = 0; b < cfg.num_res_blocks; ++b) {
      PathLayer s;
      s.block = down_list_->push_back(
          std::make_shared<ResBlock>(ch, width, cfg, has_attn(res), Resample::none, init));
      note("down." + std::to_string(down_.size()) + (has_attn(res) ? " res+attn" : " res"), *s.block,
           resblock_flops(ch, width, res, has_attn(res), E, emb_out_mult * width), res, width);
      down_.push_back(s);
      ch = width;
      skips.push_back(ch);
    }
    if (i + 1 < levels) {
      PathLayer s;
      if (cfg.resblock_updown) {
        s.block = down_list_->push_back(std::make_shared<ResBlock>(ch, ch, cfg, false, Resample::down, init));
        note("down." + std::to_string(down_.size()) + " res down", *s.block,
             resblock_flops(ch, ch, res / 2, false, E, emb_out_mult * ch), res / 2, ch);
      } else {
        s.conv = down_list_->push_back(std::make_shared<nn::Conv2d>(ch, ch, 3, init, 2, 1));
        note("down." + std::to_string(down_.size()) + " downsample", *s.conv, conv_flops(res / 2, ch, ch, 3),
             res / 2, ch);
      }
      down_.push_back(s);
      skips.push_back(ch);
      res /= 2;
    }
  }
  register_module("down", down_list_);
  mid1_ = register_module("mid1", std::make_shared<ResBlock>(ch, ch, cfg, true, Resample::none, init));
  mid2_ = register_module("mid2", std::make_shared<ResBlock>(ch, ch, cfg, false, Resample::none, init));
  note("mid1 res+attn", *mid1_, resblock_flops(ch, ch, res, true, E, emb_out_mult * ch), res, ch);
  note("mid2 res", *mid2_, resblock_flops(ch, ch, res, false, E, emb_out_mult * ch), res, ch);
  for (size_t li = levels; li-- > 0;) {
    const int64_t width = base * cfg.channel_mults[li];
    for (int64_t b = 0; b <= cfg.num_res_blocks; ++b) {
      PathLayer s;
      const int64_t skip_ch = skips.back();
      skips.pop_back();
      s.block = up_list_->push_back(
          std::make_shared<ResBlock>(ch + skip_ch, width, cfg, has_attn(res), Resample::none, init));
      s.uses_skip = true;
      note("up." + std::to_string(up_.size()) + (has_attn(res) ? " res+attn" : " res"), *s.block,
           resblock_flops(ch + skip_ch, width, res, has_attn(res), E, emb_out_mult * width), res, width);
      up_.push_back(s);
      ch = width;
    }
    if (li > 0) {
      PathLayer s;
      if (cfg.resblock_updown) {
        s.block = up_list_->push_back(std::make_shared<ResBlock>(ch, ch, cfg, false, Resample::up, init));
        note("up." + std::to_string(up_.size()) + " res up", *s.block,
             resblock_flops(ch, ch, res * 2, false, E, emb_out_mult * ch), res * 2, ch);
      } else {
        s.conv = up_list_->push_back(std::make_shared<nn::Conv2d>(ch, ch, 3, init, 1, 1));
        note("up." + std::to_string(up_.size()) + " upsample", *s.conv, conv_flops(res * 2, ch, ch, 3),
             res * 2, ch);
      }
      up_.push_back(s);
      res *= 2;
    }
  }
  IRIS_ASSERT(skips.empty());
  register_module("up", up_list_);
  out_norm_ = register_module("out_norm", std::make_shared<nn::GroupNorm>(cfg.norm_groups, ch));
  out_conv_ = register_module("out_conv", std::make_shared<nn::Conv2d>(ch, cfg.out_channels, 3, init, 1, 1));
  if (cfg.zero_init) zero_conv(*out_conv_);
  note("head", *out_conv_, conv_flops(cfg.resolution, ch, cfg.out_channels, 3), cfg.resolution,
       cfg.out_channels);
  info_.back().params += out_norm_->num_parameters();
}

double UNet::flops_per_sample() const {
  double f = 0;
  for (const auto& b : info_) f += b.flops;
  return f;
}

double UNet::train_flops_per_sample() const {
  return 3.0 * flops_per_sample() - stem_flops_;
}

Tensor UNet::embed(const Tensor& noise_level, const Tensor& class_labels, const Tensor& aug_level) const {
  const int64_t E = cfg_.embedding_dim();
  auto scaled = [&](const Tensor& gamma) {
    const Tensor g = clamp(gamma.to(DType::f32), 1e-12, 1.0);
    if (cfg_.noise_embedding == "log_snr")
      return mul(log(div(g, rsub(1.0 + 1e-12, g))), cfg_.noise_embedding_scale);
    return mul(sqrt(g), cfg_.noise_embedding_scale);
  };
  Tensor e = emb2_->forward(silu(emb1_->forward(sinusoidal_embedding(scaled(noise_level), E))));
  if (class_emb_) {
    IRIS_CHECK(class_labels.defined(), "UNet: this model is class-conditional (", cfg_.num_classes,
               " classes): pass class labels (", cfg_.num_classes, " for the null class)");
    e = add(e, class_emb_->forward(class_labels));
  }
  if (aug1_) {
    const Tensor a = aug_level.defined()
                         ? aug_level
                         : Tensor::zeros({noise_level.size(0)}, DType::f32, noise_level.device());
    e = add(e, aug2_->forward(silu(aug1_->forward(
                   sinusoidal_embedding(mul(a.to(DType::f32), cfg_.noise_embedding_scale), E)))));
  }
  return e;
}

Tensor UNet::forward(const Tensor& x, const Tensor& noise_level, const Tensor& class_labels,
                     const Tensor& aug_level, Generator* rng) const {
  const int64_t m = cfg_.downsampling();
  IRIS_CHECK(x.dim() == 4 && x.size(3) == cfg_.in_channels && x.size(1) > 0 && x.size(2) > 0 &&
                 x.size(1) % m == 0 && x.size(2) % m == 0,
             "UNet: expected input [N, H, W, ", cfg_.in_channels, "] with H and W multiples of ", m,
             " (its total downsampling; it was built for ", cfg_.resolution, "x", cfg_.resolution, "), got ",
             x.summary());
  IRIS_CHECK(noise_level.dim() == 1 && noise_level.size(0) == x.size(0), "UNet: noise levels ",
             noise_level.summary(), " do not match the batch of ", x.size(0));
  const Tensor emb = embed(noise_level, class_labels, aug_level);
  std::vector<Tensor> skips;
  Tensor h = stem_->forward(x);
  skips.push_back(h);
  for (const PathLayer& s : down_) {
    h = s.block ? s.block->forward(h, emb, rng) : s.conv->forward(h);
    skips.push_back(h);
  }
  h = mid2_->forward(mid1_->forward(h, emb, rng), emb, rng);
  for (const PathLayer& s : up_) {
    if (s.uses_skip) {
      h = s.block->forward(cat({h, skips.back()}, 3), emb, rng);
      skips.pop_back();
    } else if (s.block) {
      h = s.block->forward(h, emb, rng);
    } else {
      h = s.conv->forward(upsample_nearest2x(h));
    }
  }
  return out_conv_->forward(out_norm_->forward_silu(h));
}

}  // namespace iris::diffusion
