// `iris shard`: converts data sets to shard folders (data/shard.h).
//   iris shard fashion-mnist --out DIR   the Debian package's IDX files -> DIR/train, DIR/test; idempotent
//   iris shard images SRC --out DIR ...  a folder of images, one subfolder per class -> DIR/train, DIR/val
//   iris shard pairs --hr DIR --lr DIR --out DIR   real low-/high-res pairs matched by name -> DIR
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "data/image_pairs.h"
#include "data/shard.h"
#include "framework/core/error.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/progress.h"

namespace iris::tools {

namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<int>& v, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
  return s.empty() ? "none" : s;
}

int64_t folder_bytes(const data::ShardSet& set) {
  int64_t b = 0;
  for (const auto& s : set.shards()) b += static_cast<int64_t>(fs::file_size(fs::path(set.dir()) / s.file));
  return b;
}

// "28x28x1, 10 classes, low-res 7x7 and 14x14"
std::string describe_spec(const data::ShardSpec& s) {
  std::string out =
      std::to_string(s.height) + "x" + std::to_string(s.width) + "x" + std::to_string(s.channels);
  if (s.has_labels) out += ", " + std::to_string(s.class_names.size()) + " classes";
  if (!s.lowres_sizes.empty()) {
    out += ", low-res ";
    for (size_t i = 0; i < s.lowres_sizes.size(); ++i)
      out += (i ? (i + 1 == s.lowres_sizes.size() ? " and " : ", ") : "") +
             std::to_string(s.lowres_sizes[i]) + "x" + std::to_string(s.lowres_width(s.lowres_sizes[i]));
  }
  return out;
}

std::string summary_line(const data::ShardSet& set) {
  return set.dir() + ": " + with_commas(set.size()) + " samples (" + describe_spec(set.spec()) + ") in " +
         std::to_string(set.shards().size()) + " shard" + (set.shards().size() == 1 ? "" : "s") + ", " +
         human_bytes(static_cast<double>(folder_bytes(set)));
}

// ---- fashion-mnist ----------------------------------------------------------------------------------------

struct FashionOptions {
  std::string out, src;
  std::vector<int> lowres{7, 14};
  int64_t limit = -1, samples_per_shard = 10000;
  bool overwrite = false, verify = false;
};

// What differs between an existing set and the one these options would write ("" when they agree).
std::string mismatch(const data::ShardSet& set, const data::ShardSpec& want, int64_t count,
                     int64_t per_shard) {
  const data::ShardSpec& got = set.spec();
  std::vector<std::string> diffs;
  if (got.height != want.height || got.width != want.width || got.channels != want.channels)
    diffs.push_back("images " + describe_spec(got) + ", requested " + describe_spec(want));
  if (got.lowres_sizes != want.lowres_sizes)
    diffs.push_back("low-res sizes " + join(got.lowres_sizes) + ", requested " + join(want.lowres_sizes));
  if (got.has_labels != want.has_labels || got.class_names != want.class_names)
    diffs.push_back("other labels or class names");
  if (got.source != want.source)
    diffs.push_back("source '" + got.source + "', requested '" + want.source + "'");
  if (set.size() != count)
    diffs.push_back(with_commas(set.size()) + " samples, requested " + with_commas(count) + " (--limit)");
  // The shard layout these options give: full shards of per_shard samples, then the rest.
  std::vector<int64_t> layout, have;
  for (int64_t left = count; left > 0; left -= per_shard) layout.push_back(std::min(left, per_shard));
  for (const auto& s : set.shards()) have.push_back(s.count);
  if (set.size() == count && have != layout)
    diffs.push_back(std::to_string(have.size()) + " shards, requested " + std::to_string(layout.size()) +
                    " (--samples-per-shard)");
  std::string out;
  for (size_t i = 0; i < diffs.size(); ++i) out += (i ? "; " : "") + diffs[i];
  return out;
}

void run_fashion(const FashionOptions& o) {
  IRIS_CHECK(o.samples_per_shard > 0, "shard fashion-mnist: --samples-per-shard must be positive, got ",
             o.samples_per_shard);
  IRIS_CHECK(o.limit == -1 || o.limit > 0, "shard fashion-mnist: --limit must be positive, got ", o.limit);
  const std::string given = o.src.empty() ? data::default_fashion_mnist_dir() : o.src;
  for (const std::string split : {"train", "test"})
    for (const std::string& f :
         {data::fashion_mnist_images_file(given, split), data::fashion_mnist_labels_file(given, split)})
      IRIS_CHECK(
          fs::is_regular_file(f), "shard fashion-mnist: no Fashion-MNIST in '", given, "' (missing '", f,
          "'). Install the Debian package dataset-fashion-mnist, set IRIS_FASHION_MNIST_DIR, or pass --src");
  // One spelling of the source folder, so that re-runs compare equal however the folder was named.
  const std::string src = fs::weakly_canonical(fs::absolute(given)).string();

  data::FashionMnistShardOptions fo;
  fo.lowres_sizes = o.lowres;
  fo.samples_per_shard = o.samples_per_shard;
  fo.limit = o.limit;
  fo.progress_every = 1000;

  // Decide per split: complete and the same (keep), absent or unfinished (write), different (replace only
  // with --overwrite). Everything is decided before anything is written.
  struct Plan {
    std::string split, dir;
    bool write = false;
    std::string problem;  // why an existing set cannot be kept
  };
  std::vector<Plan> plans;
  for (const std::string split : {"train", "test"}) {
    Plan p;
    p.split = split;
    p.dir = (fs::path(o.out) / split).string();
    const data::ShardSpec want = data::fashion_mnist_spec(src, split, o.lowres);
    try {
      want.validate();
    } catch (const Error& e) {
      IRIS_THROW("shard fashion-mnist: --lowres ", join(o.lowres), ": ", e.message());
    }
    const int64_t count = data::fashion_mnist_count(src, split, o.limit);
    if (!fs::exists(fs::path(p.dir) / data::kShardIndexFile)) {
      p.write = true;  // nothing there, or shards of an interrupted run without an index
    } else {
      try {
        const data::ShardSet set = data::ShardSet::open(p.dir, {.verify_checksums = o.verify});
        p.problem = mismatch(set, want, count, o.samples_per_shard);
      } catch (const Error& e) {
        p.problem = "it is not a valid shard set: " + e.message();
      }
      p.write = !p.problem.empty();
    }
    plans.push_back(p);
  }
  if (!o.overwrite) {
    std::string refusals;
    for (const Plan& p : plans)
      if (!p.problem.empty()) refusals += "\n  '" + p.dir + "' holds a different shard set: " + p.problem;
    IRIS_CHECK(refusals.empty(), "shard fashion-mnist: '", o.out,
               "' already holds shards made otherwise:", refusals,
               "\npass --overwrite to replace them, or choose another --out");
  }
  if (std::none_of(plans.begin(), plans.end(), [](const Plan& p) { return p.write; })) {
    std::printf("iris shard fashion-mnist: '%s' already holds these shards (checked%s); nothing to do\n",
                o.out.c_str(), o.verify ? ", checksums verified" : "");
    for (const Plan& p : plans) std::printf("  %s\n", summary_line(data::ShardSet::open(p.dir)).c_str());
    return;
  }
  std::printf("iris shard fashion-mnist: %s -> %s (low-res %s, %s per shard%s)\n", src.c_str(), o.out.c_str(),
              join(o.lowres).c_str(), with_commas(o.samples_per_shard).c_str(),
              o.limit > 0 ? (", at most " + with_commas(o.limit) + " per split").c_str() : "");
  std::fflush(stdout);
  for (const Plan& p : plans) {
    if (!p.write) {
      std::printf("  %s: already complete, kept\n", p.dir.c_str());
      continue;
    }
    // The bar starts once the IDX files are read (the first call, with 0), so that the rate and the time
    // left are those of the conversion itself.
    std::unique_ptr<Progress> bar;
    fo.progress = [&](const std::string&, int64_t done, int64_t total) {
      if (!bar) bar = std::make_unique<Progress>(p.split, total);
      bar->set(done);
    };
    // overwrite: replace a different set (allowed above) or remove an interrupted run's stray shards.
    fo.overwrite = true;
    data::write_fashion_mnist_split(src, p.split, p.dir, fo);
    if (bar) bar->finish();
  }
  std::printf("done:\n");
  for (const Plan& p : plans) std::printf("  %s\n", summary_line(data::ShardSet::open(p.dir)).c_str());
}

// ---- images -----------------------------------------------------------------------------------------------

struct ImagesOptions {
  std::string src, out, crop = "center";
  int size = 0, channels = 3, threads = 0;
  std::vector<int> lowres;
  double val_fraction = 0.05;
  uint64_t seed = 0;
  int64_t samples_per_shard = 1000;
  int64_t max_pixels = data::kDefaultMaxImagePixels;
  bool overwrite = false, strict = false;
};

void run_images(const ImagesOptions& o) {
  data::ImageFolderShardOptions io;
  io.size = o.size;
  io.lowres_sizes = o.lowres;
  io.crop = data::crop_mode_from_name(o.crop);
  io.channels = o.channels;
  io.val_fraction = o.val_fraction;
  io.seed = o.seed;
  io.threads = o.threads;
  io.samples_per_shard = o.samples_per_shard;
  io.overwrite = o.overwrite;
  io.strict = o.strict;
  io.max_pixels = o.max_pixels;
  IRIS_CHECK(o.size > 0, "shard images: --size must be positive, got ", o.size);
  for (int h : o.lowres)
    IRIS_CHECK(h > 0 && h < o.size, "shard images: low-res size ", h, " must be in [1, ", o.size,
               ") (--lowres)");
  IRIS_CHECK(o.val_fraction >= 0 && o.val_fraction < 1,
             "shard images: --val-fraction must be in [0, 1), got ", o.val_fraction);
  IRIS_CHECK(o.samples_per_shard > 0, "shard images: --samples-per-shard must be positive");
  if (!o.overwrite) {
    for (const char* split : {"train", "val"}) {
      const fs::path index = fs::path(o.out) / split / data::kShardIndexFile;
      IRIS_CHECK(!fs::exists(index), "shard images: '", (fs::path(o.out) / split).string(),
                 "' already holds a shard set; pass --overwrite to replace it, or choose another --out");
    }
  }
  const data::ImageFolder folder = data::scan_image_folder(o.src);
  std::printf("iris shard images: %s images in %s (%s)%s -> %s\n",
              with_commas(static_cast<int64_t>(folder.files.size())).c_str(), o.src.c_str(),
              folder.class_names.empty() ? "no class subfolders: unlabelled"
                                         : (std::to_string(folder.class_names.size()) + " classes").c_str(),
              folder.ignored > 0 ? (", " + with_commas(folder.ignored) + " other files ignored").c_str() : "",
              o.out.c_str());
  std::printf("  %s crop to %dx%s, %d channel%s, low-res %s, val fraction %g, seed %llu, %s per shard\n",
              o.crop.c_str(), o.size, o.crop == "none" ? "W (aspect kept)" : std::to_string(o.size).c_str(),
              o.channels, o.channels == 1 ? "" : "s", join(o.lowres).c_str(),
              o.val_fraction, static_cast<unsigned long long>(o.seed),
              with_commas(o.samples_per_shard).c_str());
  std::fflush(stdout);
  Progress bar("images", static_cast<int64_t>(folder.files.size()));
  io.progress = [&](int64_t done, int64_t) { bar.set(done); };
  io.on_skip = [&](const std::string& path, const std::string& error) {
    // Name the file even when the decoder's message does not.
    bar.message("skipped: " + (error.find(path) == std::string::npos ? "'" + path + "': " + error : error));
  };
  const data::ImageFolderShardReport r = data::write_image_folder_shards(folder, o.out, io);
  bar.finish();
  std::printf("done:\n");
  std::printf("  %s\n", summary_line(data::ShardSet::open((fs::path(o.out) / "train").string())).c_str());
  if (r.val > 0)
    std::printf("  %s\n", summary_line(data::ShardSet::open((fs::path(o.out) / "val").string())).c_str());
  if (r.skipped > 0)
    std::printf("  skipped %s unreadable file%s (listed above; --strict makes this an error)\n",
                with_commas(r.skipped).c_str(), r.skipped == 1 ? "" : "s");
  if (r.upscaled > 0)
    std::printf("  %s image%s smaller than %d pixels on the short side were upsampled\n",
                with_commas(r.upscaled).c_str(), r.upscaled == 1 ? " was" : "s", o.size);
}

// ---- pairs ------------------------------------------------------------------------------------------------

struct PairsOptions {
  std::string hr, lr, out;
  data::PairShardOptions shard;
};

void run_pairs(PairsOptions o) {
  std::printf("iris shard pairs: high-res %s + low-res %s -> %s\n", o.hr.c_str(), o.lr.c_str(),
              o.out.c_str());
  std::fflush(stdout);
  // Every pair is checked (one pass) before the shards are written (a second pass).
  std::unique_ptr<Progress> bar;
  o.shard.progress = [&](int64_t done, int64_t total) {
    if (!bar)
      bar = std::make_unique<Progress>("pairs checked + written", total, ProgressOptions{.unit = "pair"});
    bar->set(done);
  };
  const data::PairShardReport r = data::write_pair_shards(o.hr, o.lr, o.out, o.shard);
  if (bar) bar->finish();
  std::printf("done: %s pairs, scale factor %d\n  %s\n", with_commas(r.pairs).c_str(), r.factor,
              summary_line(data::ShardSet::open(o.out)).c_str());
}

}  // namespace

void register_shard(CLI::App& app) {
  auto* shard = app.add_subcommand("shard", "Convert a data set to shard folders (HDF5 shards + index.json)");
  shard->require_subcommand(1);

  auto fo = std::make_shared<FashionOptions>();
  auto* fm = shard->add_subcommand("fashion-mnist",
                                   "Fashion-MNIST (Debian package dataset-fashion-mnist) -> OUT/train and "
                                   "OUT/test. Returns at once when OUT "
                                   "already holds the same shards.");
  fm->add_option("--out", fo->out, "output folder (gets train/ and test/)")->type_name("DIR")->required();
  fm->add_option("--src", fo->src,
                 "folder of the IDX .gz files (default: $IRIS_FASHION_MNIST_DIR, else "
                 "/usr/share/datasets/fashion-mnist)")
      ->type_name("DIR");
  fm->add_option("--lowres", fo->lowres, "low-res sizes to store, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  fm->add_option("--limit", fo->limit, "at most this many samples per split (default: all)");
  fm->add_option("--samples-per-shard", fo->samples_per_shard, "samples per shard file")
      ->capture_default_str();
  fm->add_flag("--overwrite", fo->overwrite, "replace existing shards made with other options");
  fm->add_flag("--verify", fo->verify, "when the shards exist, also check every dataset's CRC-32C");
  fm->callback([fo] { run_fashion(*fo); });

  auto io = std::make_shared<ImagesOptions>();
  auto* im = shard->add_subcommand(
      "images",
      "A folder of PNG/JPEG images with one subfolder per class (ImageNet layout) -> OUT/train and OUT/val, "
      "with antialiased bicubic low-res copies");
  im->add_option("src", io->src, "image folder (class subfolders; labels follow their sorted names)")
      ->required()
      ->check(CLI::ExistingDirectory);
  im->add_option("--out", io->out, "output folder (gets train/ and val/)")->type_name("DIR")->required();
  im->add_option("--size", io->size, "image size S (S x S; --crop none: S high)")->required();
  im->add_option("--lowres", io->lowres, "low-res sizes, comma-separated (e.g. 16 or 16,32)")
      ->required()
      ->delimiter(',');
  im->add_option(
        "--crop", io->crop,
        "center: short side resized to S (bicubic), centred S x S crop; largest: the largest centred "
        "square, area-resampled to S (SR3 on ImageNet); none: the whole image, S high, its width in "
        "proportion (all images of the folder must come out the same size: for scoring at their aspect)")
      ->check(CLI::IsMember({"center", "largest", "none"}))
      ->capture_default_str();
  im->add_option("--channels", io->channels, "3 (RGB) or 1 (grey)")
      ->check(CLI::IsMember({1, 3}))
      ->capture_default_str();
  im->add_option("--val-fraction", io->val_fraction, "fraction of each class held out for val/ (0: none)")
      ->capture_default_str();
  im->add_option("--seed", io->seed, "seed of the train/val split and of the sample order")
      ->capture_default_str();
  im->add_option("--threads", io->threads, "decoding threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  im->add_option("--samples-per-shard", io->samples_per_shard, "samples per shard file")
      ->capture_default_str();
  im->add_flag("--overwrite", io->overwrite, "replace existing shard sets in OUT");
  im->add_option("--max-pixels", io->max_pixels,
                 "refuse images whose header claims more pixels (read before decoding)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  im->add_flag("--strict", io->strict, "stop at the first unreadable image (default: report and skip it)");
  im->callback([io] { run_images(*io); });

  auto po = std::make_shared<PairsOptions>();
  auto* pa = shard->add_subcommand(
      "pairs",
      "Real low-/high-res image pairs -> OUT: the high-res images, with their low-res partners stored as the "
      "low-res copies (instead of resizes). Files pair by name; every pair must have one integer scale "
      "factor; a file without partner, another ratio or an unreadable file is an error naming it");
  pa->add_option("--hr", po->hr, "folder of the high-res images (.png, .jpg, .jpeg)")
      ->type_name("DIR")
      ->required()
      ->check(CLI::ExistingDirectory);
  pa->add_option("--lr", po->lr, "folder of their low-res partners, named alike")
      ->type_name("DIR")
      ->required()
      ->check(CLI::ExistingDirectory);
  pa->add_option("--out", po->out, "output shard folder")->type_name("DIR")->required();
  pa->add_option("--lr-suffix", po->shard.lr_suffix,
                 "the low-res names end with this before the extension (DIV2K: x4 pairs 0001x4.png with "
                 "0001.png)");
  pa->add_option("--size", po->shard.size,
                 "store the centred S x S window of each high-res image and the same region of its partner "
                 "(S a multiple of the factor; default: the images as they are, all of one size)")
      ->type_name("S");
  pa->add_option("--channels", po->shard.channels, "3 (RGB) or 1 (grey)")
      ->check(CLI::IsMember({1, 3}))
      ->capture_default_str();
  pa->add_option("--threads", po->shard.threads, "decoding threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  pa->add_option("--samples-per-shard", po->shard.samples_per_shard, "samples per shard file")
      ->capture_default_str();
  pa->add_flag("--overwrite", po->shard.overwrite, "replace a shard set already in OUT");
  pa->add_option("--max-pixels", po->shard.max_pixels,
                 "refuse images whose header claims more pixels (read before decoding)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  pa->callback([po] { run_pairs(*po); });
}

}  // namespace iris::tools
