// The training loop of one stage (SR3, base or an augmented SR stage), as `iris train` runs it.
//
// Exactness: a run's state is the model, the EMA, AdamW's moments and counters, the LR schedule's step, the
// data cursor and the step. Every random draw of a training sample (noise level, noise, augmentation, label
// dropout, dropout) comes from the Philox stream (train.seed, stream_id(step, global sample index)), and the
// global batch of step k is fixed by (seed, epoch), so a run resumed from a checkpoint continues exactly as
// an uninterrupted one would, bit for bit on the same machine and thread count.
//
// Robustness: checkpoints are written atomically (the last train.keep_checkpoints kept); `resume = "auto"`
// takes the newest checkpoint that verifies, warning about damaged ones; a stop request (SIGTERM/SIGINT in
// `iris train`) finishes the current step, writes a checkpoint and returns.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "diffusion/checkpoint.h"
#include "diffusion/config.h"
#include "diffusion/init_weights.h"
#include "diffusion/stage.h"
#include "diffusion/step_guard.h"

namespace iris::dist {
class Communicator;
class Reducer;
}  // namespace iris::dist

namespace iris::diffusion {

struct TrainerOptions {
  std::string run_dir = "runs/default";
  std::string resume;  // "": start fresh (refuses a run folder with checkpoints); "auto"; a path
  // A fresh start (not a resume) from imported weights (diffusion/init_weights.h): model and EMA from the
  // file, fresh optimizer, step 0. A run resumed from its own checkpoints does not import again.
  std::string init_from;
  InitOptions init;
  Device device = Device::cpu();
  int64_t stop_after = -1;        // stop with a checkpoint after this many steps in this process (>= 0)
  double time_limit_seconds = 0;  // > 0: stop (with a checkpoint) once this process has trained this long
  const std::atomic<bool>* stop_flag = nullptr;  // set asynchronously to stop at the next step boundary
  std::function<void(const std::string&)> log;   // progress lines; default: stdout
  bool write_samples = true;                     // sample grids every train.sample_every steps
  std::shared_ptr<dist::Communicator> comm;      // data parallelism (null: a single process)
};

struct TrainResult {
  int64_t step = 0;             // the step reached
  int64_t steps_run = 0;        // steps trained by this call (0: the run had already reached train.steps)
  bool stopped_early = false;   // by stop_after, the time limit or stop_flag
  std::string stop_reason;      // when stopped early: "signal", "time limit", "--stop-after", or "a stop on
                                // another rank" (data parallelism: all ranks stop at the step any one asks)
  std::string last_checkpoint;  // path of the checkpoint written last ("" if none)
  double last_loss = 0;         // mean loss of the last logged window
};

class Trainer {
 public:
  Trainer(const Config& config, TrainerOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainResult run();

  Stage& stage() { return *stage_; }
  int64_t step() const { return step_; }
  TrainingCheckpoint snapshot() const;  // the full current state (aliases of live tensors)
  std::string save_checkpoint_now();    // rank 0 writes; returns the path
  // EMA weights, in eval mode, on `lowres`/labels of the fixed validation batch: [N, H, W, C].
  Tensor sample_validation(int64_t steps_override = 0);
  // The sampling settings of the validation grids: the config's, with train.sample_steps (or the override).
  SampleSettings validation_settings(int64_t steps_override = 0) const;

 private:
  struct Impl;
  // Start-up, in the order the constructor runs them.
  void apply_compute_settings();  // train.precision, train.conv_search
  void build_model();             // the stage's network, optimizer, LR schedule, EMA
  void resume_or_start();         // --resume auto / PATH, or a fresh start
  void import_weights();          // --init-from, on a fresh start
  void join_ranks();              // data parallelism: same start step, weights broadcast, reducer
  void log(const std::string& line) const;
  void restore(const TrainingCheckpoint& c);
  // One training step and its parts.
  void train_step();
  Tensor forward_backward(const StageBatch& batch, const std::vector<uint64_t>& streams);
  Tensor grad_norm_and_clip();
  void update(const Tensor& grad_norm);
  StepGuard::Window report_skips();
  // The loop's bookkeeping.
  std::string stop_reason();
  void close_log_window();
  void write_sample_grid();
  // train.keep_best: writes checkpoints/best.h5 with this validation PSNR; returns what to add to the log.
  std::string keep_best(double val_psnr);
  void read_best_score(const std::string& checkpoint_dir);  // the score of an existing best.h5 (resume)

  Config config_;
  TrainerOptions opts_;
  std::shared_ptr<Stage> stage_;
  std::unique_ptr<Impl> impl_;
  int64_t step_ = 0;
};

}  // namespace iris::diffusion
