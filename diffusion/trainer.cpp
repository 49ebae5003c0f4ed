#include "diffusion/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/grid.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/metrics.h"
#include "data/resize.h"
#include "diffusion/run_lock.h"
#include "framework/core/format.h"
#include "framework/core/philox.h"
#include "framework/core/profiling.h"
#include "framework/dist/communicator.h"
#include "framework/dist/reducer.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"

namespace iris::diffusion {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

optim::LRScheduleOptions schedule_options(const Config& c) {
  optim::LRScheduleOptions o;
  o.base_lr = c.get_float("train.lr");
  o.warmup_steps = c.get_int("train.warmup_steps");
  const std::string kind = c.get_string("train.lr_schedule");
  IRIS_CHECK(kind == "constant" || kind == "cosine", "train.lr_schedule must be constant or cosine, got '",
             kind, "'");
  o.decay =
      kind == "cosine" ? optim::LRScheduleOptions::Decay::cosine : optim::LRScheduleOptions::Decay::constant;
  o.total_steps = c.get_int("train.steps");
  o.final_lr = c.get_float("train.final_lr");
  return o;
}

// The keys whose change makes a checkpoint incompatible (the model's shape and task): the [model] section,
// except model.checkpoint_res_blocks, which changes how much memory a step takes, not what it computes (a run
// that ran out of memory may turn it on when it resumes), and model.zero_init, which only concerns step 0.
bool same_model(const Config& a, const Config& b) {
  const auto section = [](const Config& c) {
    std::string out;
    std::istringstream in(c.to_toml());
    std::string line, sec;
    while (std::getline(in, line)) {
      if (!line.empty() && line[0] == '[')
        sec = line;
      else if (sec == "[model]" && line.rfind("checkpoint_res_blocks", 0) != 0 && line.rfind("zero_init", 0) != 0)
        out += line + "\n";
    }
    return out;
  };
  return section(a) == section(b);
}

// The gradient-norm spike guard's statistics (train.spike_zscore): mean and variance of the norms of the
// updates not skipped, exact for the first 100 norms, then exponential moving averages (decay 0.99) so that
// they follow the norm as training goes on.
struct SpikeGuard {
  double mean = 0, var = 0;
  int64_t count = 0;    // norms observed
  int64_t skipped = 0;  // updates skipped (spikes and non-finite norms)

  // True when `norm` lies more than `z` standard deviations above the mean, once `warmup` norms were seen.
  bool is_spike(double norm, double z, int64_t warmup) const {
    return z > 0 && std::isfinite(norm) && count >= warmup && norm > mean + z * std::sqrt(var);
  }
  void observe(double norm) {
    constexpr double kDecay = 0.99;
    const double a = std::max(1.0 / static_cast<double>(count + 1), 1.0 - kDecay);
    const double d = norm - mean;
    mean += a * d;
    var = (1.0 - a) * (var + a * d * d);
    ++count;
  }
};

}  // namespace

struct Trainer::Impl {
  std::unique_ptr<RunLock> lock;  // first, so that it is released last
  int64_t nan_grad_step = -1;     // IRIS_TEST_NAN_GRAD_AT_STEP: the step whose gradient is made NaN (tests)
  std::unique_ptr<optim::AdamW> opt;
  std::unique_ptr<optim::LRSchedule> schedule;
  std::unique_ptr<optim::EMA> ema;
  std::unique_ptr<data::Loader> loader;
  std::unique_ptr<dist::GradReducer> reducer;  // data parallelism (null for a single process)
  StageBatch val;                              // the fixed validation batch (CPU)
  std::vector<std::string> val_titles;
  std::ofstream metrics;
  uint64_t seed = 0;
  int rank = 0, world = 1;
  int64_t microbatch = 0;  // train.microbatch (0: a rank's whole slice in one pass)
  bool autocast = false;   // train.precision = bf16 on a CUDA device
  int64_t samples_seen = 0;
  double elapsed_before = 0;  // training seconds of earlier processes (from the checkpoint)
  Clock::time_point started;
  int64_t started_step = 0;
  // logging window
  // The loss summed over the window's steps, on the device (f64, detached): read once per window, so that a
  // step has no host read of it (and, in data parallelism, no collective for it).
  Tensor loss_sum;
  double grad_norm_sum = 0;
  int64_t window_skipped = 0;  // updates skipped in this window (non-finite or spiking gradient norm)
  SpikeGuard spike;            // statistics of the (pre-clipping) gradient norm
  int64_t data_samples = 0, data_index_crc32c = 0;  // the training data (see TrainingCheckpoint)
  int64_t window_steps = 0;
  Clock::time_point window_start;
  double last_loss = 0;
  std::string last_checkpoint;
};

namespace {

// The [train] values a run cannot work with: refused before anything is built, so that a typo such as
// train.steps=-5 is not silently a run that trains nothing.
void check_train_values(const Config& c) {
  for (const char* key : {"train.steps", "train.keep_checkpoints"})
    IRIS_CHECK(c.get_int(key) > 0, key, " must be positive, got ", c.get_int(key));
  IRIS_CHECK(c.get_int("train.checkpoint_every") >= 0,
             "train.checkpoint_every must be >= 0 (0: only the final checkpoint), got ",
             c.get_int("train.checkpoint_every"));
  IRIS_CHECK(c.get_int("train.keep_every") >= 0, "train.keep_every must be >= 0 (0: no milestones), got ",
             c.get_int("train.keep_every"));
  IRIS_CHECK(c.get_float("train.grad_clip") >= 0, "train.grad_clip must be >= 0 (0: off), got ",
             c.get_float("train.grad_clip"));
}

}  // namespace

Trainer::Trainer(const Config& config, TrainerOptions options)
    : config_(config), opts_(std::move(options)), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  check_train_values(config_);
  if (const char* v = std::getenv("IRIS_TEST_NAN_GRAD_AT_STEP")) m.nan_grad_step = std::atoll(v);
  m.seed = static_cast<uint64_t>(config_.get_int("train.seed"));
  if (opts_.comm) {
    m.rank = opts_.comm->rank();
    m.world = opts_.comm->size();
  }
  if (m.rank == 0) {  // the rank that writes the run folder holds it
    fs::create_directories(opts_.run_dir);
    m.lock = std::make_unique<RunLock>(opts_.run_dir, [this](const std::string& w) { log("warning: " + w); });
  }
  apply_compute_settings();
  // Model, on the CPU from the seed, then moved: the same initial weights on every device.
  Generator init(m.seed, /*stream=*/0xC0FFEE);
  stage_ = std::make_shared<Stage>(config_, init);
  stage_->net().to(opts_.device);
  stage_->net().train();
  m.opt = std::make_unique<optim::AdamW>(
      stage_->net().named_parameters(), config_.get_float("train.lr"),
      std::make_pair(config_.get_float("train.adam_beta1"), config_.get_float("train.adam_beta2")),
      config_.get_float("train.adam_eps"), config_.get_float("train.weight_decay"));
  m.schedule = std::make_unique<optim::LRSchedule>(schedule_options(config_));
  m.ema = std::make_unique<optim::EMA>(stage_->net(), config_.get_float("train.ema_decay"), true);

  // Data: the loader hands each rank its slice of the global batch; hr at data.image_size (a low-res copy
  // of the shards' images when the stage works below their size, as a cascade's base does), low-res at
  // data.lowres_size for sr3.
  const int64_t batch = config_.get_int("train.batch_size");
  IRIS_CHECK(batch > 0, "train.batch_size must be positive");
  IRIS_CHECK(batch % m.world == 0, "train.batch_size ", batch, " does not divide evenly over ", m.world,
             " ranks");
  m.microbatch = config_.get_int("train.microbatch");
  IRIS_CHECK(m.microbatch >= 0, "train.microbatch must be >= 0 (0: no micro-batches), got ", m.microbatch);
  const std::string dir = config_.get_string("data.dir");
  data::ShardSet set = data::ShardSet::open(dir, {.verify_on_first_read = true});
  m.data_samples = set.size();
  {
    // What the data is, for checkpoints: a resume on other data is worth a warning.
    std::ifstream f((fs::path(dir) / "index.json").string(), std::ios::binary);
    const std::string index((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    m.data_index_crc32c = h5::crc32c(index.data(), index.size());
  }
  const data::ShardSpec& spec = set.spec();
  const int image_size = static_cast<int>(config_.get_int("data.image_size"));
  const int lowres_size = static_cast<int>(config_.get_int("data.lowres_size"));
  IRIS_CHECK(spec.channels == config_.get_int("data.channels"), "data.channels is ",
             config_.get_int("data.channels"), " but the shards in '", dir, "' have ", spec.channels,
             " channels");
  auto has_lowres = [&](int h) {
    return std::find(spec.lowres_sizes.begin(), spec.lowres_sizes.end(), h) != spec.lowres_sizes.end();
  };
  IRIS_CHECK(spec.height == image_size || has_lowres(image_size), "data.image_size ", image_size,
             " matches neither the shards' images (", spec.height, ") nor a stored low-res size in '", dir,
             "'; re-shard with --lowres ", image_size);
  const bool hr_from_lowres = spec.height != image_size;
  std::vector<int> lowres_sizes;
  if (hr_from_lowres) lowres_sizes.push_back(image_size);
  if (stage_->super_resolution()) {
    IRIS_CHECK(has_lowres(lowres_size), "data.lowres_size ", lowres_size, " is not stored in the shards of '",
               dir, "' (they have ", spec.lowres_sizes.size(), " low-res sizes); re-shard with --lowres ",
               lowres_size);
    if (!hr_from_lowres || lowres_size != image_size) lowres_sizes.push_back(lowres_size);
  }
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.rank = m.rank;
  lo.world_size = m.world;
  lo.seed = m.seed;
  lo.lowres_sizes = lowres_sizes;
  lo.prefetch = static_cast<int>(config_.get_int("data.prefetch"));
  lo.pin_memory = opts_.device.is_cuda();
  const bool hflip = config_.get_bool("data.hflip");
  lo.augment = [hr_from_lowres, hflip](data::Sample& s, const data::AugmentContext& ctx) {
    if (hr_from_lowres) s.image = s.lowres.front();
    if (hflip && (philox::block(ctx.seed, Generator::stream_id(ctx.epoch, ctx.index), 0x5eed).v[0] & 1u)) {
      s.image = data::hflip(s.image);
      for (auto& l : s.lowres) l = data::hflip(l);
    }
  };
  m.loader = std::make_unique<data::Loader>(set, lo);

  // The fixed validation batch: the first train.sample_count samples of the validation set.
  const std::string val_dir =
      config_.get_string("data.val_dir").empty() ? dir : config_.get_string("data.val_dir");
  data::ShardSet vset = val_dir == dir ? set : data::ShardSet::open(val_dir, {.verify_on_first_read = true});
  if (stage_->num_classes() > 0) {  // a bad label would index past the class embedding, or hit its null class
    try {
      for (const data::ShardSet* s : {&set, &vset})
        if (s->spec().has_labels) s->check_labels(stage_->num_classes());
    } catch (const Error& e) {
      IRIS_THROW(e.message(), " (model.num_classes is ", stage_->num_classes(), ")");
    }
  }
  const int64_t nval = std::min<int64_t>(config_.get_int("train.sample_count"), vset.size());
  if (nval > 0) {
    m.val.hr = data::u8_to_float(hr_from_lowres ? vset.lowres(image_size, 0, nval) : vset.images(0, nval));
    if (stage_->super_resolution()) m.val.lowres = data::u8_to_float(vset.lowres(lowres_size, 0, nval));
    if (vset.spec().has_labels) {
      m.val.labels = vset.labels(0, nval).to(DType::i64);
      const auto labels = m.val.labels.to_vector<int64_t>();
      for (int64_t l : labels)
        m.val_titles.push_back(static_cast<size_t>(l) < vset.spec().class_names.size()
                                   ? vset.spec().class_names[l]
                                   : std::to_string(l));
    }
    // The grids' sampling settings are checked now, not at the first grid hours into the run.
    if (stage_->iterative()) (void)stage_->sampling_path(validation_settings());
  }

  // Resume.
  fs::create_directories(fs::path(opts_.run_dir) / "checkpoints");
  const std::string ckpt_dir = (fs::path(opts_.run_dir) / "checkpoints").string();
  std::optional<std::string> resume_from;
  if (opts_.resume == "auto") {
    resume_from = find_resume_checkpoint(ckpt_dir, [&](const std::string& w) { log("warning: " + w); });
    if (!resume_from) log("no checkpoint in " + ckpt_dir + ": starting from step 0");
  } else if (!opts_.resume.empty()) {
    resume_from = opts_.resume;
  } else {
    IRIS_CHECK(
        list_checkpoints(ckpt_dir).empty(), "run folder '", opts_.run_dir,
        "' already holds checkpoints: pass --resume auto to continue it, or choose another --run folder");
  }
  if (resume_from) {
    const TrainingCheckpoint c = load_checkpoint(*resume_from, /*verify=*/true);
    const Config saved = Config::from_toml(c.config_toml, *resume_from + " (saved config)");
    IRIS_CHECK(same_model(saved, config_), "checkpoint '", *resume_from,
               "' was trained with a different model configuration ([model] section differs); it cannot be "
               "resumed with this config");
    try {
      restore(c);
    } catch (const Error& e) {
      IRIS_THROW("cannot resume from checkpoint '", *resume_from, "': ", e.message());
    }
    if (c.data_samples >= 0 &&
        (c.data_samples != m.data_samples || c.data_index_crc32c != m.data_index_crc32c))
      log("warning: the training data in '" + dir + "' changed since " + *resume_from + " (" +
          std::to_string(c.data_samples) + " samples then, " + std::to_string(m.data_samples) +
          " now; index.json differs): from here on the run does not continue as an uninterrupted one would");
    m.last_checkpoint = *resume_from;
    log("resumed from " + *resume_from + " at step " + std::to_string(step_));
  }
  if (opts_.comm && m.world > 1) {
    // Every rank must have resumed from the same step: a run folder that only some ranks can see (node-local
    // disk) would otherwise leave them with fresh optimizer state and another data position, silently.
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
    log("data parallel: " + opts_.comm->describe() + ", global batch " + std::to_string(batch) + " = " +
        std::to_string(m.world) + " x " + std::to_string(batch / m.world));
  }
  const int64_t per_rank = batch / m.world;
  if (m.microbatch > 0 && m.microbatch < per_rank) {
    const int64_t passes = (per_rank + m.microbatch - 1) / m.microbatch;
    log("micro-batches: " + std::to_string(passes) + " forward/backward passes of up to " +
        std::to_string(m.microbatch) + " samples per step on each rank (gradients accumulate)");
  }
  if (m.rank == 0) {
    m.metrics.open((fs::path(opts_.run_dir) / "metrics.jsonl").string(), std::ios::app);
    IRIS_CHECK(m.metrics.good(), "cannot write '", (fs::path(opts_.run_dir) / "metrics.jsonl").string(), "'");
    std::ofstream((fs::path(opts_.run_dir) / "config.toml").string()) << config_.to_toml();
  }
}

Trainer::~Trainer() = default;

// train.precision and train.conv_search: checked, then set for this process (TF32 and the cuDNN algorithm
// search are process-wide switches; the trainer owns the process's training).
void Trainer::apply_compute_settings() {
  const std::string precision = config_.get_string("train.precision");
  IRIS_CHECK(precision == "f32" || precision == "tf32" || precision == "bf16",
             "train.precision must be f32, tf32 or bf16, got '", precision, "'");
  const bool cuda = opts_.device.is_cuda();
  if (!cuda && precision != "f32")
    log("warning: train.precision = " + precision + " applies to CUDA devices; on " + opts_.device.str() +
        " this run trains in f32");
  impl_->autocast = cuda && precision == "bf16";
  set_tf32_enabled(cuda && precision == "tf32");
  set_conv_search(config_.get_string("train.conv_search"), "train.conv_search");
}

void Trainer::log(const std::string& line) const {
  if (impl_->rank != 0) return;
  if (opts_.log)
    opts_.log(line);
  else {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
}

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
  c.cursor = m.loader->cursor();
  c.seed = static_cast<int64_t>(m.seed);
  c.world_size = m.world;
  c.samples_seen = m.samples_seen;
  c.elapsed_seconds = m.elapsed_before + std::chrono::duration<double>(Clock::now() - m.started).count();
  c.grad_norm_mean = m.spike.mean;
  c.grad_norm_var = m.spike.var;
  c.grad_norm_count = m.spike.count;
  c.skipped_updates = m.spike.skipped;
  c.data_samples = m.data_samples;
  c.data_index_crc32c = m.data_index_crc32c;
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
  m.loader->restore(c.cursor);
  m.samples_seen = c.samples_seen;
  m.elapsed_before = c.elapsed_seconds;
  m.spike.mean = c.grad_norm_mean;
  m.spike.var = c.grad_norm_var;
  m.spike.count = c.grad_norm_count;
  m.spike.skipped = c.skipped_updates;
  step_ = c.step;
}

std::string Trainer::save_checkpoint_now() {
  Impl& m = *impl_;
  const std::string dir = (fs::path(opts_.run_dir) / "checkpoints").string();
  const std::string path = (fs::path(dir) / checkpoint_name(step_)).string();
  if (m.rank == 0) {
    save_checkpoint(path, snapshot());
    prune_checkpoints(dir, {.keep = config_.get_int("train.keep_checkpoints"),
                            .keep_every = config_.get_int("train.keep_every"),
                            .just_written = path,
                            .warn = [this](const std::string& w) { log("warning: " + w); }});
  }
  if (opts_.comm && m.world > 1) opts_.comm->barrier();  // nobody runs ahead of a checkpoint being written
  m.last_checkpoint = path;
  return path;
}

void Trainer::train_step() {
  Impl& m = *impl_;
  data::Batch b = m.loader->next();
  StageBatch whole;
  whole.hr = b.hr.to(opts_.device);
  if (stage_->super_resolution()) {
    const int lowres_size = static_cast<int>(config_.get_int("data.lowres_size"));
    for (size_t i = 0; i < b.lowres_sizes.size(); ++i)
      if (b.lowres_sizes[i] == lowres_size) whole.lowres = b.lowres[i].to(opts_.device);
  }
  if (b.labels.defined() && stage_->num_classes() > 0)
    whole.labels = b.labels.to(DType::i64).to(opts_.device);
  // One Philox stream per sample, from (seed, step, global index): independent of ranks, threads and
  // micro-batches.
  std::vector<uint64_t> streams;
  for (int64_t idx : b.indices) streams.push_back(Generator::stream_id(static_cast<uint64_t>(step_), idx));

  m.opt->set_lr(m.schedule->lr());
  // Micro-batches: the rank's rows in chunks of train.microbatch, each loss weighted by its share of the
  // rows, so that the accumulated gradient is that of the mean loss over all rows (the loss is a per-sample
  // mean), as one pass over the whole slice would give up to float rounding. Only the last backward is
  // all-reduced.
  const int64_t rows = b.rows();
  const int64_t micro = m.microbatch > 0 ? std::min(m.microbatch, rows) : rows;
  Tensor step_loss;  // the step's mean loss over this rank's rows, detached, on the device
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
        m.seed, std::vector<uint64_t>(streams.begin() + start, streams.begin() + start + n));
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
  if (step_ == m.nan_grad_step) {      // fault injection for tests: a NaN gradient as a bad batch could give
    Tensor g = stage_->net().parameters().front().grad();
    if (g.defined()) g.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  const double clip = config_.get_float("train.grad_clip");
  const double gnorm = clip > 0 ? optim::clip_grad_norm(stage_->net().parameters(), clip)
                                : optim::grad_norm(stage_->net().parameters());
  // The update is skipped for a non-finite gradient norm, and (train.spike_zscore > 0) for a norm far above
  // its running mean: one bad batch or a loss spike in bf16 does not wreck the weights (llm.c's -sg). Every
  // rank sees the same averaged norm, so every rank decides the same.
  const bool spike =
      m.spike.is_spike(gnorm, config_.get_float("train.spike_zscore"), config_.get_int("train.spike_warmup"));
  if (std::isfinite(gnorm) && !spike) {
    m.opt->step();
    m.ema->update();
    m.spike.observe(gnorm);
  } else {
    ++m.spike.skipped;
    ++m.window_skipped;
    char why[160];
    if (spike)
      std::snprintf(why, sizeof(why),
                    "gradient norm %.4g is %.1f standard deviations above its running mean %.4g", gnorm,
                    (gnorm - m.spike.mean) / std::max(std::sqrt(m.spike.var), 1e-30), m.spike.mean);
    else
      std::snprintf(why, sizeof(why), "non-finite gradient norm");
    log("warning: step " + std::to_string(step_) + ": " + why + ", update skipped");
  }
  m.opt->zero_grad();
  m.schedule->advance();
  ++step_;
  m.samples_seen += config_.get_int("train.batch_size");
  const Tensor l64 = step_loss.to(DType::f64);
  m.loss_sum = m.loss_sum.defined() ? add(m.loss_sum, l64) : l64;
  m.grad_norm_sum += std::isfinite(gnorm) ? gnorm : 0.0;
  ++m.window_steps;
}

SampleSettings Trainer::validation_settings(int64_t steps_override) const {
  SampleSettings s = stage_->default_sample_settings();
  if (!stage_->iterative()) return s;  // one forward pass: no steps to choose
  const int64_t ts = config_.get_int("train.sample_steps");
  if (steps_override > 0)
    s.steps = steps_override;
  else if (ts > 0)
    s.steps = ts;
  return s;
}

Tensor Trainer::sample_validation(int64_t steps_override) {
  Impl& m = *impl_;
  IRIS_CHECK(m.val.hr.defined(), "no validation batch (train.sample_count is 0 or the set is empty)");
  auto swap = m.ema->swap_in();
  stage_->net().eval();
  const SampleSettings s = validation_settings(steps_override);
  StageBatch c;
  if (m.val.lowres.defined()) c.lowres = m.val.lowres.to(opts_.device);
  if (m.val.labels.defined()) c.labels = m.val.labels.to(opts_.device);
  Generator gen(m.seed, 0x5A3B1E);  // the same noise at every evaluation, to compare steps
  Tensor out;
  try {
    out = stage_->sample(c, m.val.hr.size(0), gen, s).cpu();
  } catch (...) {
    stage_->net().train();
    swap.restore();
    throw;
  }
  stage_->net().train();
  swap.restore();
  return out;
}

void Trainer::write_sample_grid() {
  Impl& m = *impl_;
  if (m.rank != 0 || !m.val.hr.defined()) {
    if (opts_.comm && m.world > 1) opts_.comm->barrier();
    return;
  }
  const Tensor out = sample_validation();
  const auto samples = data::tensor_to_images(out);
  const auto truth = data::tensor_to_images(m.val.hr);
  std::vector<std::vector<data::Image>> rows;
  std::vector<std::string> cols;
  Tensor bicubic;
  if (stage_->super_resolution()) {
    const auto lows = data::tensor_to_images(m.val.lowres);
    bicubic = data::resize(m.val.lowres, stage_->resolution(), stage_->resolution(), data::Filter::bicubic);
    const auto bicubic_images = data::tensor_to_images(bicubic);
    cols = {"low-res", "bicubic", stage_->iterative() ? "SR3" : "regression", "truth"};
    for (size_t i = 0; i < samples.size(); ++i)
      rows.push_back({lows[i], bicubic_images[i], samples[i], truth[i]});
  } else {
    cols = {"sample", "real"};
    for (size_t i = 0; i < samples.size(); ++i) rows.push_back({samples[i], truth[i]});
  }
  char name[64];
  std::snprintf(name, sizeof(name), "step_%09lld.png", static_cast<long long>(step_));
  const fs::path dir = fs::path(opts_.run_dir) / "samples";
  fs::create_directories(dir);
  data::write_grid((dir / name).string(), rows, cols, m.val_titles);
  std::string line = "wrote " + (dir / name).string();
  if (bicubic.defined()) {
    // Scores of the EMA model on the fixed validation batch, with bicubic upsampling as the floor, to choose
    // between checkpoints (metrics.jsonl keeps them with the step). The batch is small: a trend, not a
    // benchmark (`iris sample` + `iris eval` on a test split for that).
    const auto avg = [](const std::vector<double>& v) {
      double sum = 0;
      for (double x : v) sum += x;
      return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
    };
    const double psnr = avg(data::psnr(out, m.val.hr)), ssim = avg(data::ssim(out, m.val.hr));
    const double bic_psnr = avg(data::psnr(bicubic, m.val.hr)), bic_ssim = avg(data::ssim(bicubic, m.val.hr));
    char scores[160];
    std::snprintf(scores, sizeof(scores),
                  "  (EMA, %lld validation images: PSNR %.2f dB, SSIM %.3f; bicubic %.2f dB, %.3f)",
                  static_cast<long long>(out.size(0)), psnr, ssim, bic_psnr, bic_ssim);
    line += scores;
    const nlohmann::json j = {{"step", step_},
                              {"val_psnr", psnr},
                              {"val_ssim", ssim},
                              {"val_bicubic_psnr", bic_psnr},
                              {"val_bicubic_ssim", bic_ssim},
                              {"val_images", out.size(0)}};
    m.metrics << j.dump() << "\n";
    m.metrics.flush();
  }
  log(line);
  if (opts_.comm && m.world > 1) opts_.comm->barrier();
}

TrainResult Trainer::run() {
  Impl& m = *impl_;
  const int64_t total = config_.get_int("train.steps");
  const int64_t log_every = std::max<int64_t>(1, config_.get_int("train.log_every"));
  const int64_t ckpt_every = config_.get_int("train.checkpoint_every");
  const int64_t sample_every = config_.get_int("train.sample_every");
  m.started = Clock::now();
  m.started_step = step_;
  m.window_start = Clock::now();
  TrainResult r;
  if (step_ >= total && !m.last_checkpoint.empty()) {
    // A finished run resumed again (a requeued job): nothing to train, and its checkpoint is already there.
    log("already at step " + std::to_string(step_) + " of " + std::to_string(total) +
        ": nothing to train (raise train.steps to continue)");
    r.step = step_;
    r.last_checkpoint = m.last_checkpoint;
    return r;
  }
  log("training " + config_.get_string("model.task") + " model (" +
      std::to_string(stage_->net().num_parameters()) + " parameters) on " + opts_.device.str() +
      " from step " + std::to_string(step_) + " to " + std::to_string(total));
  const int64_t batch = config_.get_int("train.batch_size");
  while (step_ < total) {
    const bool out_of_time =
        opts_.time_limit_seconds > 0 &&
        std::chrono::duration<double>(Clock::now() - m.started).count() >= opts_.time_limit_seconds;
    bool stop = (opts_.stop_flag && opts_.stop_flag->load()) || out_of_time ||
                (opts_.stop_after >= 0 && step_ - m.started_step >= opts_.stop_after);
    if (m.world > 1) {
      // All ranks must stop at the same step (a signal or a clock may reach them at different steps).
      Tensor flag = Tensor::full({1}, stop ? 1.0 : 0.0, DType::f32, opts_.comm->device());
      opts_.comm->all_reduce(flag, dist::Reduce::sum);
      stop = flag.item() > 0;
    }
    if (stop) {
      if (out_of_time) log("time limit reached at step " + std::to_string(step_));
      r.stopped_early = true;
      break;
    }
    train_step();
    if (step_ % log_every == 0 || step_ == total) {
      synchronize(opts_.device);
      const double secs = std::chrono::duration<double>(Clock::now() - m.window_start).count();
      const double window_loss =
          m.reducer ? dist::average_over_ranks(*opts_.comm, m.loss_sum.item()) : m.loss_sum.item();
      const double loss = window_loss / static_cast<double>(m.window_steps);
      // A non-finite loss gives a non-finite gradient norm, whose updates were skipped (and said so); the run
      // stops here, at the end of the window, rather than train on.
      IRIS_CHECK(std::isfinite(loss), "training diverged by step ", step_, ": the mean loss of the last ",
                 m.window_steps, " steps is ", loss,
                 " (try a lower train.lr, train.grad_clip, or f32 precision)");
      const double gn = m.grad_norm_sum / static_cast<double>(m.window_steps);
      const double img_s = static_cast<double>(m.window_steps * batch) / std::max(secs, 1e-9);
      const double per_step = secs / static_cast<double>(m.window_steps);
      const double eta = per_step * static_cast<double>(total - step_);
      const double elapsed =
          m.elapsed_before + std::chrono::duration<double>(Clock::now() - m.started).count();
      char line[256];
      std::snprintf(
          line, sizeof(line), "step %lld/%lld  loss %.4f  lr %.2e  grad %.3f  %.1f img/s  elapsed %s  ETA %s",
          static_cast<long long>(step_), static_cast<long long>(total), loss, m.schedule->lr_at(step_ - 1),
          gn, img_s, human_duration(elapsed).c_str(), human_duration(eta).c_str());
      std::string full = line;
      // The most memory tensors held during this window (GPU: the allocator's peak; CPU: live tensor
      // storage), the figure to watch when choosing train.microbatch or model.checkpoint_res_blocks.
      const size_t peak =
          opts_.device.is_cuda() ? memory_usage(opts_.device).peak : host_storage_bytes().peak;
      full += "  mem " + human_bytes(static_cast<double>(peak));
      if (m.window_skipped > 0) full += "  skipped " + std::to_string(m.window_skipped);
      if (m.reducer) {
        // How much of the gradient all-reduce the backward pass hid, over this logging window.
        const dist::ReducerStats st = m.reducer->stats();
        char extra[96];
        std::snprintf(extra, sizeof(extra), "  all-reduce %.0f ms/step, %.0f%% hidden",
                      1000.0 * st.comm_s / std::max<int64_t>(st.steps, 1), 100.0 * st.hidden_fraction());
        full += extra;
        m.reducer->reset_stats();
      }
      log(full);
      if (m.rank == 0) {
        nlohmann::json j = {{"step", step_},
                            {"loss", loss},
                            {"lr", m.schedule->lr_at(step_ - 1)},
                            {"grad_norm", gn},
                            {"img_per_s", img_s},
                            {"elapsed_s", elapsed},
                            {"samples_seen", m.samples_seen},
                            {"peak_bytes", peak},
                            {"skipped_updates", m.spike.skipped}};
        m.metrics << j.dump() << "\n";
        m.metrics.flush();
      }
      m.last_loss = loss;
      reset_peak_memory(opts_.device);
      reset_host_storage_peak();
      m.loss_sum = Tensor();
      m.grad_norm_sum = 0;
      m.window_skipped = 0;
      m.window_steps = 0;
      m.window_start = Clock::now();
    }
    if (ckpt_every > 0 && step_ % ckpt_every == 0 && step_ < total)
      log("checkpoint " + save_checkpoint_now());
    if (opts_.write_samples && sample_every > 0 && step_ % sample_every == 0) write_sample_grid();
  }
  // Final state (or the state at a stop): always checkpointed, so nothing is lost.
  r.last_checkpoint = save_checkpoint_now();
  log("checkpoint " + r.last_checkpoint);
  if (!r.stopped_early && opts_.write_samples && (sample_every <= 0 || step_ % sample_every != 0))
    write_sample_grid();
  r.step = step_;
  r.steps_run = step_ - m.started_step;
  r.last_loss = m.last_loss;
  return r;
}

}  // namespace iris::diffusion
