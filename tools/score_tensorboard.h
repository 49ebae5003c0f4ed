// TensorBoard from `iris eval`: its mean scores as scalars <tag>/psnr, <tag>/ssim, ... (tag "eval" by
// default) at the training step of the checkpoint that made the images, so that they appear in the training
// run's TensorBoard beside its curves (train/loss, val/psnr). (`iris train`'s events: diffusion/train_log.h;
// `iris sweep`'s: tools/sweep_tensorboard.h.)
//
// Where they go:
//   --tensorboard DIR   DIR, at --step N (default: the checkpoint's step when known, else 0). A folder that
//                       cannot be written is an error, before any image is scored.
//   (default)           RUN/tensorboard when the predictions are `iris sample`'s output (its OUT/run.json
//                       names the checkpoint) from a checkpoint RUN/checkpoints/<file> of a training run that
//                       logs to TensorBoard (RUN/tensorboard exists); nothing otherwise. Writing there is a
//                       courtesy: a folder that cannot be written is said in a warning and the scores are
//                       printed as usual.
//   --no-tensorboard    nothing.
// The eval writes its own event file (never a restart marker, which would drop the run's training events).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace iris::tools {

// What `iris sample` recorded about the images it wrote (OUT/run.json beside OUT/samples.h5 and the PNGs).
struct SampleOrigin {
  std::string checkpoint;  // absolute
  int64_t step = 0;        // the checkpoint's training step
  std::string weights;     // "ema" or "raw"
  std::string sampler;
  int64_t sampler_steps = 0;
  std::string run_dir;  // RUN when the checkpoint is RUN/checkpoints/<file>; "" otherwise
};
// The origin of the images `images_arg` names: OUT/samples.h5 (its default dataset, or :images) or OUT itself
// (the PNGs), where OUT/run.json is `iris sample`'s record; nullopt for anything else (another dataset, other
// commands' output, an unreadable record).
std::optional<SampleOrigin> sample_origin(const std::string& images_arg);

struct ScoreBoardOptions {
  std::string dir;   // --tensorboard
  bool off = false;  // --no-tensorboard
  int64_t step = 0;  // --step, when step_given
  bool step_given = false;
  std::string tag = "eval";  // --tensorboard-tag: the tags' prefix
};
// Adds --tensorboard, --no-tensorboard, --step and --tensorboard-tag to `cmd`.
void add_score_board_options(CLI::App& cmd, ScoreBoardOptions& o);

// Where a scoring command's TensorBoard events go, resolved (and the folder checked) before the scoring.
class ScoreBoard {
 public:
  // `images_arg`: the scored images (their origin gives the default folder and step). Throws naming the
  // folder when an asked-for one cannot be written; a default one that cannot is said on stderr and dropped.
  ScoreBoard(const ScoreBoardOptions& o, const std::string& images_arg);
  bool active() const { return !dir_.empty(); }
  // Writes `scores` (name, value; non-finite ones skipped: not measured, or an infinite PSNR) as <tag>/<name>
  // and `about` as the text <tag>/about, at the step; returns the line that says so. An asked-for folder that
  // fails now is an error; a default one a warning (the line says so).
  std::string write(const std::vector<std::pair<std::string, double>>& scores, const std::string& about);

 private:
  std::string dir_, tag_, origin_;
  int64_t step_ = 0;
  bool asked_ = false;
};

}  // namespace iris::tools
