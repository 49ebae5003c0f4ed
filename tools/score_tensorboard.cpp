#include "tools/score_tensorboard.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/image_set.h"
#include "data/tensorboard.h"
#include "diffusion/sampling_record.h"
#include "framework/core/error.h"

namespace iris::tools {

namespace fs = std::filesystem;

std::optional<SampleOrigin> sample_origin(const std::string& images_arg) {
  const auto [path, dataset] = data::split_dataset(images_arg);
  if (!dataset.empty() && dataset != "images") return std::nullopt;  // e.g. samples.h5:lowres: not outputs
  std::error_code ec;
  const fs::path out = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  const fs::path record = out / diffusion::kRunRecordName;
  if (!fs::is_regular_file(record, ec)) return std::nullopt;
  try {
    std::ifstream f(record);
    const nlohmann::json j = nlohmann::json::parse(f);
    if (j.value("command", "") != "sample" || !j.contains("stage")) return std::nullopt;
    const nlohmann::json& s = j.at("stage");
    SampleOrigin o;
    o.checkpoint = s.at("checkpoint").get<std::string>();
    o.step = s.at("step").get<int64_t>();
    o.weights = s.value("weights", "");
    o.sampler = s.value("sampler", "");
    o.sampler_steps = s.value("steps", int64_t{0});
    const fs::path ckpt(o.checkpoint);
    if (ckpt.parent_path().filename() == "checkpoints") o.run_dir = ckpt.parent_path().parent_path().string();
    return o;
  } catch (const std::exception&) {
    return std::nullopt;  // not a record this version can read: no origin, no default folder
  }
}

void add_score_board_options(CLI::App& cmd, ScoreBoardOptions& o) {
  auto* dir =
      cmd.add_option("--tensorboard", o.dir,
                     "write the mean scores as TensorBoard scalars (<tag>/psnr, ...) to this folder; "
                     "default: the training run's RUN/tensorboard when --pred is iris sample's output "
                     "from one of its checkpoints")
          ->type_name("DIR");
  auto* off = cmd.add_flag("--no-tensorboard", o.off, "write no TensorBoard events");
  dir->excludes(off);
  cmd.add_option_function<int64_t>(
         "--step",
         [&o](const int64_t& v) {
           o.step = v;
           o.step_given = true;
         },
         "the TensorBoard step of the scores (default: the training step of the checkpoint that made --pred, "
         "when known, else 0)")
      ->check(CLI::NonNegativeNumber)
      ->excludes(off);
  cmd.add_option(
         "--tensorboard-tag", o.tag,
         "the prefix of the TensorBoard tags (default eval: eval/psnr, ...), e.g. to tell samplers apart")
      ->excludes(off);
}

ScoreBoard::ScoreBoard(const ScoreBoardOptions& o, const std::string& images_arg)
    : tag_(o.tag), asked_(!o.dir.empty()) {
  if (o.off) return;
  IRIS_CHECK(!tag_.empty() && tag_.find_first_of(" \t\n") == std::string::npos,
             "--tensorboard-tag must be a non-empty word (letters, digits, '_', '/', ...), got '", tag_, "'");
  const std::optional<SampleOrigin> origin = sample_origin(images_arg);
  if (origin)
    origin_ = "checkpoint " + origin->checkpoint + " (step " + std::to_string(origin->step) + ", " +
              origin->weights + " weights, " + origin->sampler + " " + std::to_string(origin->sampler_steps) +
              " steps)";
  step_ = o.step_given ? o.step : origin ? origin->step : 0;
  if (asked_) {
    dir_ = o.dir;
    data::EventWriter::check_folder(dir_);  // an error naming it, before the scoring
    return;
  }
  std::error_code ec;
  if (origin && !origin->run_dir.empty() && fs::is_directory(fs::path(origin->run_dir) / "tensorboard", ec)) {
    const std::string dir = (fs::path(origin->run_dir) / "tensorboard").string();
    try {
      data::EventWriter::check_folder(dir);
      dir_ = dir;
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: %s; the scores are not logged to the run's TensorBoard\n",
                   e.message().c_str());
    }
  }
  IRIS_CHECK(
      !o.step_given || active(), "--step sets the TensorBoard step of the scores, but there is no folder ",
      "to write them to: '", images_arg,
      "' is not iris sample's output from a checkpoint of a training run that logs to TensorBoard; give "
      "--tensorboard DIR");
}

std::string ScoreBoard::write(const std::vector<std::pair<std::string, double>>& scores,
                              const std::string& about) {
  if (!active()) return "";
  std::string names;
  try {
    data::EventWriter w(dir_);
    for (const auto& [name, v] : scores) {
      if (!std::isfinite(v)) continue;
      w.scalar(tag_ + "/" + name, v, step_);
      names += (names.empty() ? "" : ", ") + tag_ + "/" + name;
    }
    w.text(tag_ + "/about", about + (origin_.empty() ? "" : "\n\nThe images come from " + origin_ + "."),
           step_);
    w.flush();
    return "TensorBoard: " + names + " at step " + std::to_string(step_) + " -> " + w.path();
  } catch (const Error& e) {
    if (asked_) throw;
    return "warning: " + e.message() + "; the scores are not logged to the run's TensorBoard";
  }
}

}  // namespace iris::tools
