// `iris sample`: draws samples from one trained stage (a checkpoint's EMA weights by default).
//  - sr3 stages super-resolve low-res inputs: a range of a shard set (with the truth when it is stored at the
//    model's size), or image files resized to the model's low-res size;
//  - base stages draw from class labels (indices or class names) or unconditionally.
// Writes out/<name>.png per sample, out/grid.png, and out/samples.h5 (uint8 `images` [N, H, W, C], plus
// `lowres`, `truth` uint8 and `labels` int32 when there are some) for `iris eval`.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "diffusion/tiling.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/communicator.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/sampling_options.h"

namespace iris::tools {

namespace {

namespace fs = std::filesystem;
using diffusion::Task;

struct SampleOptions : SamplingRunOptions {
  std::string ckpt, sampler, schedule;
  bool raw = false;
  InputOptions input;
  std::vector<std::string> labels, sets;
  int64_t per_class = 0, steps = 0, tile = 0, tile_overlap = 0;
  double eta = 0, guidance = 1, aug_level = 0;
  CLI::Option *eta_opt = nullptr, *guidance_opt = nullptr, *aug_opt = nullptr, *per_class_opt = nullptr,
              *count_opt = nullptr;
};

// The stage's sampling settings: its config's, overridden by the options given.
diffusion::SampleSettings settings_for(const LoadedStage& L, const SampleOptions& o) {
  const diffusion::Stage& st = *L.stage;
  diffusion::SampleSettings s = st.default_sample_settings();
  if (!st.iterative()) {
    IRIS_CHECK(
        o.sampler.empty() && o.schedule.empty() && o.steps == 0 && !o.eta_opt->count(), "'", L.path,
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
               L.path, "' is ", st.super_resolution() ? "a super-resolution" : "an unconditional base",
               " stage");
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
  if (o.tile != 0 || o.tile_overlap != 0) {
    IRIS_CHECK(st.super_resolution(), "--tile and --tile-overlap apply to super-resolution stages; '", L.path,
               "' is a base stage");
    diffusion::check_tiling(o.tile, o.tile_overlap, st.net().config().downsampling());
    s.tile = o.tile;
    s.tile_overlap = o.tile_overlap;
  }
  return s;
}

void run_sample(const SampleOptions& o) {
  IRIS_CHECK(!o.out.empty(), "--out is required");
  IRIS_CHECK(o.batch > 0, "--batch must be positive, got ", o.batch);
  if (o.threads > 0) set_num_threads(o.threads);
  Device device = resolve_device(o.device);
  // Under mpirun/srun the samples are split over the ranks (each on its node-local GPU); rank 0 writes.
  const std::shared_ptr<dist::Communicator> comm = launch_communicator(device);
  const LoadedStage L = diffusion::load_stage(o.ckpt, o.raw, o.sets, device);
  const diffusion::Stage& st = *L.stage;
  const diffusion::SampleSettings s = settings_for(L, o);
  ConditionOptions cond{o.input, o.labels, o.per_class, o.count_opt->count() > 0};
  IRIS_CHECK(!o.per_class_opt->count() || o.per_class > 0, "--per-class must be positive, got ", o.per_class);
  std::vector<std::string> class_names;
  // The truth a shard set can give: images of the size the stage makes from its data.lowres_size inputs,
  // which for a stage trained on crops (data.crop_size) is data.image_size, not its resolution.
  const int truth_size = static_cast<int>(diffusion::shard_output_size({L.stage.get()}));
  const Inputs in = diffusion::gather_inputs(L, cond, truth_size, class_names);
  const int64_t N = in.size();
  // The output size: the model's resolution, or the inputs' size times its factor (--native-size).
  const auto [out_h, out_w] =
      st.super_resolution() ? st.output_size(in.lowres.size(1), in.lowres.size(2)) : st.output_size(0, 0);

  // A one-stage cascade; the record is OUT/run.json and one PNG per sample in OUT.
  diffusion::SamplingRun run = recorded_run(o, device, comm);
  run.dirs = {o.out};
  run.identity = {{"command", "sample"},
                  {"stage", diffusion::stage_identity(L, s)},
                  {"seed", o.seed},
                  {"samples", N},
                  {"inputs_crc32c", diffusion::inputs_checksum(in)}};
  if (o.input.native_size) run.identity["native_size"] = true;  // absent otherwise: older records resume
  SamplingDisplay display("sample");
  display.attach(run, [&](const diffusion::SamplingStart& start) {
    std::printf(
        "iris sample: %s (step %lld, %s weights, %s %lldx%lld) -> %s\n%s\n%lld samples, %s, %lld steps, "
        "seed %llu, batch %lld",
        o.ckpt.c_str(), static_cast<long long>(L.info.step), L.ema ? "EMA" : "raw",
        L.config.get_string("model.task").c_str(), static_cast<long long>(out_h),
        static_cast<long long>(out_w), o.out.c_str(), compute_banner(device).c_str(),
        static_cast<long long>(N), s.sampler.c_str(), static_cast<long long>(s.steps),
        static_cast<unsigned long long>(o.seed), static_cast<long long>(o.batch));
    if (s.tile > 0)
      std::printf(", %lldx%lld windows overlapping by %lld", static_cast<long long>(s.tile),
                  static_cast<long long>(s.tile), static_cast<long long>(s.tile_overlap));
    print_run_status(comm.get(), start, o.resume, o.out);
  });
  const std::vector<Tensor> outputs = diffusion::sample_cascade({{L.stage, s, false}}, in, run);
  display.finish();
  if (outputs.empty()) return;  // the ranks other than 0
  const Tensor& images = outputs[0];

  const std::string grid = (fs::path(o.out) / "grid.png").string();
  diffusion::write_samples_grid(grid, {L}, in, outputs, class_names);

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
    if (o.input.native_size) root.set_int_attr("native_size", 1);
    if (s.tile > 0) {
      // Where the windows overlap (the bands around inner window edges, where blending happens).
      root.set_int_attr("tile", s.tile);
      root.set_int_attr("tile_overlap", s.tile_overlap);
      root.write_tensor("tile_coverage", diffusion::tile_coverage(diffusion::plan_tiles(
                                             images.size(1), images.size(2), st.net().config().downsampling(),
                                             s.tile, s.tile_overlap)));
    }
    root.set_int_attr("seed", static_cast<int64_t>(o.seed));
    root.set_string_attr("config", L.config.to_toml());
    root.set_strings_attr("names", in.names);
    if (!class_names.empty()) root.set_strings_attr("class_names", class_names);
    root.write_tensor("images", images);
    diffusion::write_inputs(root, in);
  }
  w.commit();
  std::printf("wrote %lld images (%s) to %s, the grid %s and %s\n", static_cast<long long>(N),
              images.summary().c_str(), o.out.c_str(), grid.c_str(), h5_path.c_str());
  // IRIS_CUDA_GRAPHS=1: say what the graphs did, and why a capture failed (those batches ran eagerly).
  const auto graphs = st.sample_graph_stats();
  if (graphs.captures + graphs.failed > 0)
    std::printf("CUDA graphs: %lld captured, %lld replays%s%s\n", static_cast<long long>(graphs.captures),
                static_cast<long long>(graphs.replays), graphs.failed ? "; capture failed, ran eagerly: " : "",
                st.sample_graph_failure().c_str());
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
  cmd->add_option("--input", o->input.files,
                  "low-res images for an sr3 stage: image files (PNG, JPEG), folders of them, HDF5 datasets "
                  "(samples.h5:images) or shard folders (DIR:lowres_<h>), PATH[:DATASET] (repeatable)");
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
  cmd->add_flag("--native-size", o->input.native_size,
                "take --input/--input-dir images at their own size (any h x w, one per run) instead of "
                "cropping and resizing them to the model's low-res size: outputs are h x w times the "
                "stage's factor");
  cmd->add_option("--tile", o->tile,
                  "run the network on T x T windows of the output (a multiple of the network's "
                  "downsampling), blended at every step: for outputs too large to run at once (default 0: "
                  "the whole image)");
  cmd->add_option("--tile-overlap", o->tile_overlap,
                  "pixels by which neighbouring windows overlap at least (a multiple of the downsampling, "
                  "smaller than --tile); the blend tapers over them");
  add_sampling_run_options(*cmd, *o);
  cmd->callback([o] { run_sample(*o); });
}

}  // namespace iris::tools
