#include "tools/sampling_options.h"

#include <cstdio>

#include "framework/core/error.h"
#include "framework/dist/communicator.h"

namespace iris::tools {

void add_sampling_run_options(CLI::App& cmd, SamplingRunOptions& o) {
  cmd.add_option("--seed", o.seed, "seed of all noise (default 0)");
  cmd.add_option("--batch", o.batch, "samples per batch (default 16; results do not depend on it)");
  cmd.add_option("--device", o.device, "auto, cpu, cuda or cuda:N (default auto)");
  cmd.add_option("--threads", o.threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--out", o.out, "output folder")->required();
  cmd.add_flag("--resume", o.resume,
               "continue the run in --out (after preemption): keep its finished samples, sample the rest");
  cmd.add_flag("--overwrite", o.overwrite, "replace the run in --out instead of refusing");
}

diffusion::SamplingRun recorded_run(const SamplingRunOptions& o, Device device,
                                    std::shared_ptr<dist::Communicator> comm) {
  diffusion::SamplingRun run;
  run.seed = o.seed;
  run.batch = o.batch;
  run.device = device;
  run.comm = std::move(comm);
  run.out = o.out;
  run.resume = o.resume;
  run.overwrite = o.overwrite;
  return run;
}

ConditionOptions StageInputOptions::conditions() const {
  IRIS_CHECK(!stages.empty(), "give at least one --stage CHECKPOINT");
  IRIS_CHECK(!per_class_opt->count() || cond.per_class > 0, "--per-class must be positive, got ",
             cond.per_class);
  ConditionOptions c = cond;
  c.count_given = count_opt->count() > 0;
  return c;
}

void add_stage_input_options(CLI::App& cmd, StageInputOptions& o) {
  cmd.add_option("--stage", o.stages, "a stage's checkpoint, in cascade order (repeat: --stage A --stage B)")
      ->required();
  cmd.add_flag("--raw", o.raw, "use the raw weights instead of the EMA");
  cmd.add_option("--labels", o.cond.labels, "class labels for a base first stage: indices or names")
      ->delimiter(',');
  o.per_class_opt = cmd.add_option("--per-class", o.cond.per_class, "K samples of every class (default 4)");
  o.count_opt = cmd.add_option(
      "--count", o.cond.input.count,
      "samples of an unconditional base stage, or shard samples to take (-1: to the end; default 16)");
  cmd.add_option("--shard", o.cond.input.shard,
                 "shard folder to take the first stage's inputs (and truth, labels) from");
  cmd.add_option("--start", o.cond.input.start, "first shard sample (default 0)");
  cmd.add_option("--input", o.cond.input.files, "low-res image files for an sr3 first stage");
  cmd.add_option("--input-dir", o.cond.input.dir, "folder of low-res images for an sr3 first stage");
}

void SamplingDisplay::attach(diffusion::SamplingRun& run,
                             std::function<void(const diffusion::SamplingStart&)> header) {
  run.on_start = [this, header](const diffusion::SamplingStart& s) {
    if (!s.root) return;  // the other ranks show nothing
    for (const auto& w : s.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (header) header(s);
    progress_ = std::make_shared<Progress>(label_, s.pending);
  };
  run.on_step = [this](const diffusion::SamplingTick& t) {
    if (!progress_) return;
    std::string text = "round " + std::to_string(t.round + 1) + "/" + std::to_string(t.rounds);
    if (t.stages > 1) text += ", stage " + std::to_string(t.stage + 1) + "/" + std::to_string(t.stages);
    text += ", step " + std::to_string(t.step) + "/" + std::to_string(t.steps);
    progress_->status(text);
  };
  run.on_round = [this](int64_t done) {
    if (progress_) progress_->set(done);
  };
}

void SamplingDisplay::finish() {
  if (progress_) progress_->finish();
}

void print_run_status(const dist::Communicator* comm, const diffusion::SamplingStart& start, bool resume,
                      const std::string& out) {
  if (comm) std::printf(", split over %d ranks (%s)", comm->size(), comm->describe().c_str());
  std::printf("\n");
  if (resume)
    std::printf("resuming: %lld of %lld samples already in %s\n", static_cast<long long>(start.done),
                static_cast<long long>(start.total), out.c_str());
  std::fflush(stdout);
}

}  // namespace iris::tools
