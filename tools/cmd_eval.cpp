// `iris eval --pred PATH --truth PATH [--lowres PATH] [--json FILE]`: PSNR, SSIM and (with the low-res
// inputs) SR3's consistency of super-resolved images against the references (conventions: data/metrics.h).
//
// PATH is an image file (PNG or JPEG), a folder of them, an HDF5 file with a uint8 [N, H, W, C] dataset
// (default "images"; PATH:NAME picks another, e.g. samples.h5:lowres or shard-00000.h5:lowres_7), or a shard
// folder (images, or PATH:lowres_<h>). Image files against a folder are matched by file name; anything else
// by position (folders in sorted name order). An indexed reference (HDF5, shards) may hold more images than
// the prediction: the first N are used, and this is said.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "data/image.h"
#include "data/image_folder.h"
#include "data/metrics.h"
#include "data/resize.h"
#include "data/shard.h"
#include "framework/core/error.h"
#include "framework/cpu/parallel.h"
#include "framework/io/hdf5.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/progress.h"

namespace iris::tools {

namespace fs = std::filesystem;

namespace {

// A sequence of images read on demand (memory stays bounded for large sets).
class Source {
 public:
  virtual ~Source() = default;
  virtual int64_t size() const = 0;
  virtual data::Image image(int64_t i) const = 0;
  virtual std::string name(int64_t i) const { return "#" + std::to_string(i); }
  virtual bool by_name() const { return false; }  // a folder: matched by file name
  virtual bool named() const { return false; }    // image files: their names can be looked up in a folder
  virtual bool indexed() const { return false; }  // HDF5 / shards: a longer reference is allowed
  std::string what;                               // the path as given, for messages
};

class FileSource : public Source {
 public:
  FileSource(std::string what_, std::vector<std::string> paths, std::vector<std::string> names, bool folder)
      : paths_(std::move(paths)), names_(std::move(names)), folder_(folder) {
    what = std::move(what_);
  }
  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  data::Image image(int64_t i) const override { return data::read_image(paths_[static_cast<size_t>(i)]); }
  std::string name(int64_t i) const override { return names_[static_cast<size_t>(i)]; }
  bool by_name() const override { return folder_; }
  bool named() const override { return true; }
  // The files of this folder with the given names (in that order); throws listing the missing ones.
  std::unique_ptr<Source> matching(const std::vector<std::string>& names, const std::string& role) const {
    std::map<std::string, std::string> have;
    for (size_t i = 0; i < names_.size(); ++i) have[names_[i]] = paths_[i];
    std::vector<std::string> paths, missing;
    for (const auto& n : names) {
      auto it = have.find(n);
      if (it == have.end())
        missing.push_back(n);
      else
        paths.push_back(it->second);
    }
    if (!missing.empty()) {
      std::string list;
      for (size_t i = 0; i < std::min<size_t>(5, missing.size()); ++i) list += (i ? ", " : "") + missing[i];
      if (missing.size() > 5) list += ", ...";
      IRIS_THROW("eval: the ", role, " folder '", what, "' has no image named like ", missing.size(),
                 " of the predictions (", list, ")");
    }
    return std::make_unique<FileSource>(what, paths, names, true);
  }

 private:
  std::vector<std::string> paths_, names_;
  bool folder_;
};

class H5Source : public Source {
 public:
  H5Source(std::string what_, const std::string& path, const std::string& dataset) {
    what = std::move(what_);
    file_ = h5::File::open(path);
    const h5::Group root = file_.root();
    IRIS_CHECK(root.has(dataset), "eval: '", path, "' has no dataset '", dataset,
               "' (it has: ", children(root), ")");
    ds_ = root.open_dataset(dataset);
    const Shape& s = ds_.shape();
    IRIS_CHECK(s.size() == 4 && (s[3] == 1 || s[3] == 3), "eval: '", path, "' dataset '", dataset,
               "' must be images [N, H, W, C] with C = 1 or 3, got ", shape_str(s));
    IRIS_CHECK(ds_.dtype() == DType::u8 || ds_.dtype() == DType::f32 || ds_.dtype() == DType::f64, "eval: '",
               path, "' dataset '", dataset, "' must be uint8 (or floats in [-1, 1]), got ",
               dtype_name(ds_.dtype()));
  }
  int64_t size() const override { return ds_.shape()[0]; }
  bool indexed() const override { return true; }
  data::Image image(int64_t i) const override {
    Tensor row = ds_.read_rows(i, 1);
    if (row.dtype() != DType::u8) row = data::float_to_u8(row);  // rounded as when saved to PNG
    return data::unstack_images(row)[0];
  }
  static std::string children(const h5::Group& g) {
    std::string s;
    for (const auto& c : g.children()) s += (s.empty() ? "" : ", ") + c;
    return s;
  }

 private:
  h5::File file_;
  h5::Dataset ds_;
};

class ShardSource : public Source {
 public:
  ShardSource(std::string what_, const std::string& dir, const std::string& dataset)
      : set_(data::ShardSet::open(dir)) {
    what = std::move(what_);
    lowres_ = shard_lowres_height(set_, dataset, "eval");
  }
  int64_t size() const override { return set_.size(); }
  bool indexed() const override { return true; }
  data::Image image(int64_t i) const override { return lowres_ ? set_.lowres(i, lowres_) : set_.image(i); }
  const data::ShardSet& set() const { return set_; }

 private:
  data::ShardSet set_;
  int lowres_ = 0;
};

// role: "prediction", "reference" or "low-res"; the low-res default dataset is looked up by name.
std::unique_ptr<Source> open_source(const std::string& arg, const std::string& role) {
  auto [path, dataset] = split_dataset(arg);
  IRIS_CHECK(fs::exists(path), "eval: ", role, " path '", path, "' does not exist");
  if (fs::is_directory(path)) {
    if (fs::exists(fs::path(path) / data::kShardIndexFile)) {
      if (dataset.empty() && role == "low-res") {
        const data::ShardSet set = data::ShardSet::open(path);
        const auto& sizes = set.spec().lowres_sizes;
        IRIS_CHECK(sizes.size() == 1, "eval: shard folder '", path, "' has ", sizes.size(),
                   " low-res sizes; name one as ", path, ":lowres_<h>");
        dataset = data::lowres_dataset_name(sizes[0]);
      }
      return std::make_unique<ShardSource>(arg, path, dataset.empty() ? "images" : dataset);
    }
    IRIS_CHECK(dataset.empty(), "eval: '", path, "' is a folder of images; ':", dataset,
               "' has no meaning there");
    std::vector<std::string> paths, names;
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && data::is_image_file_name(e.path().filename().string()))
        paths.push_back(e.path().string());
    std::sort(paths.begin(), paths.end());
    IRIS_CHECK(!paths.empty(), "eval: the ", role, " folder '", path, "' holds no PNG or JPEG file");
    for (const auto& p : paths) names.push_back(fs::path(p).filename().string());
    return std::make_unique<FileSource>(arg, paths, names, true);
  }
  if (h5::File::is_hdf5(path)) {
    if (dataset.empty()) {
      dataset = "images";
      if (role == "low-res") {
        const h5::File f = h5::File::open(path);
        const auto kids = f.root().children();
        std::vector<std::string> lows;
        for (const auto& k : kids)
          if (k == "lowres" || k.rfind("lowres_", 0) == 0) lows.push_back(k);
        IRIS_CHECK(lows.size() <= 1, "eval: '", path, "' has several low-res datasets (",
                   H5Source::children(f.root()), "); name one as ", path, ":<dataset>");
        if (!lows.empty()) dataset = lows[0];
      }
    }
    return std::make_unique<H5Source>(arg, path, dataset);
  }
  IRIS_CHECK(dataset.empty() && data::is_image_file_name(path), "eval: ", role, " '", path,
             "' is not an image file (.png, .jpg), a folder of them, an HDF5 file or a shard folder");
  return std::make_unique<FileSource>(arg, std::vector<std::string>{path},
                                      std::vector<std::string>{fs::path(path).filename().string()}, false);
}

// The reference (or low-res) images for the predictions: by name for two folders, else by position.
std::unique_ptr<Source> align(std::unique_ptr<Source> ref, const Source& pred, const std::string& role,
                              std::vector<std::string>& notes) {
  if (pred.named() && ref->by_name()) {
    std::vector<std::string> names;
    for (int64_t i = 0; i < pred.size(); ++i) names.push_back(pred.name(i));
    return static_cast<const FileSource&>(*ref).matching(names, role);
  }
  if (ref->size() == pred.size()) return ref;
  IRIS_CHECK(ref->indexed() && ref->size() > pred.size(), "eval: ", pred.size(), " predictions ('", pred.what,
             "') but ", ref->size(), " ", role, " images ('", ref->what, "')");
  notes.push_back("the " + role + " set '" + ref->what + "' holds " + with_commas(ref->size()) +
                  " images; its first " + with_commas(pred.size()) + " are used");
  return ref;
}

struct Row {
  std::string name;
  double psnr = 0, ssim = NAN, consistency = NAN;
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
  std::string pred, truth, lowres, json, save_bicubic;
  bool quiet = false;
};

// --save-bicubic: the bicubic baseline as a method's output, for the scores eval does not compute (iris fd's
// Fréchet distance and classifier accuracy, or eval's consistency when given as --pred): an HDF5 file with
// uint8 `images` [N, H, W, C], plus the `labels` of --pred when it is an HDF5 file that has them.
void save_bicubic(const EvalOptions& o, const std::vector<data::Image>& images) {
  h5::File f = h5::File::create(o.save_bicubic);
  h5::Group root = f.root();
  root.write_tensor("images", data::stack_images(images));
  const std::string path = split_dataset(o.pred).first;
  if (fs::is_regular_file(path) && fs::path(path).extension() == ".h5") {
    const h5::File src = h5::File::open(path);
    if (src.root().has("labels")) root.write_tensor("labels", src.root().read_tensor("labels"));
  }
  std::printf("wrote %s (the bicubic baseline, %s images)\n", o.save_bicubic.c_str(),
              with_commas(static_cast<int64_t>(images.size())).c_str());
}

void run_eval(const EvalOptions& o) {
  std::vector<std::string> notes;
  const std::unique_ptr<Source> pred = open_source(o.pred, "prediction");
  const std::unique_ptr<Source> truth = align(open_source(o.truth, "reference"), *pred, "reference", notes);
  std::unique_ptr<Source> low;
  if (!o.lowres.empty()) low = align(open_source(o.lowres, "low-res"), *pred, "low-res", notes);

  const int64_t n = pred->size();
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
        r.name = pred->name(i);
        const data::Image p = pred->image(i), t = truth->image(i);
        IRIS_CHECK(p.height == t.height && p.width == t.width && p.channels == t.channels, "eval: ", r.name,
                   ": the prediction is ", p.str(), " but the reference ('", truth->what, "' ",
                   truth->name(i), ") is ", t.str());
        r.psnr = data::psnr(p, t);
        if (p.height >= data::kSsimWindow && p.width >= data::kSsimWindow) r.ssim = data::ssim(p, t);
        if (low) {
          const data::Image l = low->image(i);
          IRIS_CHECK(l.channels == p.channels && l.height <= p.height && l.width <= p.width, "eval: ", r.name,
                     ": the low-res input ('", low->what, "' ", low->name(i), ") is ", l.str(),
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
  double sp = 0, ss = 0, sc = 0, bp = 0, bs = 0;
  for (const Row& r : rows) {
    sp += r.psnr;
    ss += r.ssim;
    sc += r.consistency;
    bp += r.bicubic_psnr;
    bs += r.bicubic_ssim;
  }
  mean.bicubic_psnr = low ? bp / static_cast<double>(n) : NAN;
  mean.bicubic_ssim = low && !small ? bs / static_cast<double>(n) : NAN;
  mean.psnr = sp / static_cast<double>(n);
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
    j["images"] = nlohmann::ordered_json::array();
    for (const Row& r : rows)
      j["images"].push_back({{"name", r.name},
                             {"psnr", number(r.psnr)},
                             {"ssim", number(r.ssim)},
                             {"consistency", number(r.consistency)},
                             {"bicubic_psnr", number(r.bicubic_psnr)},
                             {"bicubic_ssim", number(r.bicubic_ssim)}});
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
      "downsampled output and the low-res input (SR3).");
  cmd->add_option("--pred", opts->pred, "the model's outputs")->type_name("PATH")->required();
  cmd->add_option("--truth", opts->truth, "the high-resolution references")->type_name("PATH")->required();
  cmd->add_option("--lowres", opts->lowres,
                  "the low-resolution inputs (adds SR3's consistency and the bicubic-upsampling baseline)")
      ->type_name("PATH");
  cmd->add_option("--json", opts->json, "also write the per-image values and means to this JSON file")
      ->type_name("FILE");
  cmd->add_flag("--quiet,-q", opts->quiet, "print only the means, not a line per image");
  cmd->add_option("--save-bicubic", opts->save_bicubic,
                  "write the bicubic baseline's images (and --pred's labels) to this HDF5 file, to score it "
                  "like a method (iris fd, or iris eval --pred FILE)")
      ->type_name("FILE");
  cmd->callback([opts] { run_eval(*opts); });
}

}  // namespace iris::tools
