// `iris sweep`: scores a grid of sampling settings of one stage or a cascade on the same inputs with the same
// noise (what CDM does to pick the augmentation level s after training). Every point samples every input
// from its own Philox stream (diffusion/sampling_inputs.h), so points differ only by their settings.
//
//   OUT/run.json            what the sweep is (checkpoints, inputs, seed, grid, metrics, scoring sets)
//   OUT/points/<k>.json     point k's settings and scores, with a checksum of run.json's identity: written
//                           last and atomically, so a point with a record is finished; a re-run skips it
//   OUT/points/<k>/         its samples.h5 (images: the last stage's output, stage_<i>, inputs) and grid.png
//   OUT/references.json     the real-data references: FD floor, the feature classifier's accuracy on real
//                           images, CAS of real training images
//   OUT/feature_classifier.h5  the feature classifier (FD, accuracy) trained once, reused by re-runs
//   OUT/sweep.json, OUT/<metric>.png, the table on stdout
//   OUT/tensorboard/        the scores as TensorBoard scalars, laid out as the plots
//                           (tools/sweep_tensorboard.h)
//
// Under mpirun/srun whole points are split over the ranks in rounds (one point per rank per round); rank 0
// gathers each round's scores and images and writes them, so results do not depend on the number of ranks.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "data/image_set.h"
#include "data/metrics.h"
#include "diffusion/cas.h"
#include "diffusion/classifier.h"
#include "diffusion/sampling_record.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/communicator.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/sampling_options.h"
#include "tools/stage_settings.h"
#include "tools/sweep_grid.h"
#include "tools/sweep_report.h"
#include "tools/sweep_tensorboard.h"

namespace iris::tools {

namespace {

namespace fs = std::filesystem;
using diffusion::Task;

constexpr const char* kClassifierFile = "feature_classifier.h5";
constexpr int64_t kMaxRecordBytes = 1 << 16;  // a point's JSON record when gathered over ranks

struct SweepOptions {
  std::vector<std::string> vary, metrics;
  bool overwrite = false, no_tensorboard = false;
  StageInputOptions inputs;
  std::string out, device = "auto";
  uint64_t seed = 0;
  int64_t batch = 16;
  int threads = 0;
  std::string real, fd_train, classifier;  // scoring sets: real held-out images, real training images
  diffusion::CasOptions cas;
};

bool wants(const std::vector<std::string>& metrics, const char* m) {
  return std::find(metrics.begin(), metrics.end(), m) != metrics.end();
}

// An image-set argument (PATH or PATH:NAME) with PATH made absolute: part of the sweep's identity.
std::string absolute(const std::string& arg) {
  if (arg.empty()) return "";
  const auto [path, name] = data::split_dataset(arg);
  return fs::absolute(path).lexically_normal().string() + (name.empty() ? "" : ":" + name);
}

// What the sweep's inputs and scores are: every metric needs its data, checked before anything is sampled.
struct Scoring {
  std::vector<std::string> metrics;  // as asked, plus "accuracy" when it can be measured
  std::optional<diffusion::LabeledImages> real, train;
  bool feature = false;  // FD or accuracy: a feature classifier is needed
};

Scoring check_scoring(const SweepOptions& o, const std::vector<LoadedStage>& stages, const Inputs& in) {
  Scoring s;
  s.metrics = parse_metrics(o.metrics);
  const LoadedStage& first = stages.front();
  const int64_t R = diffusion::shard_output_size(stages);  // the outputs' size (crop-trained stages: larger)
  const bool base_first = first.stage->task() == Task::base;
  for (const char* m : {"psnr", "ssim"})
    if (wants(s.metrics, m)) {
      IRIS_CHECK(!base_first, "--metrics ", m, " compares each output with its truth, and '", first.path,
                 "' is a base stage (it has no truth per sample): use fd, cas or ms");
      IRIS_CHECK(in.truth.defined(), "--metrics ", m,
                 " needs the truth: give --shard with a shard set that stores ", R, "x", R,
                 " images (the last stage's output size)");
    }
  if (wants(s.metrics, "ssim"))
    IRIS_CHECK(R >= data::kSsimWindow, "--metrics ssim needs images of at least ", data::kSsimWindow, "x",
               data::kSsimWindow, "; the last stage makes ", R, "x", R);
  if (wants(s.metrics, "consistency"))
    IRIS_CHECK(in.lowres.defined(), "--metrics consistency compares the output with its low-res input, and '",
               first.path, "' is a base stage (no low-res input)");
  if (wants(s.metrics, "fd")) {
    IRIS_CHECK(
        !o.fd_train.empty() || !o.classifier.empty(),
        "--metrics fd needs a feature classifier: give --fd-train (real training images with labels) or "
        "--classifier (saved by iris fd --save-classifier)");
    IRIS_CHECK(!o.real.empty(), "--metrics fd needs --real (real held-out images with labels)");
  }
  if (wants(s.metrics, "cas")) {
    IRIS_CHECK(!in.labels.empty(),
               "--metrics cas needs class labels on the samples: a class-conditional base "
               "first stage, or --shard with labels");
    IRIS_CHECK(!o.real.empty(), "--metrics cas needs --real (real held-out images with labels)");
  }
  if (!o.real.empty()) s.real = load_labeled("sweep", o.real);
  if (!o.fd_train.empty()) s.train = load_labeled("sweep", o.fd_train);
  // The analogue of SR3's Table 3: a classifier trained on real images run on each point's labelled samples.
  if (!in.labels.empty() && (!o.fd_train.empty() || !o.classifier.empty()) && s.real) {
    auto at = std::find(s.metrics.begin(), s.metrics.end(), "fd");
    s.metrics.insert(at == s.metrics.end() ? at : at + 1, "accuracy");
  }
  s.feature = wants(s.metrics, "fd") || wants(s.metrics, "accuracy");
  return s;
}

// The feature classifier: --classifier, the one an earlier run of this sweep saved, or trained here (on every
// rank alike: same seed, same data). Rank 0 saves a trained one so that a re-run scores with the same one.
std::unique_ptr<diffusion::Classifier> feature_classifier(const SweepOptions& o, const Scoring& s,
                                                          int64_t resolution, Device device, bool root) {
  const std::string saved = (fs::path(o.out) / kClassifierFile).string();
  const std::string from = !o.classifier.empty() ? o.classifier : fs::exists(saved) ? saved : "";
  std::unique_ptr<diffusion::Classifier> model;
  if (!from.empty()) {
    diffusion::LoadedClassifier loaded = diffusion::load_classifier(from);
    const diffusion::ClassifierConfig& cc = loaded.model->config();
    IRIS_CHECK(cc.resolution == resolution, "--classifier '", from, "' takes ", cc.resolution, "x",
               cc.resolution, " images but the sweep's last stage makes ", resolution, "x", resolution);
    IRIS_CHECK(loaded.class_names.empty() || s.real->class_names.empty() ||
                   loaded.class_names == s.real->class_names,
               "the feature classifier '", from, "' and --real '", o.real,
               "' name their classes differently");
    if (root) std::printf("feature classifier: %s\n", from.c_str());
    model = std::move(loaded.model);
  } else {
    if (root)
      std::printf("training the feature classifier on %s (%lld steps)\n", o.fd_train.c_str(),
                  static_cast<long long>(o.cas.steps));
    std::fflush(stdout);
    diffusion::CasOptions c = o.cas;
    c.device = device;
    model = diffusion::train_feature_classifier(*s.train, *s.real, resolution, c);
    if (root) {
      const auto& names = s.train->class_names.empty() ? s.real->class_names : s.train->class_names;
      diffusion::save_classifier(saved, *model, names, absolute(o.fd_train));
      model = std::move(diffusion::load_classifier(saved).model);  // the saved weights, as a re-run sees them
    }
  }
  model->to(device);
  model->eval();
  return model;
}

// The real-data references, once per sweep (OUT/references.json keeps them for re-runs).
nlohmann::json references(const SweepOptions& o, const Scoring& s, const diffusion::Classifier* feature,
                          int64_t count, Device device, uint32_t identity_crc) {
  const fs::path file = fs::path(o.out) / "references.json";
  if (fs::exists(file)) {
    try {
      std::ifstream f(file);
      const nlohmann::json j = nlohmann::json::parse(f);
      if (j.value("identity_crc32c", 0u) == identity_crc) return j;
    } catch (const nlohmann::json::exception&) {
      // measured again below
    }
  }
  diffusion::CasOptions c = o.cas;
  c.device = device;
  nlohmann::json j = {{"identity_crc32c", identity_crc}};
  if (feature && s.real) j["classifier_top1_real"] = diffusion::classifier_accuracy(*feature, *s.real, c);
  if (feature && s.train && wants(s.metrics, "fd")) {
    int64_t used = 0;
    j["fd_floor"] = diffusion::frechet_floor(*feature, *s.train, count, *s.real, c, &used);
    j["fd_floor_count"] = used;
  }
  if (wants(s.metrics, "cas") && s.train) {
    // CAS of as many real training images as the sweep generates: what the samples' CAS is read against.
    diffusion::LabeledImages t = *s.train;
    keep_first(t, count, "sweep");
    j["cas_real"] = diffusion::classification_accuracy_score(t, *s.real, c).top1;
    j["cas_real_count"] = t.images.size(0);
  }
  h5::write_file_atomic(file.string(), j.dump(2) + "\n");
  return j;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / static_cast<double>(v.size());
}

// Samples point k and scores it; `outputs` gets every stage's output (u8 [N, H_i, W_i, C]). The sampling is
// shown (rank 0) as `label`.
PointResult run_point(size_t k, const std::vector<StageChoice>& choice,
                      const std::vector<LoadedStage>& stages, const Inputs& in, const SweepOptions& o,
                      const Scoring& s, const diffusion::Classifier* feature, Device device,
                      const std::string& label, bool root, std::vector<Tensor>& outputs) {
  std::vector<diffusion::CascadeStage> steps;
  diffusion::Cascade chain;  // stages that do not chain are refused naming both checkpoints
  for (size_t i = 0; i < stages.size(); ++i) {
    steps.push_back({stages[i].stage, choice[i].settings, choice[i].truncated});
    add_cascade_stage(chain, stages, i, steps.back());
  }
  const int64_t N = in.size();
  // Every sample of the point on this rank, without a record (whole points are split over ranks).
  diffusion::SamplingRun run;
  run.seed = o.seed;
  run.batch = o.batch;
  run.device = device;
  SamplingDisplay display(label);
  if (root) display.attach(run);
  const auto started = std::chrono::steady_clock::now();
  outputs = diffusion::sample_cascade(steps, in, run);
  display.finish();
  PointResult p;
  p.index = k;
  p.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  p.ms_per_image = 1000.0 * p.wall_s / static_cast<double>(N);
  for (const StageChoice& c : choice) p.stages.push_back(choice_json(c));

  const Tensor& images = outputs.back();
  diffusion::CasOptions c = o.cas;
  c.device = device;
  const diffusion::LabeledImages labelled{images, in.labels, {}, "point " + std::to_string(k)};
  for (const std::string& m : s.metrics) {
    double v = NAN;
    if (m == "psnr") v = mean(data::psnr(images, in.truth));
    if (m == "ssim") v = mean(data::ssim(images, in.truth));
    if (m == "consistency") v = mean(data::consistency(images, in.lowres));
    if (m == "fd") v = diffusion::classifier_frechet_distance(*feature, images, *s.real, nullptr, c).fd;
    if (m == "accuracy") v = diffusion::classifier_accuracy(*feature, labelled, c);
    if (m == "cas") v = diffusion::classification_accuracy_score(labelled, *s.real, c).top1;
    if (m == "ms") v = p.ms_per_image;
    p.scores[m] = v;
  }
  return p;
}

// The point's folder: samples.h5 (images: the last stage's output) and grid.png; then its record, last.
void write_point(const std::string& out, const PointResult& p, const std::vector<Tensor>& outputs,
                 const std::vector<LoadedStage>& stages, const Inputs& in,
                 const std::vector<std::string>& class_names, uint32_t identity_crc) {
  const fs::path dir = fs::path(out) / "points" / std::to_string(p.index);
  fs::create_directories(dir);
  diffusion::write_samples_grid((dir / "grid.png").string(), stages, in, outputs, class_names);
  h5::AtomicWriter w((dir / "samples.h5").string());
  {
    h5::Group root = w.root();
    root.set_string_attr("format", "iris-samples");
    root.set_string_attr("settings", p.values.dump());
    root.set_strings_attr("names", in.names);
    if (!class_names.empty()) root.set_strings_attr("class_names", class_names);
    root.write_tensor("images", outputs.back());
    for (size_t i = 0; i < outputs.size(); ++i) root.write_tensor("stage_" + std::to_string(i), outputs[i]);
    diffusion::write_inputs(root, in);
  }
  w.commit();
  nlohmann::json j = p.to_json();
  j["identity_crc32c"] = identity_crc;
  h5::write_file_atomic((fs::path(out) / "points" / (std::to_string(p.index) + ".json")).string(),
                        j.dump(2) + "\n");
}

// Rank 0's bookkeeping of OUT: a sweep with another identity is refused (naming what changed) unless
// --overwrite; the finished points' records are read back. Returns the finished points by index.
std::map<size_t, PointResult> open_record(const SweepOptions& o, const nlohmann::json& identity, uint32_t crc,
                                          const std::vector<SweepPoint>& points,
                                          const std::vector<SweepAxis>& axes) {
  const fs::path record = fs::path(o.out) / "run.json";
  if (fs::exists(record)) {
    nlohmann::json saved;
    try {
      std::ifstream f(record);
      saved = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
      IRIS_THROW("cannot read '", record.string(), "': ", e.what(), " (pass --overwrite to start again)");
    }
    const diffusion::JsonDifference d = diffusion::first_difference(saved, identity);
    if (!d.path.empty()) {
      IRIS_CHECK(
          o.overwrite, "'", o.out, "' holds a sweep with other settings (", d.describe(),
          "): run the same command to continue it, --overwrite to start again, or choose another --out");
    }
    if (!d.path.empty() || o.overwrite) {
      std::error_code ec;
      for (const char* f : {"points", "references.json", kClassifierFile, "sweep.json", "tensorboard"})
        fs::remove_all(fs::path(o.out) / f, ec);
    }
  }
  fs::create_directories(fs::path(o.out) / "points");
  h5::write_file_atomic(record.string(), identity.dump(2) + "\n");
  std::map<size_t, PointResult> done;
  for (size_t k = 0; k < points.size(); ++k) {
    const fs::path file = fs::path(o.out) / "points" / (std::to_string(k) + ".json");
    if (!fs::exists(file)) continue;
    nlohmann::json j;
    PointResult p;
    try {
      std::ifstream f(file);
      j = nlohmann::json::parse(f);
      p = PointResult::from_json(j);
    } catch (const std::exception& e) {  // a damaged record: the point is not finished
      std::fprintf(stderr, "warning: %s cannot be read (%s): the point is computed again\n", file.c_str(),
                   e.what());
      continue;
    }
    IRIS_CHECK(
        j.value("identity_crc32c", 0u) == crc && p.index == k && p.values == point_values(axes, points[k]),
        "'", file.string(), "' belongs to another sweep than '", record.string(),
        "' (pass --overwrite to start again)");
    done[k] = std::move(p);
  }
  return done;
}

// One round under a launcher: every rank's point record (JSON text, or "" for none) and stage outputs,
// gathered to rank 0 (the others get nothing back).
struct Gathered {
  std::string record;
  std::vector<Tensor> outputs;
};
std::vector<Gathered> gather_round(dist::Communicator& comm, const std::string& record,
                                   const std::vector<Tensor>& outputs, const std::vector<Shape>& shapes) {
  IRIS_CHECK(static_cast<int64_t>(record.size()) < kMaxRecordBytes, "internal error: a point record of ",
             record.size(), " bytes");
  const int ranks = comm.size();
  std::vector<Gathered> got(comm.rank() == 0 ? static_cast<size_t>(ranks) : 0);
  Tensor text = Tensor::zeros({kMaxRecordBytes}, DType::u8);
  std::copy(record.begin(), record.end(), text.data<uint8_t>());
  Tensor all = Tensor::empty({ranks, kMaxRecordBytes}, DType::u8, comm.device());
  comm.all_gather(text.to(comm.device()), all);
  if (comm.rank() == 0) {
    const Tensor host = all.cpu();
    for (int q = 0; q < ranks; ++q) {
      const char* p = reinterpret_cast<const char*>(host.data<uint8_t>() + q * kMaxRecordBytes);
      got[static_cast<size_t>(q)].record = std::string(p, strnlen(p, kMaxRecordBytes));
    }
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor send = outputs.empty() ? Tensor::zeros(shapes[i], DType::u8) : outputs[i];
    Shape each{ranks};
    each.insert(each.end(), shapes[i].begin(), shapes[i].end());
    Tensor recv = Tensor::empty(each, DType::u8, comm.device());
    comm.all_gather(send.to(comm.device()).contiguous(), recv);
    if (comm.rank() != 0) continue;
    const Tensor host = recv.cpu();
    for (int q = 0; q < ranks; ++q)
      got[static_cast<size_t>(q)].outputs.push_back(host.select(0, q).contiguous());
  }
  return got;
}

std::string scores_line(const PointResult& p) {
  std::string s;
  for (const auto& [k, v] : p.scores) {
    char b[64];
    std::snprintf(b, sizeof(b), "%s%s %.4g", s.empty() ? "" : ", ", k.c_str(), v);
    s += b;
  }
  return s;
}

// What determines a sweep's results: checkpoints, inputs, seed, grid, metrics and the scoring sets and
// options (not --batch, --device or --threads). A re-run with another identity is refused, naming the
// difference.
nlohmann::json sweep_identity(const SweepOptions& o, const std::vector<LoadedStage>& stages,
                              const std::vector<SweepAxis>& axes, const Inputs& in,
                              const std::vector<std::string>& metrics) {
  nlohmann::json stage_ids = nlohmann::json::array(), grid = nlohmann::json::array();
  for (const LoadedStage& L : stages)
    stage_ids.push_back(diffusion::stage_identity(L, L.stage->default_sample_settings()));
  for (const SweepAxis& a : axes) grid.push_back({{"stage", a.stage}, {"key", a.key}, {"values", a.values}});
  nlohmann::json cas_options = {
      {"steps", o.cas.steps}, {"batch", o.cas.batch_size}, {"width", o.cas.width}, {"seed", o.cas.seed}};
  return {{"command", "sweep"},
          {"stages", stage_ids},
          {"seed", o.seed},
          {"samples", in.size()},
          {"inputs_crc32c", diffusion::inputs_checksum(in)},
          {"grid", grid},
          {"metrics", metrics},
          {"real", absolute(o.real)},
          {"fd_train", absolute(o.fd_train)},
          {"classifier", absolute(o.classifier)},
          {"classifier_options", cas_options}};
}

// The end of a sweep (rank 0): the table and references on stdout, OUT/sweep.json and the plots.
void report(const SweepOptions& o, const std::vector<SweepAxis>& axes,
            const std::vector<PointResult>& results, const std::vector<std::string>& metrics,
            const nlohmann::json& refs, const nlohmann::json& identity) {
  std::printf("\n");
  print_table(axes, results, metrics);
  if (refs.contains("fd_floor"))
    std::printf("FD floor: %.4g (%lld real training images vs the real set)\n",
                refs["fd_floor"].get<double>(), refs["fd_floor_count"].get<long long>());
  if (refs.contains("classifier_top1_real"))
    std::printf("feature classifier top-1 on the real set: %.4f (the accuracy of real images)\n",
                refs["classifier_top1_real"].get<double>());
  if (refs.contains("cas_real"))
    std::printf("CAS of %lld real training images: %.4f\n", refs["cas_real_count"].get<long long>(),
                refs["cas_real"].get<double>());

  nlohmann::json j;
  j["identity"] = identity;
  j["metrics"] = nlohmann::json::object();
  for (const std::string& m : metrics) {
    const size_t b = best_point(results, m);
    j["metrics"][m] = {
        {"better", metric_info(m).higher_better ? "higher" : "lower"},
        {"best_point", b == std::string::npos ? nlohmann::json() : nlohmann::json(results[b].index)}};
  }
  j["references"] = refs.is_null() ? nlohmann::json::object() : refs;
  j["points"] = nlohmann::json::array();
  for (const PointResult& p : results) j["points"].push_back(p.to_json());
  h5::write_file_atomic((fs::path(o.out) / "sweep.json").string(), j.dump(2) + "\n");
  const std::vector<std::string> plots = write_plots(o.out, axes, results, metrics, refs);
  std::printf("wrote %s/sweep.json, %zu plot%s (%s/<metric>.png) and every point's samples under %s/points\n",
              o.out.c_str(), plots.size(), plots.size() == 1 ? "" : "s", o.out.c_str(), o.out.c_str());
}

void run_sweep(const SweepOptions& o) {
  IRIS_CHECK(o.batch > 0, "--batch must be positive, got ", o.batch);
  const ConditionOptions cond = o.inputs.conditions();
  if (o.threads > 0) set_num_threads(o.threads);
  std::vector<SweepAxis> axes;
  for (const std::string& v : o.vary) axes.push_back(parse_axis(v));
  IRIS_CHECK(!axes.empty(), "give at least one --vary KEY=V1,V2,... (the settings to sweep)");
  Device device = resolve_device(o.device);
  const std::shared_ptr<dist::Communicator> comm = launch_communicator(device);
  const bool root = !comm || comm->rank() == 0;

  // Stages, grid and every point's settings first: a bad checkpoint or setting fails before any input is
  // read.
  const std::vector<LoadedStage> stages = diffusion::load_stages(o.inputs.stages, o.inputs.raw, device);
  check_axes(axes, stages);
  const std::vector<SweepPoint> points = grid_points(axes);
  std::vector<std::vector<StageChoice>> choices;
  for (const SweepPoint& p : points) choices.push_back(point_settings(axes, p, stages));
  check_eta(axes, choices, stages);
  {
    diffusion::Cascade chain;  // stages that do not chain are refused now, naming both checkpoints
    for (size_t i = 0; i < stages.size(); ++i)
      add_cascade_stage(chain, stages, i, {stages[i].stage, choices[0][i].settings, choices[0][i].truncated});
  }
  std::vector<std::string> class_names;
  // The truth: the size the chain makes from the shard's low-res images (not the last stage's resolution
  // when a stage was trained on crops).
  const Inputs in = diffusion::gather_inputs(
      stages.front(), cond, static_cast<int>(diffusion::shard_output_size(stages)), class_names);
  const int64_t N = in.size();
  IRIS_CHECK(N > 0, "nothing to sample: the inputs given select no samples");
  const Scoring scoring = check_scoring(o, stages, in);
  const int64_t R = diffusion::shard_output_size(stages);  // the outputs' size, as the truth's

  const nlohmann::json identity = sweep_identity(o, stages, axes, in, scoring.metrics);
  const std::string identity_text = identity.dump();
  const uint32_t crc = h5::crc32c(identity_text.data(), identity_text.size());

  std::map<size_t, PointResult> done;
  std::vector<int64_t> pending;
  if (root) {
    done = open_record(o, identity, crc, points, axes);
    for (size_t k = 0; k < points.size(); ++k)
      if (!done.count(k)) pending.push_back(static_cast<int64_t>(k));
  }
  pending = diffusion::share_rows(comm, pending, static_cast<int64_t>(points.size()));
  const int ranks = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  if (root) {
    std::printf("iris sweep: %zu stage%s, %zu points x %lld samples, seed %llu -> %s\n%s", stages.size(),
                stages.size() == 1 ? "" : "s", points.size(), static_cast<long long>(N),
                static_cast<unsigned long long>(o.seed), o.out.c_str(), compute_banner(device).c_str());
    if (comm) std::printf(", points split over %d ranks (%s)", ranks, comm->describe().c_str());
    std::printf("\n");
    const std::vector<int64_t> sizes = diffusion::shard_output_sizes(stages);
    for (size_t i = 0; i < stages.size(); ++i)
      std::printf("  stage %zu: %s (step %lld, %s weights) %s %lldx%lld\n", i, stages[i].path.c_str(),
                  static_cast<long long>(stages[i].info.step), stages[i].ema ? "EMA" : "raw",
                  stages[i].config.get_string("model.task").c_str(), static_cast<long long>(sizes[i]),
                  static_cast<long long>(sizes[i]));
    if (!done.empty())
      std::printf("%zu of %zu points already in %s: skipped\n", done.size(), points.size(), o.out.c_str());
    std::fflush(stdout);
  }

  // TensorBoard (rank 0): its folder checked before any classifier is trained or point sampled; the points
  // an earlier run finished are written again (the folder is rewritten), the others as they finish.
  std::optional<SweepTensorBoard> board;
  if (root && !o.no_tensorboard) {
    board.emplace(o.out, axes, points, scoring.metrics);
    for (const auto& [k, p] : done) board->point(p);
  }

  std::unique_ptr<diffusion::Classifier> feature;
  // The feature classifier for the points left, or for references a killed run did not get to.
  const bool refs_missing = root && !fs::exists(fs::path(o.out) / "references.json");
  if (scoring.feature && (!pending.empty() || refs_missing))
    feature = feature_classifier(o, scoring, R, device, root);

  std::vector<Shape> shapes;  // each stage's outputs (a crop-trained stage's are larger than its resolution)
  const std::vector<int64_t> out_sizes = diffusion::shard_output_sizes(stages);
  for (size_t i = 0; i < stages.size(); ++i)
    shapes.push_back({N, out_sizes[i], out_sizes[i], stages[i].stage->channels()});
  const auto rounds =
      static_cast<int64_t>((pending.size() + static_cast<size_t>(ranks) - 1) / static_cast<size_t>(ranks));
  for (int64_t r = 0; r < rounds; ++r) {
    const size_t j = static_cast<size_t>(r * ranks + rank);
    std::vector<Tensor> outputs;
    std::optional<PointResult> mine;
    if (j < pending.size()) {
      const auto k = static_cast<size_t>(pending[j]);
      const std::string label = "point " + std::to_string(k + 1) + "/" + std::to_string(points.size());
      try {
        mine = run_point(k, choices[k], stages, in, o, scoring, feature.get(), device, label, root, outputs);
      } catch (const Error& e) {  // say which point: the finished ones are kept, a re-run skips them
        IRIS_THROW("point ", k + 1, "/", points.size(), " ", point_values(axes, points[k]).dump(), ": ",
                   e.message());
      }
      mine->values = point_values(axes, points[k]);
    }
    std::vector<std::pair<PointResult, std::vector<Tensor>>> finished;
    if (!comm) {
      if (mine) finished.emplace_back(*mine, outputs);
    } else {
      const std::vector<Gathered> got =
          gather_round(*comm, mine ? mine->to_json().dump() : "", outputs, shapes);
      for (const Gathered& g : got)
        if (!g.record.empty()) {
          PointResult p = PointResult::from_json(nlohmann::json::parse(g.record));
          p.values = point_values(axes, points[p.index]);
          finished.emplace_back(std::move(p), g.outputs);
        }
    }
    for (auto& [p, outs] : finished) {
      write_point(o.out, p, outs, stages, in, class_names, crc);
      std::printf("point %zu/%zu %s: %s (%.1f s)\n", p.index + 1, points.size(), p.values.dump().c_str(),
                  scores_line(p).c_str(), p.wall_s);
      std::fflush(stdout);
      if (board) board->point(p);
      done[p.index] = std::move(p);
    }
  }
  if (!root) return;
  // After the points: the other ranks are done and wait in no collective meanwhile.
  nlohmann::json refs;
  if (scoring.feature || (wants(scoring.metrics, "cas") && scoring.train))
    refs = references(o, scoring, feature.get(), N, device, crc);

  std::vector<PointResult> results;
  for (auto& [k, p] : done) results.push_back(p);
  report(o, axes, results, scoring.metrics, refs, identity);
  if (board) {
    board->finish(results, refs);
    std::printf("TensorBoard: sweep/<metric> of every point in %s\n", board->dir().c_str());
  }
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto o = std::make_shared<SweepOptions>();
  auto* cmd =
      app.add_subcommand("sweep",
                         "Score a grid of sampling settings of a stage or a cascade on the same inputs "
                         "and noise (e.g. CDM's augmentation level s)");
  cmd->footer(
      "--vary KEY=V1,V2,... (repeat for a grid; STAGE:KEY=... for one stage of a cascade): KEY is sampler, "
      "steps, eta, guidance, aug_level or truncated (0/1); without a stage index a value goes to every stage "
      "that has the setting. Metrics: psnr, ssim (higher is better) and consistency (lower) against the "
      "shard's truth and low-res inputs; fd (lower; --real and --fd-train or --classifier), cas (higher; "
      "--real, labelled samples), ms (sampling time per image, lower). With labelled samples and a feature "
      "classifier, accuracy (higher) is recorded too. Re-running the same command skips finished points. "
      "TensorBoard: OUT/tensorboard holds sweep/<metric> against the plots' x axis (the step is the swept "
      "value when all its values are whole numbers, else the value's position in --vary), a run per "
      "combination of the other axes' values (--no-tensorboard: none).");
  cmd->add_option("--vary", o->vary, "KEY=V1,V2,... or STAGE:KEY=V1,V2,... (repeat)")->required();
  cmd->add_option("--metrics", o->metrics, "psnr,ssim,consistency,fd,cas,ms (any of them)")
      ->delimiter(',')
      ->required();
  add_stage_input_options(*cmd, o->inputs);
  cmd->add_option("--real", o->real, "real held-out images with labels (fd, cas)")->type_name("PATH");
  cmd->add_option("--fd-train", o->fd_train,
                  "real training images with labels: the feature classifier (fd, "
                  "accuracy) learns on them once; they give the FD floor")
      ->type_name("PATH");
  cmd->add_option("--classifier", o->classifier, "a feature classifier saved by iris fd --save-classifier")
      ->type_name("FILE");
  cmd->add_option("--classifier-steps", o->cas.steps, "training steps of the feature and CAS classifiers")
      ->capture_default_str();
  cmd->add_option("--classifier-batch", o->cas.batch_size, "their batch size")->capture_default_str();
  cmd->add_option("--classifier-width", o->cas.width, "their width (a multiple of 8)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of all sampling noise (default 0)");
  cmd->add_option("--batch", o->batch, "samples per batch (default 16; results do not depend on it)");
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N (default auto)");
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)");
  cmd->add_option("--out", o->out, "output folder")->required();
  cmd->add_flag("--overwrite", o->overwrite, "start again in --out, discarding its finished points");
  cmd->add_flag("--no-tensorboard", o->no_tensorboard, "write no TensorBoard events (OUT/tensorboard)");
  cmd->callback([o] { run_sweep(*o); });
}

}  // namespace iris::tools
