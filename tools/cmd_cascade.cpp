// `iris cascade`: samples a cascade (CDM) built from several checkpoints, each stage with its own config,
// EMA weights and sampling settings: a base stage (class labels or unconditional) or an sr3 stage (low-res
// inputs) first, then super-resolution stages whose low-res size is the previous stage's resolution.
// Keeps every stage's output: out/stage_<i>/<name>.png, out/grid.png (one column per stage) and
// out/cascade.h5 (uint8 stage_<i> [N, H_i, W_i, C], plus lowres, truth and labels when there are some).
//
// Per-stage settings are comma-separated lists: one value applies to every stage it concerns (guidance to
// class-conditional base stages, the augmentation level to stages trained with noise augmentation, tiling to
// super-resolution stages), or one value per stage; unset settings come from each stage's config.
//
// From an image: an sr3 (or regression) first stage takes --shard, --input (PATH[:DATASET] image sets) or
// --input-dir, and a chain of super-resolution stages (64->256->1024) follows; with --native-size the input
// images keep their size and each stage multiplies it by its factor, with --tile per stage where the output
// is too large to run whole.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "diffusion/cascade.h"
#include "diffusion/tiling.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/communicator.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/sampling_options.h"
#include "tools/stage_settings.h"

namespace iris::tools {

namespace {

namespace fs = std::filesystem;

struct CascadeOptions : SamplingRunOptions {
  bool truncated = false;
  StageSettingLists lists;
  StageInputOptions inputs;
};

void run_cascade(const CascadeOptions& o) {
  IRIS_CHECK(o.batch > 0, "--batch must be positive, got ", o.batch);
  const ConditionOptions cond = o.inputs.conditions();
  if (o.threads > 0) set_num_threads(o.threads);
  Device device = resolve_device(o.device);
  // Under mpirun/srun the samples are split over the ranks (each on its node-local GPU); rank 0 writes.
  const std::shared_ptr<dist::Communicator> comm = launch_communicator(device);
  const size_t n_stages = o.inputs.stages.size();

  // Stages and their settings first: a bad checkpoint or option fails before any input is read.
  const std::vector<LoadedStage> stages = diffusion::load_stages(o.inputs.stages, o.inputs.raw, device);
  std::vector<diffusion::CascadeStage> steps;
  const bool native = cond.input.native_size;
  for (size_t i = 0; i < n_stages; ++i)
    steps.push_back({stages[i].stage, stage_settings(stages[i], o.lists, i, n_stages),
                     o.truncated && stage_truncatable(stages[i], i), native && i > 0});
  diffusion::Cascade chain;  // checks that the stages chain, naming both checkpoints when they do not
  bool any_truncated = false;
  for (size_t i = 0; i < n_stages; ++i) {
    any_truncated = any_truncated || steps[i].truncated;
    add_cascade_stage(chain, stages, i, steps[i]);
  }
  IRIS_CHECK(!o.truncated || any_truncated,
             "--truncated: no stage after the first was trained with noise "
             "conditioning augmentation (model.aug_embedding), so there is no chain to truncate");
  std::vector<std::string> class_names;
  // The truth: the size the chain makes from the shard's low-res images (not the last stage's resolution
  // when a stage was trained on crops).
  const Inputs in = diffusion::gather_inputs(
      stages.front(), cond, static_cast<int>(diffusion::shard_output_size(stages)), class_names);
  const int64_t N = in.size();
  // Each stage's output size: its resolution, or (--native-size) its input's size times its factor.
  std::vector<std::pair<int64_t, int64_t>> sizes;
  {
    int64_t h = in.lowres.defined() ? in.lowres.size(1) : 0, w = in.lowres.defined() ? in.lowres.size(2) : 0;
    for (const auto& st : steps) {
      std::tie(h, w) = st.stage->output_size(h, w);
      sizes.emplace_back(h, w);
    }
  }

  // The record: OUT/run.json and each stage's PNGs in OUT/stage_<i>.
  diffusion::SamplingRun run = recorded_run(o, device, comm);
  nlohmann::json stage_ids = nlohmann::json::array();
  for (size_t i = 0; i < n_stages; ++i) {
    run.dirs.push_back((fs::path(o.out) / ("stage_" + std::to_string(i))).string());
    nlohmann::json id = diffusion::stage_identity(stages[i], steps[i].settings);
    id["truncated"] = steps[i].truncated;
    stage_ids.push_back(id);
  }
  run.identity = {{"command", "cascade"},
                  {"stages", stage_ids},
                  {"seed", o.seed},
                  {"samples", N},
                  {"inputs_crc32c", diffusion::inputs_checksum(in)}};
  if (native) run.identity["native_size"] = true;  // absent otherwise: older records resume
  SamplingDisplay display("cascade");
  display.attach(run, [&](const diffusion::SamplingStart& start) {
    std::printf("iris cascade: %zu stages -> %s\n%s\n", n_stages, o.out.c_str(),
                compute_banner(device).c_str());
    for (size_t i = 0; i < n_stages; ++i) {
      const auto& st = steps[i];
      std::printf("  stage %zu: %s (step %lld, %s weights) %s %lldx%lld, %s %lld steps%s", i,
                  stages[i].path.c_str(), static_cast<long long>(stages[i].info.step),
                  stages[i].ema ? "EMA" : "raw", stages[i].config.get_string("model.task").c_str(),
                  static_cast<long long>(sizes[i].first), static_cast<long long>(sizes[i].second),
                  st.settings.sampler.c_str(), static_cast<long long>(st.settings.steps),
                  st.truncated ? ", truncated conditioning" : "");
      if (st.settings.tile > 0)
        std::printf(", %lldx%lld windows overlapping by %lld", static_cast<long long>(st.settings.tile),
                    static_cast<long long>(st.settings.tile),
                    static_cast<long long>(st.settings.tile_overlap));
      std::printf("\n");
    }
    std::printf("%lld samples, seed %llu, batch %lld", static_cast<long long>(N),
                static_cast<unsigned long long>(o.seed), static_cast<long long>(o.batch));
    print_run_status(comm.get(), start, o.resume, o.out);
  });
  const std::vector<Tensor> outputs = diffusion::sample_cascade(steps, in, run);
  display.finish();
  if (outputs.empty()) return;  // the ranks other than 0

  const std::string grid = (fs::path(o.out) / "grid.png").string();
  diffusion::write_samples_grid(grid, stages, in, outputs, class_names);

  const std::string h5_path = (fs::path(o.out) / "cascade.h5").string();
  h5::AtomicWriter w(h5_path);
  {
    h5::Group root = w.root();
    root.set_string_attr("format", "iris-cascade-samples");
    root.set_int_attr("num_stages", static_cast<int64_t>(n_stages));
    root.set_int_attr("seed", static_cast<int64_t>(o.seed));
    root.set_strings_attr("checkpoints", o.inputs.stages);
    root.set_strings_attr("names", in.names);
    if (!class_names.empty()) root.set_strings_attr("class_names", class_names);
    for (size_t i = 0; i < n_stages; ++i) {
      const auto& st = steps[i];
      h5::Dataset d = root.write_tensor("stage_" + std::to_string(i), outputs[i]);
      d.set_string_attr("checkpoint", stages[i].path);
      d.set_int_attr("step", stages[i].info.step);
      d.set_string_attr("weights", stages[i].ema ? "ema" : "raw");
      d.set_string_attr("sampler", st.settings.sampler);
      d.set_int_attr("steps", st.settings.steps);
      d.set_double_attr("eta", st.settings.eta);
      d.set_double_attr("guidance", st.settings.guidance);
      d.set_double_attr("aug_level", st.settings.aug_level);
      d.set_int_attr("truncated", st.truncated ? 1 : 0);
      d.set_string_attr("config", stages[i].config.to_toml());
      if (st.settings.tile > 0) {
        d.set_int_attr("tile", st.settings.tile);
        d.set_int_attr("tile_overlap", st.settings.tile_overlap);
        // Where the windows overlap (the bands around inner window edges, where blending happens).
        root.write_tensor("stage_" + std::to_string(i) + "_tile_coverage",
                          diffusion::tile_coverage(diffusion::plan_tiles(
                              outputs[i].size(1), outputs[i].size(2), st.stage->net().config().downsampling(),
                              st.settings.tile, st.settings.tile_overlap)));
      }
    }
    if (native) root.set_int_attr("native_size", 1);
    diffusion::write_inputs(root, in);
  }
  w.commit();
  std::printf("wrote %lld samples x %zu stages to %s, the grid %s and %s\n", static_cast<long long>(N),
              n_stages, o.out.c_str(), grid.c_str(), h5_path.c_str());
}

}  // namespace

void register_cascade(CLI::App& app) {
  auto o = std::make_shared<CascadeOptions>();
  auto* cmd = app.add_subcommand("cascade",
                                 "Sample a cascade of stages (base or sr3, then super-resolution "
                                 "stages), each from its own checkpoint");
  cmd->add_option("--steps", o->lists.steps, "sampling steps per stage: 50,25 (or one value for all)")
      ->delimiter(',');
  cmd->add_option("--schedule", o->lists.schedules,
                  "sampling schedule per stage: linear, cosine or respaced (default: each config's "
                  "diffusion.sample_schedule)")
      ->delimiter(',');
  cmd->add_option("--sampler", o->lists.samplers, "ddpm, ddim or dpmpp2m per stage: dpmpp2m,ddim")
      ->delimiter(',');
  cmd->add_option("--eta", o->lists.etas, "DDIM noise per stage (ddim stages)")->delimiter(',');
  cmd->add_option("--guidance", o->lists.guidances,
                  "classifier-free guidance per stage (class-conditional base stages)")
      ->delimiter(',');
  cmd->add_option("--aug-level", o->lists.aug_levels,
                  "conditioning-augmentation level s per stage (stages trained with noise augmentation)")
      ->delimiter(',');
  cmd->add_flag(
      "--truncated", o->truncated,
      "truncated conditioning: a stage trained with noise augmentation takes the previous chain's x_s "
      "(stopped at its augmentation level) instead of a re-noised final output");
  cmd->add_option(
         "--tile", o->lists.tiles,
         "window size per stage for tiled sampling of super-resolution stages (one value for all, or "
         "one per stage; 0: the whole image; a multiple of the stage network's downsampling)")
      ->delimiter(',');
  cmd->add_option("--tile-overlap", o->lists.tile_overlaps,
                  "least overlap of neighbouring windows per stage (one value for the tiled stages, or one "
                  "per stage)")
      ->delimiter(',');
  cmd->add_flag("--native-size", o->inputs.cond.input.native_size,
                "take --input/--input-dir images at their own size (any h x w, one per run): each "
                "super-resolution stage multiplies its input's size by its factor (any-size inference)");
  add_stage_input_options(*cmd, o->inputs);
  add_sampling_run_options(*cmd, *o);
  cmd->callback([o] { run_cascade(*o); });
}

}  // namespace iris::tools
