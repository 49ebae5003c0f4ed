#include "diffusion/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "data/image.h"
#include "data/metrics.h"
#include "data/resize.h"
#include "diffusion/run_lock.h"
#include "diffusion/step_guard.h"
#include "diffusion/train_data.h"
#include "diffusion/train_log.h"
#include "diffusion/train_settings.h"
#include "framework/core/profiling.h"
#include "framework/dist/communicator.h"
#include "framework/dist/reducer.h"
#include "framework/iris.h"
#include "framework/optim/device_step.h"

namespace iris::diffusion {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double mean_of(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

}  // namespace

struct Trainer::Impl {
  std::unique_ptr<RunLock> lock;  // first, so that it is released last
  TrainSettings s;                // the config's [train] section, read once
  int rank = 0, world = 1;
  int64_t nan_grad_step = -1;  // IRIS_TEST_NAN_GRAD_AT_STEP: the step whose gradient is made NaN (tests)
  bool autocast = false;       // train.precision = bf16 on a CUDA device
  std::unique_ptr<TrainingLog> log;
  std::unique_ptr<TrainingData> data;
  std::unique_ptr<optim::AdamW> opt;
  std::unique_ptr<optim::LRSchedule> schedule;
  std::unique_ptr<optim::EMA> ema;
  std::unique_ptr<dist::GradReducer> reducer;  // data parallelism (null for a single process)
  // The update decision and the (pre-clipping) gradient norm's statistics, on the device (step_guard.h).
  std::unique_ptr<StepGuard> guard;
  int64_t samples_seen = 0;
  double elapsed_before = 0;  // training seconds of earlier processes (from the checkpoint)
  Clock::time_point started;
  int64_t started_step = 0;
  double last_loss = 0;
  std::string last_checkpoint;
  // train.keep_best: the validation PSNR of checkpoints/best.h5 (-inf: none yet). Read from that file when
  // a run resumes, so that it does not replace a better state written after its resume checkpoint.
  double best_val_psnr = -std::numeric_limits<double>::infinity();
  std::string init_from;  // the weights file the run started from (--init-from; "" for a fresh init)
};

// ---- start-up -----------------------------------------------------------------------------------------------

Trainer::Trainer(const Config& config, TrainerOptions options)
    : config_(config), opts_(std::move(options)), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.s = TrainSettings::from_config(config_);  // every bad value refused before anything is built
  if (opts_.comm) {
    m.rank = opts_.comm->rank();
    m.world = opts_.comm->size();
  }
  m.log = std::make_unique<TrainingLog>(opts_.run_dir, m.rank == 0, opts_.log);
  if (const char* v = std::getenv("IRIS_TEST_NAN_GRAD_AT_STEP")) m.nan_grad_step = std::atoll(v);
  if (m.rank == 0) {  // the rank that writes the run folder holds it
    fs::create_directories(opts_.run_dir);
    m.lock = std::make_unique<RunLock>(opts_.run_dir, [this](const std::string& w) { log("warning: " + w); });
  }
  apply_compute_settings();
  build_model();
  m.data = std::make_unique<TrainingData>(TrainingDataOptions{.data = DataSettings::from_config(config_),
                                                              .batch_size = m.s.batch_size,
                                                              .rank = m.rank,
                                                              .world = m.world,
                                                              .seed = m.s.seed,
                                                              .super_resolution = stage_->super_resolution(),
                                                              .num_classes = stage_->num_classes(),
                                                              .validation_count = m.s.sample_count,
                                                              .pin_memory = opts_.device.is_cuda()});
  // The grids' sampling settings are checked now, not at the first grid hours into the run.
  if (stage_->iterative() && m.data->validation().hr.defined())
    (void)stage_->sampling_path(validation_settings());
  resume_or_start();
  if (opts_.comm && m.world > 1) join_ranks();
  const int64_t per_rank = m.s.batch_size / m.world;
  if (m.s.microbatch > 0 && m.s.microbatch < per_rank) {
    const int64_t passes = (per_rank + m.s.microbatch - 1) / m.s.microbatch;
    log("micro-batches: " + std::to_string(passes) + " forward/backward passes of up to " +
        std::to_string(m.s.microbatch) + " samples per step on each rank (gradients accumulate)");
  }
  if (m.rank == 0) {
    m.log->open_metrics();
    if (m.s.tensorboard)
      m.log->open_tensorboard((fs::path(opts_.run_dir) / "tensorboard").string(), step_, config_.to_toml());
    std::ofstream((fs::path(opts_.run_dir) / "config.toml").string()) << config_.to_toml();
  }
}

Trainer::~Trainer() = default;

// train.precision and train.conv_search, set for this process (TF32 and the cuDNN algorithm search are
// process-wide switches; the trainer owns the process's training).
void Trainer::apply_compute_settings() {
  const std::string& precision = impl_->s.precision;
  const bool cuda = opts_.device.is_cuda();
  if (!cuda && precision != "f32")
    log("warning: train.precision = " + precision + " applies to CUDA devices; on " + opts_.device.str() +
        " this run trains in f32");
  impl_->autocast = cuda && precision == "bf16";
  set_tf32_enabled(cuda && precision == "tf32");
  set_conv_search(impl_->s.conv_search, "train.conv_search");
}

// The stage's network, built on the CPU from the seed and then moved (the same initial weights on every
// device and rank), its optimizer, learning-rate schedule and EMA.
void Trainer::build_model() {
  Impl& m = *impl_;
  Generator init(m.s.seed, /*stream=*/0xC0FFEE);
  stage_ = std::make_shared<Stage>(config_, init);
  stage_->net().to(opts_.device);
  stage_->net().train();
  m.opt = std::make_unique<optim::AdamW>(stage_->net().named_parameters(), m.s.lr.base_lr,
                                         std::make_pair(m.s.adam_beta1, m.s.adam_beta2), m.s.adam_eps,
                                         m.s.weight_decay);
  m.schedule = std::make_unique<optim::LRSchedule>(m.s.lr);
  m.ema = std::make_unique<optim::EMA>(stage_->net(), m.s.ema_decay, true);
  m.guard = std::make_unique<StepGuard>(m.s.spike_zscore, m.s.spike_warmup, opts_.device);
}

// --resume auto (the newest checkpoint that verifies), --resume PATH, or a fresh start, which refuses a run
// folder that already holds checkpoints rather than overwrite them.
void Trainer::resume_or_start() {
  Impl& m = *impl_;
  const std::string ckpt_dir = (fs::path(opts_.run_dir) / "checkpoints").string();
  fs::create_directories(ckpt_dir);
  std::optional<std::string> from;
  if (opts_.resume == "auto") {
    from = find_resume_checkpoint(ckpt_dir, [&](const std::string& w) { log("warning: " + w); });
    if (!from) log("no checkpoint in " + ckpt_dir + ": starting from step 0");
  } else if (!opts_.resume.empty()) {
    IRIS_CHECK(
        opts_.init_from.empty(), "--resume ", opts_.resume, " and --init-from ", opts_.init_from,
        " both give the starting weights: pass one (--resume auto with --init-from imports the weights "
        "when the run folder holds no checkpoint yet, and resumes otherwise)");
    from = opts_.resume;
  } else {
    IRIS_CHECK(
        list_checkpoints(ckpt_dir).empty(), "run folder '", opts_.run_dir,
        "' already holds checkpoints: pass --resume auto to continue it, or choose another --run folder");
  }
  if (!from) {
    if (!opts_.init_from.empty()) import_weights();
    return;
  }
  // A requeued fine-tuning job (--init-from W --resume auto) continues from its own checkpoints, which hold
  // the imported weights as trained since: importing again would throw that training away.
  if (!opts_.init_from.empty())
    log("--init-from " + opts_.init_from + " is not applied: the run resumes from its own checkpoint " +
        *from);
  const TrainingCheckpoint c = load_checkpoint(*from, /*verify=*/true);
  const Config saved = Config::from_toml(c.config_toml, *from + " (saved config)");
  const std::string difference = model_difference(saved, config_);
  IRIS_CHECK(difference.empty(), "checkpoint '", *from,
             "' was trained with a different model configuration (", difference,
             "); it cannot be resumed with this config");
  try {
    restore(c);
  } catch (const Error& e) {
    IRIS_THROW("cannot resume from checkpoint '", *from, "': ", e.message());
  }
  if (c.data_samples >= 0 &&
      (c.data_samples != m.data->samples() || c.data_index_crc32c != m.data->index_crc32c()))
    log("warning: the training data in '" + config_.get_string("data.dir") + "' changed since " + *from +
        " (" + std::to_string(c.data_samples) + " samples then, " + std::to_string(m.data->samples()) +
        " now; index.json differs): from here on the run does not continue as an uninterrupted one would");
  m.last_checkpoint = *from;
  log("resumed from " + *from + " at step " + std::to_string(step_));
  read_best_score(ckpt_dir);
}

// A fresh start from imported weights: the model and the EMA take the file's; the optimizer, the EMA's
// counters, the schedule and the data position stay fresh (step 0). Every rank reads the file (the weights
// are broadcast from rank 0 afterwards anyway).
void Trainer::import_weights() {
  Impl& m = *impl_;
  const WeightsFile file = read_weights_file(opts_.init_from);
  const InitReport r = init_from_weights(file, stage_->net(), *m.ema, config_, opts_.init);
  m.init_from = opts_.init_from;
  std::string line = "initialised from " + opts_.init_from + " (" + r.kind + ", " + r.layout + " layout" +
                     (r.layout_inferred ? " inferred from the shapes" : "") +
                     "): " + std::to_string(r.imported) + " tensors imported into the model and the EMA" +
                     (file.ema.empty() ? "" : " (the EMA from the checkpoint's /ema)") +
                     "; fresh optimizer, step 0";
  if (!r.fresh.empty()) {
    line += "; " + std::to_string(r.fresh.size()) + " new tensor(s) initialised fresh (--init-allow-new):";
    for (size_t i = 0; i < r.fresh.size(); ++i) line += (i ? ", " : " ") + r.fresh[i];
  }
  if (!r.model_difference.empty())
    line += "\nnote: the weights' model differs from this config: " + r.model_difference;
  log(line);
}

// Data parallelism: every rank must have resumed from the same step (a run folder that only some ranks can
// see, on node-local disks, would otherwise leave them with fresh optimizer state and another data position,
// silently); then the weights are broadcast and the gradient reducer built.
void Trainer::join_ranks() {
  Impl& m = *impl_;
  Tensor mine = Tensor::full({1}, static_cast<double>(step_), DType::i64, opts_.comm->device());
  Tensor steps = Tensor::empty({m.world, 1}, DType::i64, opts_.comm->device());
  opts_.comm->all_gather(mine, steps);
  const auto all = steps.cpu().to_vector<int64_t>();
  for (int r = 1; r < m.world; ++r)
    IRIS_CHECK(all[r] == all[0], "rank ", r, " starts at step ", all[r], " but rank 0 at step ", all[0],
               " (resume ", opts_.resume.empty() ? "off" : "'" + opts_.resume + "'",
               "): every rank must see the same checkpoints; put the run folder '", opts_.run_dir,
               "' on a filesystem all nodes share");
  // Every rank built (or loaded) the same weights; the broadcast also checks that all ranks run one model.
  dist::broadcast_parameters(*opts_.comm, stage_->net());
  m.reducer = std::make_unique<dist::GradReducer>(opts_.comm, stage_->net());
  log("data parallel: " + opts_.comm->describe() + ", global batch " + std::to_string(m.s.batch_size) +
      " = " + std::to_string(m.world) + " x " + std::to_string(m.s.batch_size / m.world));
}

void Trainer::log(const std::string& line) const {
  impl_->log->say(line);
}

// ---- state ---------------------------------------------------------------------------------------------------

TrainingCheckpoint Trainer::snapshot() const {
  const Impl& m = *impl_;
  TrainingCheckpoint c;
  c.step = step_;
  c.config_toml = config_.to_toml();
  c.model = stage_->net().state_dict();
  for (const auto& [name, t] : m.ema->averaged()) c.ema[name] = t;
  c.optimizer = m.opt->state();
  c.ema_state = m.ema->state();
  c.ema_state.tensors.clear();  // the averages are saved under /ema
  c.schedule_step = m.schedule->state();
  c.cursor = m.data->cursor();
  c.seed = static_cast<int64_t>(m.s.seed);
  c.world_size = m.world;
  c.samples_seen = m.samples_seen;
  c.elapsed_seconds = m.elapsed_before + std::chrono::duration<double>(Clock::now() - m.started).count();
  const StepGuard::Stats guard = m.guard->stats();
  c.grad_norm_mean = guard.mean;
  c.grad_norm_var = guard.var;
  c.grad_norm_count = guard.count;
  c.skipped_updates = guard.skipped;
  c.data_samples = m.data->samples();
  c.data_index_crc32c = m.data->index_crc32c();
  c.init_from = m.init_from;
  return c;
}

void Trainer::restore(const TrainingCheckpoint& c) {
  Impl& m = *impl_;
  stage_->net().load_state_dict(c.model);
  optim::State es = c.ema_state;
  for (const auto& [name, t] : c.ema) es.tensors[name] = t;
  m.ema->load_state(es);
  m.opt->load_state(c.optimizer);
  m.schedule->load_state(c.schedule_step);
  m.data->restore(c.cursor);
  m.samples_seen = c.samples_seen;
  m.elapsed_before = c.elapsed_seconds;
  m.guard->set_stats({.mean = c.grad_norm_mean,
                      .var = c.grad_norm_var,
                      .count = c.grad_norm_count,
                      .skipped = c.skipped_updates});
  m.init_from = c.init_from;
  step_ = c.step;
}

std::string Trainer::save_checkpoint_now() {
  Impl& m = *impl_;
  const std::string dir = (fs::path(opts_.run_dir) / "checkpoints").string();
  const std::string path = (fs::path(dir) / checkpoint_name(step_)).string();
  if (m.rank == 0) {
    save_checkpoint(path, snapshot());
    prune_checkpoints(dir, {.keep = m.s.keep_checkpoints,
                            .keep_every = m.s.keep_every,
                            .just_written = path,
                            .warn = [this](const std::string& w) { log("warning: " + w); }});
  }
  if (opts_.comm && m.world > 1) opts_.comm->barrier();  // nobody runs ahead of a checkpoint being written
  m.last_checkpoint = path;
  return path;
}

void Trainer::read_best_score(const std::string& checkpoint_dir) {
  Impl& m = *impl_;
  const fs::path path = fs::path(checkpoint_dir) / kBestCheckpointName;
  if (m.rank != 0 || !m.s.keep_best || !fs::exists(path)) return;
  try {
    verify_checkpoint(path.string());
    const double psnr = read_checkpoint_info(path.string()).val_psnr;
    if (std::isfinite(psnr)) m.best_val_psnr = psnr;
  } catch (const Error& e) {
    log("warning: " + e.message() + "; the next validation score replaces it");
  }
}

std::string Trainer::keep_best(double val_psnr) {
  Impl& m = *impl_;
  // Rank 0 only (called from write_sample_grid). A failed write (full disk) is said and training goes on:
  // the regular checkpoints are what a run needs to continue; best.h5 stays as it was.
  const std::string path = (fs::path(opts_.run_dir) / "checkpoints" / kBestCheckpointName).string();
  TrainingCheckpoint c = snapshot();
  c.val_psnr = val_psnr;
  try {
    save_checkpoint(path, c);
  } catch (const Error& e) {
    return "\nwarning: could not keep the best state: " + e.message();
  }
  m.best_val_psnr = val_psnr;
  return "; best so far, kept as " + path;
}

// ---- one step --------------------------------------------------------------------------------------------------

void Trainer::train_step() {
  Impl& m = *impl_;
  std::vector<int64_t> indices;
  const StageBatch batch = m.data->next(opts_.device, indices);
  // One Philox stream per sample, from (seed, step, global index): independent of ranks, threads and
  // micro-batches.
  std::vector<uint64_t> streams;
  for (int64_t idx : indices) streams.push_back(Generator::stream_id(static_cast<uint64_t>(step_), idx));
  m.opt->set_lr(m.schedule->lr());
  // No host read from here to the end of the step (step_guard.h): the loss, the norm and the decision stay
  // on the device until the logging window closes.
  const Tensor loss = forward_backward(batch, streams);
  update(grad_norm_and_clip());
  m.opt->zero_grad();
  m.schedule->advance();
  ++step_;
  m.samples_seen += m.s.batch_size;
  m.log->add_step(loss);
}

// The loss of this rank's rows and its gradient (averaged over ranks when the call returns). Micro-batches:
// the rows in chunks of train.microbatch, each loss weighted by its share of the rows, so that the
// accumulated gradient is that of the mean loss over all rows (the loss is a per-sample mean), as one pass
// over the whole slice would give up to float rounding; only the last backward is all-reduced. Returns the
// mean loss, detached, on the device.
Tensor Trainer::forward_backward(const StageBatch& whole, const std::vector<uint64_t>& streams) {
  Impl& m = *impl_;
  const auto rows = static_cast<int64_t>(streams.size());
  const int64_t micro = m.s.microbatch > 0 ? std::min(m.s.microbatch, rows) : rows;
  Tensor step_loss;
  for (int64_t start = 0; start < rows; start += micro) {
    const int64_t n = std::min(micro, rows - start);
    const bool whole_slice = n == rows;
    StageBatch sb = whole;
    if (!whole_slice) {
      sb.hr = whole.hr.slice(0, start, start + n);
      if (whole.lowres.defined()) sb.lowres = whole.lowres.slice(0, start, start + n);
      if (whole.labels.defined()) sb.labels = whole.labels.slice(0, start, start + n);
    }
    Generator gen = Generator::per_sample(
        m.s.seed, std::vector<uint64_t>(streams.begin() + start, streams.begin() + start + n));
    if (m.reducer) m.reducer->set_sync(start + n >= rows);
    Tensor loss;
    {
      AutocastGuard autocast(m.autocast);
      loss = stage_->loss(sb, gen);
    }
    if (!whole_slice) loss = mul(loss, static_cast<double>(n) / static_cast<double>(rows));
    loss.backward();
    const Tensor l = loss.detach();
    step_loss = step_loss.defined() ? add(step_loss, l) : l;
  }
  if (m.reducer) m.reducer->finish();  // gradients averaged over ranks (all-reduced during backward)
  return step_loss;
}

// The global gradient norm before clipping (train.grad_clip > 0 clips the gradients to it), f64 [1] on the
// device.
Tensor Trainer::grad_norm_and_clip() {
  Impl& m = *impl_;
  if (step_ == m.nan_grad_step) {  // fault injection for tests: a NaN gradient as a bad batch could give
    Tensor g = stage_->net().parameters().front().grad();
    if (g.defined()) g.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  return m.s.grad_clip > 0 ? optim::clip_grad_norm_tensor(stage_->net().parameters(), m.s.grad_clip)
                           : optim::grad_norm_tensor(stage_->net().parameters());
}

// The optimizer and EMA update, skipped for a non-finite gradient norm and (train.spike_zscore > 0) for a norm
// far above its running mean: one bad batch or a loss spike in bf16 does not wreck the weights (llm.c's -sg).
// Every rank sees the same averaged norm, so every rank decides the same. The decision is a device flag; the
// warning naming a skipped step comes when its logging window closes (close_log_window).
void Trainer::update(const Tensor& grad_norm) {
  Impl& m = *impl_;
  const Tensor apply = m.guard->decide(step_, grad_norm);
  optim::step_if(*m.opt, apply);
  optim::update_if(*m.ema, apply);
}

// Says the skipped updates of the steps since the last call (their warnings wait for the window's end: reading
// the decisions back any earlier would make every step wait for the device). Returns what they add up to.
StepGuard::Window Trainer::report_skips() {
  StepGuard::Window w = impl_->guard->close_window();
  for (const std::string& warning : w.warnings) log("warning: " + warning);
  return w;
}

// ---- validation ------------------------------------------------------------------------------------------------

SampleSettings Trainer::validation_settings(int64_t steps_override) const {
  SampleSettings s = stage_->default_sample_settings();
  if (!stage_->iterative()) return s;  // one forward pass: no steps to choose
  if (steps_override > 0)
    s.steps = steps_override;
  else if (impl_->s.sample_steps > 0)
    s.steps = impl_->s.sample_steps;
  return s;
}

Tensor Trainer::sample_validation(int64_t steps_override) {
  Impl& m = *impl_;
  const StageBatch& val = m.data->validation();
  IRIS_CHECK(val.hr.defined(), "no validation batch (train.sample_count is 0 or the set is empty)");
  auto swap = m.ema->swap_in();
  stage_->net().eval();
  const SampleSettings s = validation_settings(steps_override);
  StageBatch c;
  if (val.lowres.defined()) c.lowres = val.lowres.to(opts_.device);
  if (val.labels.defined()) c.labels = val.labels.to(opts_.device);
  Generator gen(m.s.seed, 0x5A3B1E);  // the same noise at every evaluation, to compare steps
  Tensor out;
  try {
    out = stage_->sample(c, val.hr.size(0), gen, s).cpu();
  } catch (...) {
    stage_->net().train();
    swap.restore();
    throw;
  }
  stage_->net().train();
  swap.restore();
  return out;
}

// A grid of the validation batch (low-res, bicubic, the model's output and the truth for super-resolution;
// sample and real image for a base model) and, for super-resolution, the EMA model's PSNR/SSIM beside
// bicubic's: a trend to choose checkpoints by (train.keep_best keeps the best), not a benchmark (the batch is
// small; `iris sample` + `iris eval` on a test split for that).
void Trainer::write_sample_grid() {
  Impl& m = *impl_;
  const StageBatch& val = m.data->validation();
  if (m.rank != 0 || !val.hr.defined()) {
    if (opts_.comm && m.world > 1) opts_.comm->barrier();
    return;
  }
  const Tensor out = sample_validation();
  const auto samples = data::tensor_to_images(out);
  const auto truth = data::tensor_to_images(val.hr);
  std::vector<std::vector<data::Image>> rows;
  std::vector<std::string> cols;
  Tensor bicubic;
  if (stage_->super_resolution()) {
    const auto lows = data::tensor_to_images(val.lowres);
    bicubic = data::resize(val.lowres, stage_->resolution(), stage_->resolution(), data::Filter::bicubic);
    const auto bicubic_images = data::tensor_to_images(bicubic);
    cols = {"low-res", "bicubic", stage_->iterative() ? "SR3" : "regression", "truth"};
    for (size_t i = 0; i < samples.size(); ++i)
      rows.push_back({lows[i], bicubic_images[i], samples[i], truth[i]});
  } else {
    cols = {"sample", "real"};
    for (size_t i = 0; i < samples.size(); ++i) rows.push_back({samples[i], truth[i]});
  }
  std::string line = "wrote " + m.log->grid(step_, rows, cols, m.data->validation_titles());
  if (bicubic.defined()) {
    const ValidationScores v{.step = step_,
                             .images = out.size(0),
                             .psnr = mean_of(data::psnr(out, val.hr)),
                             .ssim = mean_of(data::ssim(out, val.hr)),
                             .bicubic_psnr = mean_of(data::psnr(bicubic, val.hr)),
                             .bicubic_ssim = mean_of(data::ssim(bicubic, val.hr))};
    line += m.log->validation(v);
    if (m.s.keep_best && v.psnr > m.best_val_psnr) line += keep_best(v.psnr);
  }
  log(line);
  if (opts_.comm && m.world > 1) opts_.comm->barrier();
}

// ---- the loop ----------------------------------------------------------------------------------------------------

// Why the run stops before this step ("" when it goes on). With several ranks, all stop at the same step: a
// signal or a clock may reach them at different steps, so the wish of any one rank is shared, by an
// all-reduce. On a GPU that all-reduce waits for every rank and the device, so it runs at the start and at the
// end of each logging window only: a signal or the time limit stops the run at the next window boundary (the
// README asks for a grace period longer than a logging window). --stop-after, the same on every rank
// (one command line starts them all), is a boundary too, so it stops at its step as with one process.
std::string Trainer::stop_reason() {
  Impl& m = *impl_;
  const bool out_of_time =
      opts_.time_limit_seconds > 0 &&
      std::chrono::duration<double>(Clock::now() - m.started).count() >= opts_.time_limit_seconds;
  const bool signalled = opts_.stop_flag && opts_.stop_flag->load();
  const bool stop_after = opts_.stop_after >= 0 && step_ - m.started_step >= opts_.stop_after;
  bool stop = signalled || out_of_time || stop_after;
  if (m.world > 1) {
    // On the CPU the agreement costs no more than the step's own synchronous work, so ranks agree at every
    // step there (a signal stops the run after the current step, as with one process).
    const bool boundary = !opts_.device.is_cuda() || step_ == m.started_step || step_ % m.s.log_every == 0 ||
                          (opts_.stop_after >= 0 && step_ - m.started_step == opts_.stop_after);
    if (!boundary) return "";
    Tensor flag = Tensor::full({1}, stop ? 1.0 : 0.0, DType::f32, opts_.comm->device());
    opts_.comm->all_reduce(flag, dist::Reduce::sum);
    stop = flag.item() > 0;
  }
  if (!stop) return "";
  if (out_of_time) log("time limit reached at step " + std::to_string(step_));
  return signalled     ? "signal"
         : out_of_time ? "time limit"
         : stop_after  ? "--stop-after"
                       : "a stop on another rank";
}

// Closes the logging window: the progress line and metrics record of its steps.
void Trainer::close_log_window() {
  Impl& m = *impl_;
  TrainingLog& log_ = *m.log;
  synchronize(opts_.device);
  const double secs = log_.window_seconds();
  const StepGuard::Window decided = report_skips();
  const double loss_sum = log_.window_loss_sum().item();
  const double window_loss = m.reducer ? dist::average_over_ranks(*opts_.comm, loss_sum) : loss_sum;
  const auto steps = static_cast<double>(log_.window_steps());
  ProgressRecord r;
  r.step = step_;
  r.total = m.s.steps;
  r.loss = window_loss / steps;
  // A non-finite loss gives a non-finite gradient norm, whose updates were skipped (and said so); the run
  // stops here, at the end of the window, rather than train on.
  IRIS_CHECK(std::isfinite(r.loss), "training diverged by step ", step_, ": the mean loss of the last ",
             log_.window_steps(), " steps is ", r.loss,
             " (try a lower train.lr, train.grad_clip, or f32 precision)");
  r.lr = m.schedule->lr_at(step_ - 1);
  r.grad_norm = decided.norm_sum / steps;  // mean pre-clipping norm (non-finite ones count as 0)
  r.img_per_s = steps * static_cast<double>(m.s.batch_size) / std::max(secs, 1e-9);
  r.eta_s = secs / steps * static_cast<double>(m.s.steps - step_);
  r.elapsed_s = m.elapsed_before + std::chrono::duration<double>(Clock::now() - m.started).count();
  r.samples_seen = m.samples_seen;
  // The most memory tensors held during this window (GPU: the allocator's peak; CPU: live tensor storage),
  // the figure to watch when choosing train.microbatch or model.checkpoint_res_blocks.
  r.peak_bytes = opts_.device.is_cuda() ? memory_usage(opts_.device).peak : host_storage_bytes().peak;
  r.window_skipped = decided.skipped;
  r.skipped_updates = m.guard->stats().skipped;
  if (m.reducer) {
    // How much of the gradient all-reduce the backward pass hid, over this logging window.
    const dist::ReducerStats st = m.reducer->stats();
    char extra[96];
    std::snprintf(extra, sizeof(extra), "  all-reduce %.0f ms/step, %.0f%% hidden",
                  1000.0 * st.comm_s / std::max<int64_t>(st.steps, 1), 100.0 * st.hidden_fraction());
    r.extra = extra;
    m.reducer->reset_stats();
  }
  log_.progress(r);
  m.last_loss = r.loss;
  reset_peak_memory(opts_.device);
  reset_host_storage_peak();
  log_.reset_window();
}

TrainResult Trainer::run() {
  Impl& m = *impl_;
  const TrainSettings& s = m.s;
  m.started = Clock::now();
  m.started_step = step_;
  m.log->reset_window();
  TrainResult r;
  if (step_ >= s.steps && !m.last_checkpoint.empty()) {
    // A finished run resumed again (a requeued job): nothing to train, and its checkpoint is already there.
    log("already at step " + std::to_string(step_) + " of " + std::to_string(s.steps) +
        ": nothing to train (raise train.steps to continue)");
    r.step = step_;
    r.last_checkpoint = m.last_checkpoint;
    return r;
  }
  log("training " + config_.get_string("model.task") + " model (" +
      std::to_string(stage_->net().num_parameters()) + " parameters) on " + opts_.device.str() +
      " from step " + std::to_string(step_) + " to " + std::to_string(s.steps));
  while (step_ < s.steps) {
    r.stop_reason = stop_reason();
    if (!r.stop_reason.empty()) {
      r.stopped_early = true;
      break;
    }
    train_step();
    if (step_ % s.log_every == 0 || step_ == s.steps) close_log_window();
    if (s.checkpoint_every > 0 && step_ % s.checkpoint_every == 0 && step_ < s.steps)
      log("checkpoint " + save_checkpoint_now());
    if (opts_.write_samples && s.sample_every > 0 && step_ % s.sample_every == 0) write_sample_grid();
  }
  // A stop inside a logging window: the skipped updates of its steps are said now.
  report_skips();
  // Final state (or the state at a stop): always checkpointed, so nothing is lost.
  r.last_checkpoint = save_checkpoint_now();
  log("checkpoint " + r.last_checkpoint);
  if (!r.stopped_early && opts_.write_samples && (s.sample_every <= 0 || step_ % s.sample_every != 0))
    write_sample_grid();
  r.step = step_;
  r.steps_run = step_ - m.started_step;
  r.last_loss = m.last_loss;
  return r;
}

}  // namespace iris::diffusion
