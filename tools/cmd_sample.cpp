// `iris sample`: draws samples from one trained stage (a checkpoint's EMA weights by default).
//  - sr3 stages super-resolve low-res inputs: a range of a shard set (with the truth when it is stored at the
//    model's size), or image files resized to the model's low-res size;
//  - base stages draw from class labels (indices or class names) or unconditionally.
// Writes out/<name>.png per sample, out/grid.png, and out/samples.h5 (uint8 `images` [N, H, W, C], plus
// `lowres`, `truth` uint8 and `labels` int32 when there are some) for `iris eval`.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "data/grid.h"
#include "data/resize.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/communicator.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/sample_run.h"
#include "tools/sampling.h"

namespace iris::tools {

namespace {

namespace fs = std::filesystem;
using diffusion::Task;

constexpr size_t kGridMaxRows = 32;  // sr3 grids: one row per sample
constexpr size_t kGridMaxCols = 8;   // base grids: samples per class row
constexpr size_t kGridMaxClasses = 16;

struct SampleOptions : SamplingRunOptions {
  std::string ckpt, sampler, schedule;
  bool raw = false;
  InputOptions input;
  std::vector<std::string> labels, sets;
  int64_t per_class = 0, steps = 0;
  double eta = 0, guidance = 1, aug_level = 0;
  CLI::Option *eta_opt = nullptr, *guidance_opt = nullptr, *aug_opt = nullptr, *per_class_opt = nullptr,
              *count_opt = nullptr;
};

// The stage's sampling settings: its config's, overridden by the options given.
diffusion::SampleSettings settings_for(const LoadedStage& L, const SampleOptions& o) {
  const diffusion::Stage& st = *L.stage;
  diffusion::SampleSettings s = st.default_sample_settings();
  if (!st.iterative()) {
    IRIS_CHECK(o.sampler.empty() && o.schedule.empty() && o.steps == 0 && !o.eta_opt->count(), "'", L.path,
               "' is a regression stage: it samples in one forward pass, so --sampler, --schedule, --steps and "
               "--eta do not apply to it");
  }
  if (!o.sampler.empty()) s.sampler = o.sampler;
  IRIS_CHECK(!st.iterative() || s.sampler == "ddpm" || s.sampler == "ddim" || s.sampler == "dpmpp2m",
             "--sampler must be ddpm, ddim or "
             "dpmpp2m, got '",
             s.sampler, "'");
  if (!o.schedule.empty()) {
    IRIS_CHECK(o.schedule == "linear" || o.schedule == "cosine" || o.schedule == "respaced",
               "--schedule must be linear, cosine or respaced, got '", o.schedule, "'");
    s.schedule = o.schedule;
  }
  if (o.steps != 0) s.steps = o.steps;
  IRIS_CHECK(s.steps >= 1, "--steps must be at least 1, got ", s.steps);
  if (o.eta_opt->count()) {
    IRIS_CHECK(s.sampler == "ddim", "--eta applies to the ddim sampler (this run uses ", s.sampler, ")");
    IRIS_CHECK(o.eta >= 0 && o.eta <= 1, "--eta must be in [0, 1], got ", o.eta);
    s.eta = o.eta;
  }
  if (o.guidance_opt->count()) {
    IRIS_CHECK(st.task() == Task::base && st.num_classes() > 0,
               "--guidance applies to class-conditional base "
               "stages; '",
               L.path, "' is ", st.super_resolution() ? "a super-resolution" : "an unconditional base", " stage");
    s.guidance = o.guidance;
  }
  if (o.aug_opt->count()) {
    IRIS_CHECK(st.net().config().aug_embedding,
               "--aug-level applies to super-resolution "
               "stages trained with noise conditioning augmentation (model.aug_embedding); '",
               L.path, "' is not one");
    IRIS_CHECK(o.aug_level >= 0 && o.aug_level <= 1, "--aug-level must be in [0, 1], got ", o.aug_level);
    s.aug_level = o.aug_level;
  }
  return s;
}

void write_grid_png(const std::string& path, const diffusion::Stage& st, const Inputs& in,
                    const Tensor& images, const std::vector<std::string>& class_names) {
  const auto samples = data::unstack_images(images);
  std::vector<std::vector<data::Image>> grid;
  std::vector<std::string> cols, row_titles;
  if (st.super_resolution()) {
    const size_t n = std::min(samples.size(), kGridMaxRows);
    const Tensor low = in.lowres.slice(0, 0, static_cast<int64_t>(n)).contiguous();
    const auto lows = data::unstack_images(low);
    const auto bicubic = data::tensor_to_images(
        data::resize(data::u8_to_float(low), st.resolution(), st.resolution(), data::Filter::bicubic));
    const auto truth = in.truth.defined()
                           ? data::unstack_images(in.truth.slice(0, 0, static_cast<int64_t>(n)).contiguous())
                           : std::vector<data::Image>{};
    cols = {"low-res", "bicubic", st.iterative() ? "SR3" : "regression"};
    if (!truth.empty()) cols.push_back("truth");
    for (size_t i = 0; i < n; ++i) {
      grid.push_back({lows[i], bicubic[i], samples[i]});
      if (!truth.empty()) grid.back().push_back(truth[i]);
      if (!in.labels.empty()) row_titles.push_back(label_name(in.labels[i], class_names));
    }
  } else if (in.truth.defined()) {
    const size_t n = std::min(samples.size(), kGridMaxRows);
    const auto truth = data::unstack_images(in.truth.slice(0, 0, static_cast<int64_t>(n)).contiguous());
    cols = {"sample", "real"};
    for (size_t i = 0; i < n; ++i) {
      grid.push_back({samples[i], truth[i]});
      if (!in.labels.empty()) row_titles.push_back(label_name(in.labels[i], class_names));
    }
  } else {
    // One row per class (in order of first appearance) titled with its name; unconditional: rows of 8.
    std::vector<int64_t> order;
    std::map<int64_t, std::vector<data::Image>> by_label;
    for (size_t i = 0; i < samples.size(); ++i) {
      const int64_t key = in.labels.empty() ? static_cast<int64_t>(i / kGridMaxCols) : in.labels[i];
      if (!by_label.count(key)) order.push_back(key);
      if (by_label[key].size() < kGridMaxCols) by_label[key].push_back(samples[i]);
    }
    if (order.size() > kGridMaxClasses) order.resize(kGridMaxClasses);
    size_t width = 0;
    for (int64_t k : order) width = std::max(width, by_label[k].size());
    const data::Image blank(samples[0].height, samples[0].width, samples[0].channels, 255);
    for (int64_t k : order) {
      auto row = by_label[k];
      row.resize(width, blank);
      grid.push_back(row);
      if (!in.labels.empty()) row_titles.push_back(label_name(k, class_names));
    }
  }
  enlarge_for_grid(grid);
  data::write_grid(path, grid, cols, row_titles);
}

void run_sample(const SampleOptions& o) {
  IRIS_CHECK(!o.out.empty(), "--out is required");
  IRIS_CHECK(o.batch > 0, "--batch must be positive, got ", o.batch);
  if (o.threads > 0) set_num_threads(o.threads);
  Device device = resolve_device(o.device);
  // Under mpirun/srun the samples are split over the ranks (each on its node-local GPU); rank 0 writes.
  const std::shared_ptr<dist::Communicator> comm = launch_communicator(device);
  const LoadedStage L = load_stage(o.ckpt, o.raw, o.sets, device);
  const diffusion::Stage& st = *L.stage;
  diffusion::SampleSettings s = settings_for(L, o);
  ConditionOptions cond{o.input, o.labels, o.per_class, o.count_opt->count() > 0};
  IRIS_CHECK(!o.per_class_opt->count() || o.per_class > 0, "--per-class must be positive, got ", o.per_class);
  std::vector<std::string> class_names;
  const Inputs in = gather_inputs(L, cond, static_cast<int>(st.resolution()), class_names);
  const int64_t N = in.size();
  IRIS_CHECK(N > 0, "nothing to sample: the inputs given select no samples");
  const std::vector<uint64_t> streams = noise_streams(in, N);
  const bool root = !comm || comm->rank() == 0;
  const Shape row_shape{st.resolution(), st.resolution(), st.channels()};
  // Rank 0 keeps the record: finished samples' PNGs as they come, run.json, and with --resume what is done.
  std::unique_ptr<SampleRecord> record;
  std::vector<int64_t> pending;
  if (root) {
    const nlohmann::json identity = {{"command", "sample"},
                                     {"stage", stage_identity(L, s)},
                                     {"seed", o.seed},
                                     {"samples", N},
                                     {"inputs_crc32c", inputs_checksum(in.names, in.lowres, in.labels)}};
    record =
        std::make_unique<SampleRecord>(o.out, std::vector<std::string>{o.out}, std::vector<Shape>{row_shape},
                                       in.names, identity, o.resume, o.overwrite);
    pending = record->pending();
  }
  pending = share_rows(comm, pending, N);
  SampleSplit split(pending, o.batch, comm);
  if (root) {
    std::printf(
        "iris sample: %s (step %lld, %s weights, %s %lldx%lld) -> %s\n%s\n%lld samples, %s, %lld steps, "
        "seed %llu, batch %lld",
        o.ckpt.c_str(), static_cast<long long>(L.info.step), L.ema ? "EMA" : "raw",
        L.config.get_string("model.task").c_str(), static_cast<long long>(st.resolution()),
        static_cast<long long>(st.resolution()), o.out.c_str(), compute_banner(device).c_str(),
        static_cast<long long>(N), s.sampler.c_str(), static_cast<long long>(s.steps),
        static_cast<unsigned long long>(o.seed), static_cast<long long>(o.batch));
    print_run_status(comm.get(), *record, o.resume, o.out);
  }

  SamplingProgress progress("sample", static_cast<int64_t>(pending.size()), split.rounds(), root);
  std::vector<Tensor> scratch;  // ranks other than 0 gather nothing into it
  int64_t sampled = 0;
  for (int64_t r = 0; r < split.rounds(); ++r) {
    const std::vector<int64_t> rows = split.rows(r);
    std::vector<Tensor> mine;
    if (!rows.empty()) {
      Generator gen = batch_generator(o.seed, streams, rows);
      const diffusion::StageBatch c = condition_rows(in, rows, st, device);
      s.on_step = [&, r](const diffusion::SamplerStep& k) { progress.step(r, "", k.index, k.count); };
      mine.push_back(to_u8(st.sample(c, static_cast<int64_t>(rows.size()), gen, s)));
    }
    const std::vector<int64_t> got =
        split.gather(r, mine, {row_shape}, N, record ? record->outputs() : scratch);
    if (record) record->write(got);  // finished samples are on disk before the next round starts
    sampled += static_cast<int64_t>(got.size());
    progress.batch_done(r, sampled);
  }
  progress.finish();
  if (!root) return;
  const Tensor images = record->outputs().at(0);

  const std::string grid = (fs::path(o.out) / "grid.png").string();
  write_grid_png(grid, st, in, images, class_names);

  const std::string h5_path = (fs::path(o.out) / "samples.h5").string();
  h5::AtomicWriter w(h5_path);
  {
    h5::Group root = w.root();
    root.set_string_attr("format", "iris-samples");
    root.set_string_attr("checkpoint", o.ckpt);
    root.set_int_attr("step", L.info.step);
    root.set_string_attr("weights", L.ema ? "ema" : "raw");
    root.set_string_attr("task", L.config.get_string("model.task"));
    root.set_string_attr("sampler", s.sampler);
    root.set_int_attr("steps", s.steps);
    root.set_double_attr("eta", s.eta);
    root.set_double_attr("guidance", s.guidance);
    root.set_double_attr("aug_level", s.aug_level);
    root.set_int_attr("seed", static_cast<int64_t>(o.seed));
    root.set_string_attr("config", L.config.to_toml());
    root.set_strings_attr("names", in.names);
    if (!class_names.empty()) root.set_strings_attr("class_names", class_names);
    root.write_tensor("images", images);
    write_inputs(root, in);
  }
  w.commit();
  std::printf("wrote %lld images (%s) to %s, the grid %s and %s\n", static_cast<long long>(N),
              images.summary().c_str(), o.out.c_str(), grid.c_str(), h5_path.c_str());
}

}  // namespace

void register_sample(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  auto* cmd = app.add_subcommand("sample",
                                 "Sample from a trained stage: super-resolve low-res inputs (sr3) or "
                                 "draw class-conditional / unconditional images (base)");
  cmd->add_option("--ckpt", o->ckpt, "checkpoint (runs/<name>/checkpoints/step_*.h5)")->required();
  cmd->add_flag("--raw", o->raw, "use the raw weights instead of the EMA");
  cmd->add_option("--set", o->sets,
                  "override a key of the checkpoint's config, e.g. --set "
                  "diffusion.sample_schedule=cosine (repeatable)");
  cmd->add_option("--shard", o->input.shard,
                  "shard folder to take inputs (sr3: low-res, truth; base: labels) from");
  cmd->add_option("--start", o->input.start, "first shard sample (default 0)");
  o->count_opt = cmd->add_option(
      "--count", o->input.count,
      "shard samples to take (-1: to the end), or images of an unconditional base stage (default 16)");
  cmd->add_option("--input", o->input.files, "low-res image files (PNG, JPEG) for an sr3 stage");
  cmd->add_option("--input-dir", o->input.dir,
                  "folder of low-res images (.png, .jpg, .jpeg) for an sr3 stage");
  cmd->add_option("--labels", o->labels, "class labels for a base stage: indices or names, comma-separated")
      ->delimiter(',');
  o->per_class_opt =
      cmd->add_option("--per-class", o->per_class, "K samples of every class (base; default 4)");
  cmd->add_option("--sampler", o->sampler, "ddpm, ddim or dpmpp2m (default: the config's diffusion.sampler)");
  cmd->add_option("--steps", o->steps, "sampling steps (default: the config's diffusion.sample_steps)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--schedule", o->schedule,
                  "sampling schedule: linear, cosine (a fresh schedule of --steps) or respaced (the training "
                  "levels); default: the config's diffusion.sample_schedule");
  o->eta_opt = cmd->add_option("--eta", o->eta, "DDIM noise, 0 (deterministic) to 1");
  o->guidance_opt =
      cmd->add_option("--guidance", o->guidance, "classifier-free guidance scale (base with classes)");
  o->aug_opt =
      cmd->add_option("--aug-level", o->aug_level,
                      "conditioning-augmentation level s in [0, 1] (sr3 trained with noise augmentation)");
  add_sampling_run_options(*cmd, *o);
  cmd->callback([o] { run_sample(*o); });
}

}  // namespace iris::tools
