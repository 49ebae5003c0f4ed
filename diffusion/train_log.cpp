#include "diffusion/train_log.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/grid.h"
#include "framework/core/format.h"
#include "framework/iris.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

TrainingLog::TrainingLog(const std::string& run_dir, bool writer,
                         std::function<void(const std::string&)> print)
    : run_dir_(run_dir),
      writer_(writer),
      print_(std::move(print)),
      window_start_(std::chrono::steady_clock::now()) {}

void TrainingLog::open_metrics() {
  if (!writer_) return;
  const std::string path = (fs::path(run_dir_) / "metrics.jsonl").string();
  metrics_.open(path, std::ios::app);
  IRIS_CHECK(metrics_.good(), "cannot write '", path, "'");
}

void TrainingLog::open_tensorboard(const std::string& dir, int64_t step, const std::string& config_toml) {
  if (!writer_) return;
  tensorboard_ = std::make_unique<data::EventLog>(
      dir, [this](const std::string& line) { say(line); }, "training");
  data::EventWriter& tb = tensorboard_->open();
  // The next step this process logs is step + 1: events of earlier processes from there on are dropped
  // (those a stopped run logged after the checkpoint this one resumed from); step itself stays.
  tb.session_start(step + 1);
  // Markdown: a code block keeps the TOML's layout.
  tb.text("config", "```\n" + config_toml + "```", step);
  tb.flush();
}

void TrainingLog::to_tensorboard(const std::function<void(data::EventWriter&)>& write) {
  if (tensorboard_) tensorboard_->write("", write);
}

void TrainingLog::say(const std::string& line) const {
  if (!writer_) return;
  if (print_) {
    print_(line);
  } else {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
}

void TrainingLog::record(const std::string& json_line) {
  if (!writer_ || !metrics_.is_open()) return;
  metrics_ << json_line << "\n";
  metrics_.flush();
}

void TrainingLog::add_step(const Tensor& loss) {
  const Tensor l64 = loss.to(DType::f64);
  loss_sum_ = loss_sum_.defined() ? add(loss_sum_, l64) : l64;
  ++window_steps_;
}

double TrainingLog::window_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start_).count();
}

void TrainingLog::reset_window() {
  loss_sum_ = Tensor();
  window_steps_ = 0;
  window_start_ = std::chrono::steady_clock::now();
}

void TrainingLog::progress(const ProgressRecord& r) {
  char line[256];
  std::snprintf(line, sizeof(line),
                "step %lld/%lld  loss %.4f  lr %.2e  grad %.3f  %.1f img/s  elapsed %s  ETA %s",
                static_cast<long long>(r.step), static_cast<long long>(r.total), r.loss, r.lr, r.grad_norm,
                r.img_per_s, human_duration(r.elapsed_s).c_str(), human_duration(r.eta_s).c_str());
  std::string full = line;
  full += "  mem " + human_bytes(static_cast<double>(r.peak_bytes));
  if (r.window_skipped > 0) full += "  skipped " + std::to_string(r.window_skipped);
  full += r.extra;
  say(full);
  const nlohmann::json j = {{"step", r.step},
                            {"loss", r.loss},
                            {"lr", r.lr},
                            {"grad_norm", r.grad_norm},
                            {"img_per_s", r.img_per_s},
                            {"elapsed_s", r.elapsed_s},
                            {"samples_seen", r.samples_seen},
                            {"peak_bytes", r.peak_bytes},
                            {"skipped_updates", r.skipped_updates}};
  record(j.dump());
  to_tensorboard([&](data::EventWriter& tb) {
    tb.scalar("train/loss", r.loss, r.step);
    tb.scalar("train/lr", r.lr, r.step);
    tb.scalar("train/grad_norm", r.grad_norm, r.step);
    tb.scalar("train/img_per_s", r.img_per_s, r.step);
    tb.scalar("train/peak_memory_mib", static_cast<double>(r.peak_bytes) / (1024.0 * 1024.0), r.step);
    tb.scalar("train/skipped_updates", static_cast<double>(r.skipped_updates), r.step);
  });
}

std::string TrainingLog::validation(const ValidationScores& v) {
  const nlohmann::json j = {{"step", v.step},
                            {"val_psnr", v.psnr},
                            {"val_ssim", v.ssim},
                            {"val_bicubic_psnr", v.bicubic_psnr},
                            {"val_bicubic_ssim", v.bicubic_ssim},
                            {"val_images", v.images}};
  record(j.dump());
  to_tensorboard([&](data::EventWriter& tb) {
    tb.scalar("val/psnr", v.psnr, v.step);
    tb.scalar("val/ssim", v.ssim, v.step);
    tb.scalar("val/bicubic_psnr", v.bicubic_psnr, v.step);
    tb.scalar("val/bicubic_ssim", v.bicubic_ssim, v.step);
  });
  char words[160];
  std::snprintf(words, sizeof(words),
                "  (EMA, %lld validation images: PSNR %.2f dB, SSIM %.3f; bicubic %.2f dB, %.3f)",
                static_cast<long long>(v.images), v.psnr, v.ssim, v.bicubic_psnr, v.bicubic_ssim);
  return words;
}

std::string TrainingLog::grid(int64_t step, const std::vector<std::vector<data::Image>>& rows,
                              const std::vector<std::string>& columns,
                              const std::vector<std::string>& row_titles) {
  char name[64];
  std::snprintf(name, sizeof(name), "step_%09lld.png", static_cast<long long>(step));
  const fs::path dir = fs::path(run_dir_) / "samples";
  fs::create_directories(dir);
  const data::Image grid = data::make_grid(rows, columns, row_titles);
  data::write_png((dir / name).string(), grid);
  to_tensorboard([&](data::EventWriter& tb) { tb.image("samples", grid, step); });
  return (dir / name).string();
}

}  // namespace iris::diffusion
