// `iris info CONFIG [--set key=value ...]`: what a configuration builds, without training anything: the
// resolved task, noise schedule, sampler and training settings, one line each, then the U-Net block by
// block (output shape per sample, parameters, GFLOPs per sample) with the totals.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "diffusion/stage.h"
#include "framework/core/generator.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace iris::tools {

namespace {

struct InfoOptions {
  std::string config;
  std::vector<std::string> sets;
};

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string task_line(const Config& c, const diffusion::Stage& stage) {
  const int64_t C = stage.channels(), R = stage.resolution();
  const std::string channels = std::to_string(C) + (C == 1 ? " channel" : " channels");
  if (stage.super_resolution()) {
    const int64_t r = stage.lowres_resolution();
    std::string s = std::string(diffusion::task_name(stage.task())) + ": " + std::to_string(r) + "x" +
                    std::to_string(r) + " -> " + std::to_string(R) + "x" + std::to_string(R) +
                    " super-resolution";
    if (r > 0 && R % r == 0) s += " (" + std::to_string(R / r) + "x)";
    if (stage.crop_trained())
      s += ", trained on " + std::to_string(R) + "x" + std::to_string(R) + " crops of " +
           std::to_string(c.get_int("data.image_size")) + "-pixel-high images";
    s += ", " + channels;
    std::vector<std::string> aug;
    if (c.get_bool("augment.noise"))
      aug.push_back("noise augmentation (level ~ U[0, " + fmt("%g", c.get_float("augment.noise_level_max")) +
                    "], " + fmt("%g", c.get_float("augment.sample_noise_level")) + " when sampling)");
    if (c.get_float("augment.blur_prob") > 0) {
      const auto sig = c.get_float_list("augment.blur_sigma");
      aug.push_back("blur augmentation (p = " + fmt("%g", c.get_float("augment.blur_prob")) + ", sigma " +
                    fmt("%g", sig.at(0)) + " to " + fmt("%g", sig.at(1)) + ")");
    }
    if (aug.empty()) return s + ", no conditioning augmentation";
    for (const auto& a : aug) s += ", " + a;
    return s;
  }
  const std::string res = std::to_string(R) + "x" + std::to_string(R) + ", " + channels;
  if (stage.num_classes() > 0)
    return "base: class-conditional generator, " + res + ", " + std::to_string(stage.num_classes()) +
           " classes (labels dropped with p = " + fmt("%g", c.get_float("diffusion.cond_drop_prob")) +
           " in training, guidance scale " + fmt("%g", c.get_float("diffusion.guidance_scale")) + ")";
  return "base: unconditional generator, " + res;
}

std::string schedule_line(const Config& c) {
  const std::string kind = c.get_string("diffusion.schedule");
  std::string s = kind + ", T = " + std::to_string(c.get_int("diffusion.timesteps"));
  if (kind == "linear")
    s += ", beta " + fmt("%g", c.get_float("diffusion.beta_start")) + " -> " +
         fmt("%g", c.get_float("diffusion.beta_end"));
  s += "; predicts " + c.get_string("diffusion.parameterization") + ", " + c.get_string("diffusion.loss") +
       " loss";
  if (c.get_float("diffusion.min_snr_gamma") > 0)
    s += ", min-SNR weighting (gamma " + fmt("%g", c.get_float("diffusion.min_snr_gamma")) + ")";
  return s;
}

std::string sampler_line(const Config& c) {
  const std::string sampler = c.get_string("diffusion.sampler"),
                    kind = c.get_string("diffusion.sample_schedule");
  std::string s = sampler;
  if (sampler == "ddim") s += " (eta " + fmt("%g", c.get_float("diffusion.ddim_eta")) + ")";
  s += ", " + std::to_string(c.get_int("diffusion.sample_steps")) + " steps";
  if (kind == "linear")
    s += " on a linear schedule (beta " + fmt("%g", c.get_float("diffusion.sample_beta_start")) + " -> " +
         fmt("%g", c.get_float("diffusion.sample_beta_end")) + ")";
  else if (kind == "respaced")
    s += " on the training schedule respaced";
  else
    s += " on a " + kind + " schedule";
  s += c.get_bool("diffusion.clip_x0") ? ", x0 clipped to [-1, 1]" : ", x0 not clipped";
  return s;
}

std::string train_line(const Config& c) {
  std::string s = std::to_string(c.get_int("train.steps")) + " steps, batch " +
                  std::to_string(c.get_int("train.batch_size")) + ", AdamW lr " +
                  fmt("%g", c.get_float("train.lr")) + " (" +
                  std::to_string(c.get_int("train.warmup_steps")) + " warm-up steps, then " +
                  c.get_string("train.lr_schedule") + ")";
  s += ", EMA " + fmt("%g", c.get_float("train.ema_decay")) + ", " + c.get_string("train.precision") +
       ", device " + c.get_string("train.device");
  return s;
}

std::string shape_str(const Shape& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

void run_info(const InfoOptions& o) {
  Config cfg = Config::load(o.config);
  for (const auto& s : o.sets) cfg.set(s);
  Generator init(0);
  const diffusion::Stage stage(cfg, init);
  const diffusion::UNet& net = stage.net();

  std::printf("config    %s\n", o.config.c_str());
  for (const auto& s : o.sets) std::printf("          --set %s\n", s.c_str());
  std::printf("task      %s\n", task_line(cfg, stage).c_str());
  std::printf("schedule  %s\n", schedule_line(cfg).c_str());
  std::printf("sampler   %s\n", sampler_line(cfg).c_str());
  std::printf("train     %s\n\n", train_line(cfg).c_str());

  const auto& blocks = net.summary();
  size_t name_w = 5;
  for (const auto& b : blocks) name_w = std::max(name_w, b.name.size());
  const int nw = static_cast<int>(name_w);
  std::printf("%-*s  %-12s %13s %10s\n", nw, "block", "output", "parameters", "GFLOPs");
  for (const auto& b : blocks)
    std::printf("%-*s  %-12s %13s %10.4f\n", nw, b.name.c_str(), shape_str(b.out_shape).c_str(),
                with_commas(b.params).c_str(), b.flops / 1e9);
  const int64_t params = net.num_parameters();
  const double bytes = 4.0 * static_cast<double>(params);
  std::printf("\n%-18s %s (%s in f32; %s with gradients and AdamW moments)\n", "parameters",
              with_commas(params).c_str(), human_bytes(bytes).c_str(), human_bytes(4 * bytes).c_str());
  std::printf("%-18s %.4g GFLOP per sample\n", "forward", net.flops_per_sample() / 1e9);
  std::printf("%-18s %.4g GFLOP per sample (forward + backward)\n", "training step",
              net.train_flops_per_sample() / 1e9);
  // Sampling: one U-Net evaluation per step, two with classifier-free guidance (a doubled batch).
  const bool guided = stage.task() == diffusion::Task::base && stage.num_classes() > 0 &&
                      cfg.get_float("diffusion.guidance_scale") != 1.0;
  const int64_t steps = stage.iterative() ? cfg.get_int("diffusion.sample_steps") : 1;
  std::printf("%-18s %.4g GFLOP per image (%lld steps x %d U-Net evaluation%s)\n", "sampling",
              net.flops_per_sample() * static_cast<double>(steps) * (guided ? 2 : 1) / 1e9,
              static_cast<long long>(steps), guided ? 2 : 1, guided ? "s, guidance" : "");
}

}  // namespace

void register_info(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  auto* cmd =
      app.add_subcommand("info", "Summarise the model of a config: blocks, parameters, FLOPs, settings");
  cmd->add_option("config", opts->config, "config file (TOML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", opts->sets, "override a key: --set train.lr=2e-4 (repeatable)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->callback([opts] { run_info(*opts); });
}

}  // namespace iris::tools
