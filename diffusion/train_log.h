// What a training run tells its user: progress lines (rank 0 prints), the logging window they summarise,
// the run folder's metrics.jsonl (one JSON record per window and per validation), and the sample grids.
//
// With train.tensorboard, the same scalars, the grids and the resolved config also go to TensorBoard event
// files in RUN/tensorboard (rank 0). A TensorBoard write that fails mid-run is said once and TensorBoard is
// dropped for the rest of the run; training goes on.
//
// A window's loss is summed on the device (a detached f64 tensor per step), so that a training step makes
// no host read for the log; it is read once when the window closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/tensorboard.h"
#include "framework/core/tensor.h"

namespace iris::diffusion {

// One closed logging window, with the run's counters at its end: a progress line and a metrics record.
struct ProgressRecord {
  int64_t step = 0, total = 0;
  double loss = 0;       // mean over the window's steps (and ranks)
  double lr = 0;         // of the window's last step
  double grad_norm = 0;  // mean pre-clipping norm over the window's steps
  double img_per_s = 0;
  double elapsed_s = 0;  // training time of the run so far, earlier processes included
  double eta_s = 0;
  int64_t samples_seen = 0;
  size_t peak_bytes = 0;        // the most tensor memory held during the window
  int64_t window_skipped = 0;   // updates skipped in the window (shown when > 0)
  int64_t skipped_updates = 0;  // ... in the whole run (metrics record)
  std::string extra;            // appended to the line (e.g. the all-reduce's share of the step)
};

// The EMA model's scores on the validation batch, beside bicubic upsampling's.
struct ValidationScores {
  int64_t step = 0, images = 0;
  double psnr = 0, ssim = 0, bicubic_psnr = 0, bicubic_ssim = 0;
};

class TrainingLog {
 public:
  // `writer`: this process prints and writes (rank 0); others only keep their window. `print`: where lines
  // go (default: stdout).
  TrainingLog(const std::string& run_dir, bool writer, std::function<void(const std::string&)> print);

  void say(const std::string& line) const;  // a line to the user (rank 0)
  // Opens RUN/metrics.jsonl for appending (rank 0), once the run has started well (a run refused at start-up
  // leaves none behind); throws naming it when it cannot be written.
  void open_metrics();
  // Starts TensorBoard logging into `dir` (rank 0) for a run at `step` (0, or the step it resumed from),
  // marking a restart at step + 1 (see data/tensorboard.h) and recording `config_toml` as text. Throws naming
  // the file when it cannot write.
  void open_tensorboard(const std::string& dir, int64_t step, const std::string& config_toml);

  // The window: every step adds its loss (detached, on the device). The gradient norms and skipped updates
  // are kept on the device by the trainer's StepGuard (diffusion/step_guard.h).
  void add_step(const Tensor& loss);
  int64_t window_steps() const { return window_steps_; }
  double window_seconds() const;
  Tensor window_loss_sum() const { return loss_sum_; }  // f64 [1]-like, on the device; undefined if empty
  void reset_window();

  // Prints the window's line and appends its metrics record.
  void progress(const ProgressRecord& r);
  // Appends a validation record; returns the words for the grid's line.
  std::string validation(const ValidationScores& v);
  // Writes RUN/samples/step_<step>.png (rows of images under column titles, a title per row); returns its path.
  std::string grid(int64_t step, const std::vector<std::vector<data::Image>>& rows,
                   const std::vector<std::string>& columns, const std::vector<std::string>& row_titles);

 private:
  void record(const std::string& json_line);
  // Runs a TensorBoard write, if TensorBoard is on; on failure says so once and drops TensorBoard.
  void to_tensorboard(const std::function<void(data::EventWriter&)>& write);

  std::string run_dir_;
  bool writer_;
  std::function<void(const std::string&)> print_;
  std::ofstream metrics_;
  std::unique_ptr<data::EventLog> tensorboard_;
  Tensor loss_sum_;
  int64_t window_steps_ = 0;
  std::chrono::steady_clock::time_point window_start_;
};

}  // namespace iris::diffusion
