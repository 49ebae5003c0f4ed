// The command-line side of sampling runs (`iris sample`, `iris cascade`, `iris sweep`): their shared options
// and the progress display; the runs themselves are the library's (diffusion/sampling_run.h).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "diffusion/sampling_inputs.h"
#include "diffusion/sampling_run.h"
#include "diffusion/sampling_stage.h"
#include "tools/progress.h"

namespace iris::dist {
class Communicator;
}

namespace iris::tools {

using diffusion::ConditionOptions;
using diffusion::InputOptions;
using diffusion::Inputs;
using diffusion::LoadedStage;

// Where a sampling run goes and how it is run (`iris sample`, `iris cascade`).
struct SamplingRunOptions {
  std::string out, device = "auto";
  uint64_t seed = 0;
  int64_t batch = 16;
  int threads = 0;
  bool resume = false, overwrite = false;
};
// Registers --seed, --batch, --device, --threads, --out, --resume and --overwrite on `cmd`.
void add_sampling_run_options(CLI::App& cmd, SamplingRunOptions& o);
// The library's run for these options (seed, batch, --out, --resume, --overwrite) on `device` and the ranks
// of `comm`; the command adds its output folders and identity.
diffusion::SamplingRun recorded_run(const SamplingRunOptions& o, Device device,
                                    std::shared_ptr<dist::Communicator> comm);

// The stages of a run of one or more stages (iris cascade, iris sweep) and what its first stage is
// conditioned on, as its command line gives them.
struct StageInputOptions {
  std::vector<std::string> stages;  // checkpoints, in cascade order
  bool raw = false;                 // their raw weights instead of the EMA
  ConditionOptions cond;
  CLI::Option *per_class_opt = nullptr, *count_opt = nullptr;
  // The conditions, checked: a stage given, --per-class positive when given; whether --count was given.
  ConditionOptions conditions() const;
};
// Registers --stage (required), --raw, --labels, --per-class, --count, --shard, --start, --input and
// --input-dir on `cmd`.
void add_stage_input_options(CLI::App& cmd, StageInputOptions& o);

// The progress of a sampling run on rank 0 (tools/progress.h, so IRIS_PROGRESS applies): the samples drawn,
// with the round, stage and sampler step as its status. attach() installs the run's observers: when the work
// is known, rank 0 prints the record's warnings and calls `header` (the run's banner), then the display
// starts.
class SamplingDisplay {
 public:
  explicit SamplingDisplay(std::string label) : label_(std::move(label)) {}
  void attach(diffusion::SamplingRun& run, std::function<void(const diffusion::SamplingStart&)> header = {});
  void finish();  // the final line

 private:
  std::string label_;
  std::shared_ptr<Progress> progress_;
};

// Ends the banner of a sampling run (", split over N ranks (...)" under a launcher) and says, when
// resuming, how many samples were found finished in `out`.
void print_run_status(const dist::Communicator* comm, const diffusion::SamplingStart& start, bool resume,
                      const std::string& out);

}  // namespace iris::tools
