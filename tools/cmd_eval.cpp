// `iris eval --pred PATH --truth PATH [--lowres PATH] [--json FILE]`: PSNR, SSIM and (with the low-res
// inputs) SR3's consistency of super-resolved images against the references (conventions: data/metrics.h).
//
// PATH is an image file (PNG or JPEG), a folder of them, an HDF5 file with a uint8 [N, H, W, C] dataset
// (default "images"; PATH:NAME picks another, e.g. samples.h5:lowres or shard-00000.h5:lowres_7), or a shard
// folder (images, or PATH:lowres_<h>). Image files against a folder are matched by file name; anything else
// by position (folders in sorted name order). An indexed reference (HDF5, shards) may hold more images than
// the prediction: the first N are used, and this is said.
//
// The means also go to TensorBoard (eval/psnr, ...): by default into the training run whose checkpoint
// `iris sample` made --pred with, at that checkpoint's step (tools/score_tensorboard.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "data/image.h"
#include "data/image_set.h"
#include "data/metrics.h"
#include "data/resize.h"
#include "framework/core/error.h"
#include "framework/cpu/parallel.h"
#include "framework/io/hdf5.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/progress.h"
#include "tools/score_tensorboard.h"

namespace iris::tools {

namespace fs = std::filesystem;

namespace {

// The set given as `arg` (data/image_set.h); role: "prediction", "reference" or "low-res" (whose default
// dataset is the set's low-res images).
data::ImageSet open_source(const std::string& arg, const std::string& role) {
  return data::ImageSet::open(arg, {.tool = "eval", .role = role, .prefer_lowres = role == "low-res"});
}

// The reference (or low-res) images for the predictions: by name for two folders, else by position.
data::ImageSet align(const data::ImageSet& ref, const data::ImageSet& pred, const std::string& role,
                     std::vector<std::string>& notes) {
  if (pred.named() && ref.kind() == data::ImageSet::Kind::image_folder) {
    std::vector<std::string> names;
    for (int64_t i = 0; i < pred.size(); ++i) names.push_back(pred.name(i));
    return ref.matching(names, role);
  }
  if (ref.size() == pred.size()) return ref;
  IRIS_CHECK(ref.indexed() && ref.size() > pred.size(), "eval: ", pred.size(), " predictions ('", pred.spec(),
             "') but ", ref.size(), " ", role, " images ('", ref.spec(), "')");
  notes.push_back("the " + role + " set '" + ref.spec() + "' holds " + with_commas(ref.size()) +
                  " images; its first " + with_commas(pred.size()) + " are used");
  return ref;
}

struct Row {
  std::string name;
  double psnr = 0, ssim = NAN, consistency = NAN;
  double psnr_interior = NAN, psnr_seams = NAN;   // --tile-coverage: one window / several windows
  double bicubic_psnr = NAN, bicubic_ssim = NAN;  // the baseline: the low-res input upsampled (bicubic)
};

nlohmann::json number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";  // JSON has no infinity; Python's float() reads "inf"
  return v;
}

std::string cell(double v, const char* format) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return "inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

struct EvalOptions {
  std::string pred, truth, lowres, json, save_bicubic, tile_coverage;
  bool quiet = false;
  ScoreBoardOptions tensorboard;
};

// --save-bicubic: the bicubic baseline as a method's output, for the scores eval does not compute (iris fd's
// Fréchet distance and classifier accuracy, or eval's consistency when given as --pred): an HDF5 file with
// uint8 `images` [N, H, W, C], plus the `labels` of --pred when it is an HDF5 file that has them.
void save_bicubic(const EvalOptions& o, const std::vector<data::Image>& images) {
  h5::File f = h5::File::create(o.save_bicubic);
  h5::Group root = f.root();
  root.write_tensor("images", data::stack_images(images));
  const std::string path = data::split_dataset(o.pred).first;
  if (fs::is_regular_file(path) && fs::path(path).extension() == ".h5") {
    const h5::File src = h5::File::open(path);
    if (src.root().has("labels")) root.write_tensor("labels", src.root().read_tensor("labels"));
  }
  std::printf("wrote %s (the bicubic baseline, %s images)\n", o.save_bicubic.c_str(),
              with_commas(static_cast<int64_t>(images.size())).c_str());
}

// --tile-coverage: the masks of the pixels one window covers (the interior) and several cover (the seams:
// the bands around inner window edges) from a tiled run's coverage map (samples.h5:tile_coverage).
struct TileMasks {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> interior, seams;
};
TileMasks read_tile_masks(const std::string& arg) {
  auto [path, dataset] = data::split_dataset(arg);
  if (dataset.empty()) dataset = "tile_coverage";
  IRIS_CHECK(fs::exists(path) && h5::File::is_hdf5(path), "eval: --tile-coverage '", path,
             "' is not an HDF5 file (give a tiled run's samples.h5, or cascade.h5:stage_<i>_tile_coverage)");
  const h5::File f = h5::File::open(path);
  IRIS_CHECK(f.root().has(dataset), "eval: --tile-coverage: '", path, "' has no dataset '", dataset,
             "' (written by iris sample and iris cascade when they tile)");
  const Tensor c = f.root().read_tensor(dataset);
  IRIS_CHECK(c.dim() == 2, "eval: --tile-coverage: '", arg, "' must be a map [H, W], got ", c.summary());
  TileMasks m;
  m.height = c.size(0);
  m.width = c.size(1);
  for (int64_t v : c.to(DType::i64).to_vector<int64_t>()) {
    m.interior.push_back(v == 1);
    m.seams.push_back(v >= 2);
  }
  return m;
}

void run_eval(const EvalOptions& o) {
  std::vector<std::string> notes;
  const data::ImageSet pred = open_source(o.pred, "prediction");
  const data::ImageSet truth = align(open_source(o.truth, "reference"), pred, "reference", notes);
  std::optional<data::ImageSet> low;
  if (!o.lowres.empty()) low = align(open_source(o.lowres, "low-res"), pred, "low-res", notes);
  ScoreBoard board(o.tensorboard, o.pred);  // its folder checked before the scoring
  std::optional<TileMasks> tiles;
  if (!o.tile_coverage.empty()) tiles = read_tile_masks(o.tile_coverage);

  const int64_t n = pred.size();
  IRIS_CHECK(o.save_bicubic.empty() || low, "eval: --save-bicubic needs --lowres (the images to upsample)");
  std::vector<Row> rows(static_cast<size_t>(n));
  std::vector<data::Image> bicubic_images(o.save_bicubic.empty() ? 0 : static_cast<size_t>(n));
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::unique_ptr<Progress> bar;
  if (n >= 200) bar = std::make_unique<Progress>("eval", n);
  // Images in parallel (the metrics then run serially inside each); results land in their own rows, so the
  // output is the same for any thread count. Exceptions must not leave the parallel region: kept per row.
  cpu::parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      Row& r = rows[static_cast<size_t>(i)];
      try {
        r.name = pred.name(i);
        const data::Image p = pred.image(i), t = truth.image(i);
        IRIS_CHECK(p.height == t.height && p.width == t.width && p.channels == t.channels, "eval: ", r.name,
                   ": the prediction is ", p.str(), " but the reference ('", truth.spec(), "' ",
                   truth.name(i), ") is ", t.str());
        r.psnr = data::psnr(p, t);
        if (tiles) {
          IRIS_CHECK(p.height == tiles->height && p.width == tiles->width, "eval: ", r.name,
                     ": the prediction is ", p.str(), " but the --tile-coverage map is ", tiles->height, "x",
                     tiles->width);
          r.psnr_interior = data::psnr_where(p, t, tiles->interior);
          r.psnr_seams = data::psnr_where(p, t, tiles->seams);
        }
        if (p.height >= data::kSsimWindow && p.width >= data::kSsimWindow) r.ssim = data::ssim(p, t);
        if (low) {
          const data::Image l = low->image(i);
          IRIS_CHECK(l.channels == p.channels && l.height <= p.height && l.width <= p.width, "eval: ", r.name,
                     ": the low-res input ('", low->spec(), "' ", low->name(i), ") is ", l.str(),
                     ", which does not fit the prediction ", p.str());
          r.consistency = data::consistency(p, l);
          // The baseline SR3 must beat: the same low-res input upsampled with antialiased bicubic.
          const data::Image b = data::resize(l, p.height, p.width, data::Filter::bicubic);
          r.bicubic_psnr = data::psnr(b, t);
          if (p.height >= data::kSsimWindow && p.width >= data::kSsimWindow)
            r.bicubic_ssim = data::ssim(b, t);
          if (!bicubic_images.empty()) bicubic_images[static_cast<size_t>(i)] = b;
        }
      } catch (const std::exception& e) {
        const auto* ie = dynamic_cast<const Error*>(&e);
        errors[static_cast<size_t>(i)] = ie ? ie->message() : e.what();
      }
      if (bar) bar->add(1);
    }
  });
  if (bar) bar->finish();
  for (const auto& e : errors) IRIS_CHECK(e.empty(), e);
  const bool small = std::any_of(rows.begin(), rows.end(), [](const Row& r) { return std::isnan(r.ssim); });

  Row mean{"mean"};
  double sp = 0, ss = 0, sc = 0, bp = 0, bs = 0, si = 0, sm = 0;
  for (const Row& r : rows) {
    si += r.psnr_interior;
    sm += r.psnr_seams;
    sp += r.psnr;
    ss += r.ssim;
    sc += r.consistency;
    bp += r.bicubic_psnr;
    bs += r.bicubic_ssim;
  }
  mean.bicubic_psnr = low ? bp / static_cast<double>(n) : NAN;
  mean.bicubic_ssim = low && !small ? bs / static_cast<double>(n) : NAN;
  mean.psnr = sp / static_cast<double>(n);
  mean.psnr_interior = si / static_cast<double>(n);
  mean.psnr_seams = sm / static_cast<double>(n);
  mean.ssim = small ? NAN : ss / static_cast<double>(n);
  mean.consistency = low ? sc / static_cast<double>(n) : NAN;
  const int64_t identical =
      std::count_if(rows.begin(), rows.end(), [](const Row& r) { return std::isinf(r.psnr); });

  size_t nw = 4;
  for (const Row& r : rows) nw = std::max(nw, r.name.size());
  const int w = static_cast<int>(nw);
  auto print = [&](const Row& r) {
    std::printf("%-*s  %9s  %7s", w, r.name.c_str(), cell(r.psnr, "%.3f").c_str(),
                cell(r.ssim, "%.4f").c_str());
    if (low)
      std::printf("  %12s  %12s  %12s", cell(r.consistency, "%.3e").c_str(),
                  cell(r.bicubic_psnr, "%.3f").c_str(), cell(r.bicubic_ssim, "%.4f").c_str());
    std::printf("\n");
  };
  std::printf("%-*s  %9s  %7s%s\n", w, "image", "PSNR (dB)", "SSIM",
              low ? "   consistency  bicubic PSNR  bicubic SSIM" : "");
  if (!o.quiet)
    for (const Row& r : rows) print(r);
  print(mean);
  std::printf(
      "%s image%s. PSNR: MAX 255, all channels, no border crop. SSIM: 11x11 Gaussian window (sigma 1.5), "
      "mean over channels.\n",
      with_commas(n).c_str(), n == 1 ? "" : "s");
  if (low) {
    std::printf("Consistency: MSE in [0, 1] between the bicubic-downsampled output and the low-res input.\n");
    std::printf(
        "Bicubic: the low-res input upsampled with antialiased bicubic (Keys, a = -0.5), scored the same "
        "way.\n");
  }
  if (identical > 0)
    std::printf("note: %s image%s identical to the reference (PSNR inf)\n", with_commas(identical).c_str(),
                identical == 1 ? " is" : "s are");
  if (small) std::printf("note: SSIM needs images of at least 11x11; not computed\n");
  // The share of an image's pixels a mask selects.
  const auto share = [](const std::vector<uint8_t>& m) {
    return static_cast<double>(std::count(m.begin(), m.end(), 1)) / static_cast<double>(m.size());
  };
  if (tiles)
    std::printf(
        "Tiles: PSNR %s dB over the pixels one window covers (%.1f%%), %s dB over the seams, where "
        "windows overlap (%.1f%%); means over images\n",
        cell(mean.psnr_interior, "%.3f").c_str(), 100 * share(tiles->interior),
        cell(mean.psnr_seams, "%.3f").c_str(), 100 * share(tiles->seams));
  for (const auto& note : notes) std::printf("note: %s\n", note.c_str());

  if (!o.save_bicubic.empty()) save_bicubic(o, bicubic_images);
  if (!o.json.empty()) {
    nlohmann::ordered_json j;
    j["pred"] = o.pred;
    j["truth"] = o.truth;
    j["lowres"] = o.lowres.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(o.lowres);
    j["count"] = n;
    j["mean"] = {{"psnr", number(mean.psnr)},
                 {"ssim", number(mean.ssim)},
                 {"consistency", number(mean.consistency)},
                 {"bicubic_psnr", number(mean.bicubic_psnr)},
                 {"bicubic_ssim", number(mean.bicubic_ssim)}};
    if (tiles) {
      j["mean"]["psnr_interior"] = number(mean.psnr_interior);
      j["mean"]["psnr_seams"] = number(mean.psnr_seams);
      j["tile_coverage"] = {{"map", o.tile_coverage},
                            {"interior_share", share(tiles->interior)},
                            {"seam_share", share(tiles->seams)}};
    }
    j["images"] = nlohmann::ordered_json::array();
    for (const Row& r : rows)
      j["images"].push_back({{"name", r.name},
                             {"psnr", number(r.psnr)},
                             {"ssim", number(r.ssim)},
                             {"consistency", number(r.consistency)},
                             {"bicubic_psnr", number(r.bicubic_psnr)},
                             {"bicubic_ssim", number(r.bicubic_ssim)}});
    if (tiles)
      for (size_t i = 0; i < rows.size(); ++i) {
        j["images"][i]["psnr_interior"] = number(rows[i].psnr_interior);
        j["images"][i]["psnr_seams"] = number(rows[i].psnr_seams);
      }
    j["conventions"] = {{"psnr",
                         "10 log10(255^2 / MSE) over all pixels and channels of uint8 images, no border "
                         "crop; \"inf\" for identical images"},
                        {"ssim",
                         "Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255, "
                         "population covariance, valid positions only, mean over channels"},
                        {"consistency",
                         "MSE in [0, 1] between the antialiased-bicubic-downsampled output and the "
                         "low-res input"}};
    std::ofstream out(o.json);
    IRIS_CHECK(out.good(), "eval: cannot write '", o.json, "'");
    out << j.dump(2) << "\n";
    out.close();
    IRIS_CHECK(out.good(), "eval: writing '", o.json, "' failed");
    std::printf("wrote %s\n", o.json.c_str());
  }
  if (board.active()) {
    const std::string about = with_commas(n) + " images of '" + o.pred + "' scored against '" + o.truth +
                              "'" + (low ? " with the low-res inputs '" + o.lowres + "'" : std::string()) +
                              ".";
    std::printf("%s\n", board
                            .write({{"psnr", mean.psnr},
                                    {"ssim", mean.ssim},
                                    {"consistency", mean.consistency},
                                    {"bicubic_psnr", mean.bicubic_psnr},
                                    {"bicubic_ssim", mean.bicubic_ssim}},
                                   about)
                            .c_str());
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto opts = std::make_shared<EvalOptions>();
  auto* cmd =
      app.add_subcommand("eval", "PSNR, SSIM and consistency of super-resolved images against references");
  cmd->footer(
      "PATH: an image file (PNG, JPEG), a folder of them (image files are matched to a folder by "
      "name), an HDF5 file (dataset 'images', or PATH:NAME, e.g. samples.h5:lowres) or a shard folder "
      "(PATH:lowres_<h> for low-res images). Other pairs are matched by position; an HDF5 or shard "
      "reference may be longer (its first N images are used).\n"
      "PSNR: MAX 255 on uint8, all channels, no border crop. SSIM: Wang et al. 2004, 11x11 Gaussian "
      "window (sigma 1.5), mean over channels. Consistency: MSE in [0, 1] between the bicubic-"
      "downsampled output and the low-res input (SR3).\n"
      "TensorBoard: the means as <tag>/psnr, <tag>/ssim, ... (tag eval). When --pred is iris sample's "
      "output (its folder, or samples.h5) from a checkpoint RUN/checkpoints/<file> of a run that logs to "
      "TensorBoard, they go to RUN/tensorboard at the checkpoint's step, beside the training curves; "
      "--tensorboard DIR and --step N choose, --no-tensorboard writes none.");
  cmd->add_option("--pred", opts->pred, "the model's outputs")->type_name("PATH")->required();
  cmd->add_option("--truth", opts->truth, "the high-resolution references")->type_name("PATH")->required();
  cmd->add_option("--lowres", opts->lowres,
                  "the low-resolution inputs (adds SR3's consistency and the bicubic-upsampling baseline)")
      ->type_name("PATH");
  cmd->add_option("--json", opts->json, "also write the per-image values and means to this JSON file")
      ->type_name("FILE");
  cmd->add_flag("--quiet,-q", opts->quiet, "print only the means, not a line per image");
  add_score_board_options(*cmd, opts->tensorboard);
  cmd->add_option("--tile-coverage", opts->tile_coverage,
                  "a tiled run's window coverage map (samples.h5, i.e. samples.h5:tile_coverage, or "
                  "cascade.h5:stage_<i>_tile_coverage): PSNR also over the seams, where windows overlap, and "
                  "over the rest")
      ->type_name("PATH");
  cmd->add_option("--save-bicubic", opts->save_bicubic,
                  "write the bicubic baseline's images (and --pred's labels) to this HDF5 file, to score it "
                  "like a method (iris fd, or iris eval --pred FILE)")
      ->type_name("FILE");
  cmd->callback([opts] { run_eval(*opts); });
}

}  // namespace iris::tools
