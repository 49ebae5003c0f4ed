// Scores of generated images made with a classifier trained by Iris (diffusion/cas.h):
//
// `iris cas --generated PATH --real PATH`: the Classification Accuracy Score of class-conditional samples: a
// classifier trained from scratch on the generated images only, scored top-1 / top-5 on the real ones. Run it
// with a real training set as --generated for the reference the score is read against.
//
// `iris fd --train PATH --generated PATH --real PATH`: the Fréchet distance (FID's statistic) between the
// generated and the real images in the features of a classifier trained on the real training images, with
// the floor of the same count of real training images. Not comparable with Inception FIDs.
//
// PATH is a shard folder (iris shard; PATH:lowres_<h> for its low-res copies), or an HDF5 file with uint8 (or
// float in [-1, 1]) images [N, H, W, C] and, where labels are needed, int `labels` [N] beside them:
// `iris sample`'s samples.h5 (dataset "images"), or `iris cascade`'s cascade.h5 with PATH:stage_<i> for a
// stage. Class names come from the files when they have them (attribute class_names of an HDF5 file, the
// shard index) and must agree.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "data/image.h"
#include "data/shard.h"
#include "diffusion/cas.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/fid_inception.h"
#include "tools/progress.h"

namespace iris::tools {

namespace fs = std::filesystem;

namespace {

struct CasCliOptions {
  std::string train, generated, real, device = "auto", json;  // train: iris fd's real training images
  std::string classifier, save_classifier;                    // iris fd: load / save the feature classifier
  int64_t limit = -1;      // use the first `limit` generated images (-1: all)
  InceptionFdOptions fid;  // iris fd --inception
  bool batch_given = false;
  diffusion::CasOptions cas;
  int threads = 0;
};

std::string percent(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.2f%%", 100.0 * v);
  return b;
}

std::string set_line(const char* role, const std::string& path, const Tensor& images) {
  char b[64];
  std::snprintf(b, sizeof(b), " images %lldx%lld", static_cast<long long>(images.size(1)),
                static_cast<long long>(images.size(2)));
  return std::string("  ") + role + std::string(11 - std::strlen(role), ' ') + path + ": " +
         with_commas(images.size(0)) + b + "\n";
}

// A line per logging interval of the classifier's training, as iris train prints them (plain lines read
// well in job logs).
std::function<void(int64_t, double)> step_logger(int64_t steps) {
  const auto started = std::chrono::steady_clock::now();
  return [started, steps](int64_t step, double loss) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("step %lld/%lld  loss %.4f  %s  elapsed %s  ETA %s\n", static_cast<long long>(step),
                static_cast<long long>(steps), loss,
                format_rate(static_cast<double>(step) / std::max(secs, 1e-9), "step").c_str(),
                human_duration(secs).c_str(), format_eta(step, steps, secs).c_str());
    std::fflush(stdout);
  };
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << j.dump(2) << "\n";
  fs::rename(tmp, path);
}

void run_cas(const CasCliOptions& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  diffusion::CasOptions c = o.cas;
  c.device = resolve_device(o.device);
  diffusion::LabeledImages gen = load_labeled("cas", o.generated);
  const diffusion::LabeledImages real = load_labeled("cas", o.real);
  keep_first(gen, o.limit, "cas");  // e.g. a real reference as large as a generated set
  std::printf("iris cas: %s\n%s%s", compute_banner(c.device).c_str(),
              set_line("generated", o.generated, gen.images).c_str(),
              set_line("real", o.real, real.images).c_str());
  std::fflush(stdout);
  c.on_log = step_logger(c.steps);
  const diffusion::CasResult r = diffusion::classification_accuracy_score(gen, real, c);

  const std::vector<std::string>& names = gen.class_names.empty() ? real.class_names : gen.class_names;
  auto class_name = [&](int64_t k) {
    return k < static_cast<int64_t>(names.size()) ? names[k] : std::to_string(k);
  };
  std::printf("\nclassifier  %s parameters, %lld steps of batch %lld%s\n", with_commas(r.parameters).c_str(),
              static_cast<long long>(c.steps), static_cast<long long>(c.batch_size),
              r.test_resized ? " (real images resized to the generated size, antialiased bicubic)" : "");
  std::printf("%-16s %8s\n", "class", "top-1");
  for (int64_t k = 0; k < r.classes; ++k)
    if (r.class_count[k] > 0)
      std::printf("%-16s %8s\n", class_name(k).c_str(), percent(r.class_top1[k]).c_str());
  std::printf("\nCAS top-1  %s   top-5  %s   (on %s real images; %lld classes; chance %s)\n",
              percent(r.top1).c_str(), percent(r.top5).c_str(), with_commas(r.test_count).c_str(),
              static_cast<long long>(r.classes), percent(1.0 / static_cast<double>(r.classes)).c_str());
  std::printf("fit        top-1 %s on (up to 10,000 of) the images it trained on\n",
              percent(r.train_top1).c_str());
  nlohmann::json j = {{"generated", o.generated},
                      {"real", o.real},
                      {"top1", r.top1},
                      {"top5", r.top5},
                      {"train_top1", r.train_top1},
                      {"classes", r.classes},
                      {"generated_count", r.train_count},
                      {"real_count", r.test_count},
                      {"steps", c.steps},
                      {"seed", c.seed},
                      {"final_loss", r.final_loss}};
  nlohmann::json per_class = nlohmann::json::array();
  for (int64_t k = 0; k < r.classes; ++k)
    per_class.push_back(
        {{"class", class_name(k)},
         {"count", r.class_count[k]},
         {"top1", r.class_count[k] > 0 ? nlohmann::json(r.class_top1[k]) : nlohmann::json()}});
  if (!o.json.empty()) {
    nlohmann::json full = j;
    full["per_class"] = per_class;
    write_json_file(o.json, full);
  }
  std::printf("%s\n", j.dump().c_str());
}

void run_fd(const CasCliOptions& o) {
  if (!o.fid.inception.empty()) {  // FID as published: Inception's features (tools/fid_inception.cpp)
    IRIS_CHECK(
        o.train.empty() && o.classifier.empty() && o.save_classifier.empty(),
        "fd: --inception scores in Inception's features; --train, --classifier and --save-classifier are "
        "for the classifier Iris trains instead");
    InceptionFdOptions f = o.fid;
    f.generated = o.generated, f.real = o.real, f.device = o.device, f.json = o.json;
    f.limit = o.limit, f.threads = o.threads;
    if (o.batch_given) f.batch = o.cas.batch_size;
    run_inception_fd(f);
    return;
  }
  IRIS_CHECK(!o.generated.empty() && !o.real.empty(), "fd: give --generated and --real");
  IRIS_CHECK(o.fid.real_stats.empty() && o.fid.save_real_stats.empty(),
             "fd: --real-stats and --save-real-stats hold Inception statistics: they need --inception");
  if (o.threads > 0) set_num_threads(o.threads);
  diffusion::CasOptions c = o.cas;
  c.device = resolve_device(o.device);
  IRIS_CHECK(!o.train.empty() || !o.classifier.empty(),
             "fd: give --train (real training images for the feature classifier) or --classifier (one saved "
             "before)");
  IRIS_CHECK(o.classifier.empty() || o.save_classifier.empty(),
             "fd: --save-classifier saves a classifier trained here; with --classifier none is trained");
  std::optional<diffusion::LabeledImages> train;
  if (!o.train.empty()) train = load_labeled("fd", o.train);
  const diffusion::LabeledImages real = load_labeled("fd", o.real);
  diffusion::LabeledImages gen = load_labeled("fd", o.generated, /*need_labels=*/false);
  keep_first(gen, o.limit, "fd");
  std::printf("iris fd: %s\n%s%s%s", compute_banner(c.device).c_str(),
              train ? set_line("train", o.train, train->images).c_str() : "",
              set_line("generated", o.generated, gen.images).c_str(),
              set_line("real", o.real, real.images).c_str());
  std::fflush(stdout);
  diffusion::FrechetResult r;
  std::string trained_on = o.train;
  std::unique_ptr<diffusion::Classifier> model;
  if (!o.classifier.empty()) {
    diffusion::LoadedClassifier loaded = diffusion::load_classifier(o.classifier);
    IRIS_CHECK(
        loaded.class_names.empty() || real.class_names.empty() || loaded.class_names == real.class_names,
        "fd: the classifier '", o.classifier, "' and '", o.real, "' name their classes differently");
    model = std::move(loaded.model);
    model->to(c.device);
    trained_on = loaded.trained_on;
    std::printf("classifier  %s\n", o.classifier.c_str());
    r = diffusion::classifier_frechet_distance(*model, gen.images, real, train ? &*train : nullptr, c);
  } else {
    c.on_log = step_logger(c.steps);
    r = diffusion::classifier_frechet_distance(*train, gen.images, real, c, &model);
    if (!o.save_classifier.empty()) {
      const std::vector<std::string>& names =
          train->class_names.empty() ? real.class_names : train->class_names;
      diffusion::save_classifier(o.save_classifier, *model, names, o.train);
      std::printf("saved the feature classifier to %s\n", o.save_classifier.c_str());
    }
  }
  std::printf("\nfeature classifier  trained on %s, top-1 %s on the real images%s\n", trained_on.c_str(),
              percent(r.classifier_top1).c_str(),
              r.real_resized ? " (real images resized to the generated size, antialiased bicubic)" : "");
  std::printf("FD  %.4f   generated (%s) vs real (%s), %lld features\n", r.fd,
              with_commas(r.generated_count).c_str(), with_commas(r.real_count).c_str(),
              static_cast<long long>(r.feature_dim));
  if (r.has_reference)
    std::printf("    %.4f   floor: %s real training images vs the same real images\n", r.reference_fd,
                with_commas(r.reference_count).c_str());
  // Labelled samples: does the real-trained classifier see their classes (SR3's Table 3)?
  const double generated_top1 = gen.labels.empty() ? NAN : diffusion::classifier_accuracy(*model, gen, c);
  if (!gen.labels.empty())
    std::printf("accuracy  %s   the feature classifier's top-1 on the generated images (their labels)\n",
                percent(generated_top1).c_str());
  nlohmann::json j = {{"train", trained_on},
                      {"generated", o.generated},
                      {"real", o.real},
                      {"fd", r.fd},
                      {"generated_count", r.generated_count},
                      {"real_count", r.real_count},
                      {"feature_dim", r.feature_dim},
                      {"classifier_top1", r.classifier_top1},
                      {"classifier", o.classifier.empty() ? o.save_classifier : o.classifier}};
  if (o.classifier.empty()) {  // the options of the classifier trained here
    j["steps"] = c.steps;
    j["seed"] = c.seed;
  }
  if (!gen.labels.empty()) j["generated_top1"] = generated_top1;
  if (r.has_reference) {
    j["reference_fd"] = r.reference_fd;
    j["reference_count"] = r.reference_count;
  }
  write_json_file(o.json, j);
  std::printf("%s\n", j.dump().c_str());
}

// The classifier options iris cas and iris fd share.
void add_classifier_options(CLI::App* cmd, CasCliOptions& o) {
  cmd->add_option("--steps", o.cas.steps, "classifier training steps")->capture_default_str();
  cmd->add_option("--batch", o.cas.batch_size, "training batch size")->capture_default_str();
  cmd->add_option("--lr", o.cas.lr, "AdamW learning rate (warm-up, then cosine decay)")
      ->capture_default_str();
  cmd->add_option("--width", o.cas.width, "classifier width (a multiple of 8)")->capture_default_str();
  cmd->add_option("--blocks", o.cas.blocks, "residual blocks per stage")->capture_default_str();
  cmd->add_flag("--hflip", o.cas.hflip, "random horizontal flips of the training images");
  cmd->add_option("--seed", o.cas.seed, "seed of the weights, batch order and flips")->capture_default_str();
  cmd->add_option("--device", o.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--limit", o.limit, "use only the first N images of --generated");
  cmd->add_option("--json", o.json, "also write the results to this JSON file")->type_name("FILE");
}

}  // namespace

void register_cas(CLI::App& app) {
  auto o = std::make_shared<CasCliOptions>();
  auto* cmd = app.add_subcommand(
      "cas", "Classification Accuracy Score: a classifier trained on generated images, scored on real ones");
  cmd->footer(
      "PATH: a shard folder with labels (PATH:lowres_<h> for its low-res copies), or an HDF5 file with "
      "images [N, H, W, C] and 'labels' [N] (samples.h5 of iris sample; cascade.h5:stage_<i> of iris "
      "cascade). The real images are resized to "
      "the generated ones' size when they differ. For the reference, run it again with the real training "
      "set as --generated.");
  cmd->add_option("--generated", o->generated, "the class-conditional samples to train on")
      ->type_name("PATH")
      ->required();
  cmd->add_option("--real", o->real, "real images with labels to score on (a held-out set)")
      ->type_name("PATH")
      ->required();
  add_classifier_options(cmd, *o);
  cmd->callback([o] { run_cas(*o); });
}

void register_fd(CLI::App& app) {
  auto o = std::make_shared<CasCliOptions>();
  auto* cmd = app.add_subcommand(
      "fd",
      "Frechet distance of generated to real images in the features of a classifier trained on real ones");
  cmd->footer(
      "FID's statistic with a classifier trained here on --train standing in for Inception: compare runs "
      "scored with the same real sets and options, never with published FIDs. The floor is the distance of "
      "as many real training images as were generated. PATH as for iris cas; --generated needs no labels (a "
      "folder of image files will do). Train the feature classifier once (--save-classifier) and score every "
      "checkpoint's samples with it (--classifier): the same features, and no retraining. With --inception "
      "WEIGHTS it computes FID as published instead (Inception-v3 pool3 features; --batch images per pass, "
      "default 50), from --real or --real-stats.");
  cmd->add_option(
         "--train", o->train,
         "real training images with labels: the feature classifier learns on them; they give the floor")
      ->type_name("PATH");
  cmd->add_option("--classifier", o->classifier,
                  "a feature classifier saved before (then --train only gives the floor)")
      ->type_name("FILE");
  cmd->add_option("--save-classifier", o->save_classifier,
                  "save the classifier trained here, to score more sample sets with the same features")
      ->type_name("FILE");
  cmd->add_option("--generated", o->generated, "the samples to score")->type_name("PATH");
  cmd->add_option("--real", o->real, "real held-out images with labels (with --inception: any real images)")
      ->type_name("PATH");
  cmd->add_option("--inception", o->fid.inception,
                  "FID as published: features of FID's Inception-v3 with these weights (made by "
                  "tools/scripts/convert_fid_inception.py from pytorch-fid's pt_inception-2015-12-05 file)")
      ->type_name("WEIGHTS");
  cmd->add_option("--real-stats", o->fid.real_stats,
                  "with --inception: the real set's statistics saved before, instead of --real")
      ->type_name("FILE");
  cmd->add_option("--save-real-stats", o->fid.save_real_stats,
                  "with --inception: save the statistics of --real (then --generated is optional)")
      ->type_name("FILE");
  add_classifier_options(cmd, *o);
  cmd->callback([o, cmd] {
    o->batch_given = cmd->get_option("--batch")->count() > 0;
    run_fd(*o);
  });
}

}  // namespace iris::tools
