// Image folders -> shard folders. The conversion is a small pipeline: worker threads decode, crop and
// downsample files in any order into a window of slots; the calling thread takes the results in file order
// and appends them to the shard writers, so the output does not depend on the thread count or timing.
#include "data/image_folder.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include "data/resize.h"
#include "data/shard.h"
#include "framework/core/error.h"
#include "framework/cpu/thread_pool.h"

namespace iris::data {

namespace fs = std::filesystem;

// ---- listing ----------------------------------------------------------------------------------------------

bool is_image_file_name(const std::string& name) {
  const auto dot = name.find_last_of('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot);
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

namespace {
bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// Image files at any depth below dir (hidden entries skipped), sorted; other files are counted.
std::vector<std::string> list_images(const fs::path& dir, bool recursive, int64_t& ignored) {
  std::vector<std::string> out;
  auto take = [&](const fs::directory_entry& e) {
    if (!e.is_regular_file()) return;
    if (is_image_file_name(e.path().filename().string()))
      out.push_back(e.path().string());
    else
      ++ignored;
  };
  std::error_code ec;
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (hidden(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      take(*it);
    }
  } else {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (!hidden(it->path())) take(*it);
  }
  IRIS_CHECK(!ec, "image folder: cannot list '", dir.string(), "': ", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

ImageFolder scan_image_folder(const std::string& root) {
  IRIS_CHECK(fs::is_directory(root), "image folder '", root, "': no such folder");
  ImageFolder f;
  f.root = root;
  std::vector<std::string> classes;
  int64_t top_files = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    if (hidden(e.path())) continue;
    if (e.is_directory())
      classes.push_back(e.path().filename().string());
    else if (e.is_regular_file())
      ++top_files;
  }
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) {
    for (auto& p : list_images(root, false, f.ignored)) f.files.push_back({std::move(p), -1});
  } else {
    f.class_names = classes;
    f.ignored += top_files;  // files beside the class folders belong to no class
    for (size_t c = 0; c < classes.size(); ++c)
      for (auto& p : list_images(fs::path(root) / classes[c], true, f.ignored))
        f.files.push_back({std::move(p), static_cast<int32_t>(c)});
  }
  IRIS_CHECK(!f.files.empty(), "image folder '", root, "' holds no PNG or JPEG file (.png, .jpg, .jpeg)",
             classes.empty() ? "" : " in its class subfolders");
  return f;
}

// ---- crops ------------------------------------------------------------------------------------------------

CropMode crop_mode_from_name(const std::string& name) {
  if (name == "center") return CropMode::center;
  if (name == "largest") return CropMode::largest;
  if (name == "none") return CropMode::none;
  IRIS_THROW("unknown crop mode '", name, "' (expected center, largest or none)");
}

const char* crop_mode_name(CropMode mode) {
  return mode == CropMode::center ? "center" : mode == CropMode::largest ? "largest" : "none";
}

Image aspect_resize(const Image& img, int height, int width_multiple) {
  check_image(img, "aspect_resize");
  IRIS_CHECK(height > 0 && width_multiple > 0, "aspect_resize: height and width multiple must be positive, got ",
             height, " and ", width_multiple);
  const double w = static_cast<double>(img.width) * height / img.height;
  const int width = width_multiple * std::max(1, static_cast<int>(std::lround(w / width_multiple)));
  if (img.height == height && img.width == width) return img;
  // Area resampling averages whole source pixels (no ringing) but only shrinks; bicubic otherwise.
  const bool shrinks = height <= img.height && width <= img.width;
  return resize(img, height, width, shrinks ? Filter::area : Filter::bicubic);
}

int lowres_width_multiple(int height, const std::vector<int>& lowres) {
  // Low-res width h * W / height is whole when W is a multiple of height / gcd(height, h).
  int m = 1;
  for (int h : lowres) {
    IRIS_CHECK(h > 0, "lowres_width_multiple: low-res sizes must be positive, got ", h);
    m = std::lcm(m, height / std::gcd(height, h));
  }
  return m;
}

Image square_crop(const Image& img, int size, CropMode mode) {
  check_image(img, "square_crop");
  IRIS_CHECK(size > 0, "square_crop: size must be positive, got ", size);
  IRIS_CHECK(mode != CropMode::none, "square_crop: crop mode none keeps the aspect (use aspect_resize)");
  if (mode == CropMode::largest) {
    const Image sq = center_square_crop(img);
    return sq.height == size ? sq : resize(sq, size, size, Filter::area);
  }
  // Short side to `size`, the long side in proportion (at least `size`), then the centred square.
  const int h = img.height, w = img.width;
  int nh = size, nw = size;
  if (h <= w)
    nw = std::max(size, static_cast<int>(std::lround(static_cast<double>(w) * size / h)));
  else
    nh = std::max(size, static_cast<int>(std::lround(static_cast<double>(h) * size / w)));
  const Image scaled = (nh == h && nw == w) ? img : resize(img, nh, nw, Filter::bicubic);
  return center_crop(scaled, size, size);
}

// ---- split ------------------------------------------------------------------------------------------------

namespace {
// SplitMix64: a tiny generator whose output is fixed by its definition (std::shuffle's is not).
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  void shuffle(std::vector<int64_t>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
};
}  // namespace

FolderSplit split_image_folder(const ImageFolder& folder, double val_fraction, uint64_t seed) {
  IRIS_CHECK(val_fraction >= 0 && val_fraction < 1,
             "image folder split: the validation fraction must be in "
             "[0, 1), got ",
             val_fraction);
  const size_t groups = std::max<size_t>(1, folder.class_names.size());
  std::vector<std::vector<int64_t>> by_class(groups);
  for (size_t i = 0; i < folder.files.size(); ++i) {
    const int32_t l = folder.files[i].label;
    by_class[l < 0 ? 0 : static_cast<size_t>(l)].push_back(static_cast<int64_t>(i));
  }
  SplitMix rng{seed};
  FolderSplit s;
  for (auto& members : by_class) {
    rng.shuffle(members);
    const auto n_val = static_cast<size_t>(std::llround(val_fraction * static_cast<double>(members.size())));
    s.val.insert(s.val.end(), members.begin(), members.begin() + static_cast<std::ptrdiff_t>(n_val));
    s.train.insert(s.train.end(), members.begin() + static_cast<std::ptrdiff_t>(n_val), members.end());
  }
  rng.shuffle(s.train);
  rng.shuffle(s.val);
  return s;
}

// ---- conversion -------------------------------------------------------------------------------------------

namespace {

struct Decoded {
  bool ok = false, upscaled = false;
  Sample sample;
  std::string error;         // why the file was skipped
  std::exception_ptr fatal;  // not a bad file: stop everything (out of memory, ...)
};

Decoded decode(const ImageFile& file, const ImageFolderShardOptions& o) {
  Decoded d;
  try {
    const Image im = to_channels(read_image(file.path, o.max_pixels), o.channels);
    d.upscaled = std::min(im.height, im.width) < o.size;
    d.sample.image = o.crop == CropMode::none
                         ? aspect_resize(im, o.size, lowres_width_multiple(o.size, o.lowres_sizes))
                         : square_crop(im, o.size, o.crop);
    d.sample.label = file.label;
    const int W = d.sample.image.width;
    for (int h : o.lowres_sizes)
      d.sample.lowres.push_back(resize(d.sample.image, h, h * W / o.size, Filter::bicubic));
    d.ok = true;
  } catch (const Error& e) {
    d.error = e.message();
  } catch (...) {
    d.fatal = std::current_exception();
  }
  return d;
}

// Removes a set's index and its "<prefix>-NNNNN.h5" shards (an old val set that the new split has no
// files for).
void remove_shard_set(const fs::path& dir, const std::string& prefix) {
  if (!fs::exists(dir / kShardIndexFile)) return;
  std::error_code ec;
  fs::remove(dir / kShardIndexFile, ec);
  IRIS_CHECK(!ec, "cannot remove '", (dir / kShardIndexFile).string(), "': ", ec.message());
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix + "-", 0) == 0 && name.size() == prefix.size() + 9 && e.path().extension() == ".h5")
      fs::remove(e.path(), ec);
  }
}

}  // namespace

ImageFolderShardReport write_image_folder_shards(const std::string& src, const std::string& out_dir,
                                                 const ImageFolderShardOptions& options) {
  return write_image_folder_shards(scan_image_folder(src), out_dir, options);
}

ImageFolderShardReport write_image_folder_shards(const ImageFolder& folder, const std::string& out_dir,
                                                 const ImageFolderShardOptions& o) {
  const std::string& src = folder.root;
  IRIS_CHECK(o.size > 0, "shard images: the image size must be positive, got ", o.size);
  IRIS_CHECK(o.channels == 1 || o.channels == 3, "shard images: channels must be 1 or 3, got ", o.channels);
  IRIS_CHECK(o.lowres_sizes.size() > 0, "shard images: give at least one low-res size");
  const FolderSplit split = split_image_folder(folder, o.val_fraction, o.seed);

  ShardSpec spec;
  spec.height = spec.width = o.size;
  if (o.crop == CropMode::none) {
    // The set's width: the first readable image's (in output order); the others must match it.
    std::vector<int64_t> order = split.train;
    order.insert(order.end(), split.val.begin(), split.val.end());
    for (int64_t i : order) {
      const Decoded d = decode(folder.files[static_cast<size_t>(i)], o);
      if (d.fatal) std::rethrow_exception(d.fatal);
      if (!d.ok) continue;
      spec.width = d.sample.image.width;
      break;
    }
  }
  spec.channels = o.channels;
  spec.lowres_sizes = o.lowres_sizes;
  spec.has_labels = !folder.class_names.empty();
  spec.class_names = folder.class_names;
  spec.validate();
  ShardWriterOptions wo;
  wo.samples_per_shard = o.samples_per_shard;
  wo.overwrite = o.overwrite;
  auto describe = [&](const std::string& part) {
    char frac[32];
    std::snprintf(frac, sizeof(frac), "%g", o.val_fraction);
    return part + " split of image folder " + src + " (" + crop_mode_name(o.crop) + " crop to " +
           std::to_string(o.size) + ", val fraction " + frac + ", seed " + std::to_string(o.seed) + ")";
  };
  spec.source = describe("train");
  wo.prefix = "train";
  ShardWriter train((fs::path(out_dir) / "train").string(), spec, wo);
  std::optional<ShardWriter> val;
  if (!split.val.empty()) {
    spec.source = describe("val");
    wo.prefix = "val";
    val.emplace((fs::path(out_dir) / "val").string(), spec, wo);
  } else if (o.overwrite) {
    remove_shard_set(fs::path(out_dir) / "val", "val");
  }

  // Items in output order: the train split, then the val split.
  std::vector<int64_t> order = split.train;
  order.insert(order.end(), split.val.begin(), split.val.end());
  const auto total = static_cast<int64_t>(order.size());
  const auto n_train = static_cast<int64_t>(split.train.size());
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t window = std::max<int64_t>(16, 4 * static_cast<int64_t>(threads));

  ImageFolderShardReport report;
  report.class_names = folder.class_names;
  report.ignored = folder.ignored;

  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::optional<Decoded>> slots(static_cast<size_t>(window));
  int64_t next = 0, written = 0;
  bool abort = false;
  std::exception_ptr error;

  // Takes the next item when the window allows (next - written < window); returns -1 when there is none
  // now. Caller holds the lock.
  auto claim = [&]() -> int64_t {
    if (abort || next >= total || next - written >= window) return -1;
    return next++;
  };
  auto run = [&](int64_t i, std::unique_lock<std::mutex>& lock) {
    lock.unlock();
    Decoded d = decode(folder.files[static_cast<size_t>(order[static_cast<size_t>(i)])], o);
    lock.lock();
    slots[static_cast<size_t>(i % window)] = std::move(d);
    cv.notify_all();
  };
  // The thread that writes, in order.
  auto write_loop = [&] {
    std::unique_lock<std::mutex> lock(mutex);
    while (written < total && !abort) {
      auto& slot = slots[static_cast<size_t>(written % window)];
      if (slot) {
        Decoded d = std::move(*slot);
        slot.reset();
        const int64_t at = written;
        lock.unlock();
        const std::string& path = folder.files[static_cast<size_t>(order[static_cast<size_t>(at)])].path;
        if (d.fatal) std::rethrow_exception(d.fatal);
        if (d.ok && (d.sample.image.height != spec.height || d.sample.image.width != spec.width)) {
          // Only with CropMode::none: an image of another aspect than the set's first.
          IRIS_THROW("shard images: --crop none keeps each image's aspect, and '", path, "' comes out ",
                     d.sample.image.width, "x", d.sample.image.height, " where the set's first image came out ",
                     spec.width, "x", spec.height, " (width x height): shard images of other aspects separately");
        }
        if (d.ok) {
          report.upscaled += d.upscaled ? 1 : 0;
          if (at < n_train) {
            train.add(d.sample);
          } else {
            val->add(d.sample);
          }
        } else {
          IRIS_CHECK(!o.strict, "shard images: ", d.error, " (strict mode: fix or remove the file)");
          ++report.skipped;
          if (o.on_skip) o.on_skip(path, d.error);
        }
        if (o.progress) o.progress(at + 1, total);
        lock.lock();
        ++written;
        cv.notify_all();
        continue;
      }
      // The next result is not ready: help decode rather than wait idle (this also makes a team of one
      // thread work).
      if (const int64_t i = claim(); i >= 0) {
        run(i, lock);
      } else {
        cv.wait(lock);
      }
    }
  };
  auto work_loop = [&] {
    std::unique_lock<std::mutex> lock(mutex);
    while (!abort && next < total) {
      if (const int64_t i = claim(); i >= 0)
        run(i, lock);
      else
        cv.wait(lock);
    }
  };

  // A team on the framework's pool: task 0 writes, the others decode. Inside the team the framework's
  // parallel loops (resize) run serially, so the cores are used once, by the workers.
  cpu::run_parallel(threads + 1, threads + 1, [&](int64_t task, int) {
    try {
      if (task == 0)
        write_loop();
      else
        work_loop();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
      abort = true;
      cv.notify_all();
    }
  });
  if (error) std::rethrow_exception(error);
  // Skipping a few bad files is a convenience; a set made of none of its images is a failure.
  IRIS_CHECK(report.skipped < total, "shard images: all ", total, " image file(s) in '", folder.root,
             "' were unreadable (listed above); no shard set written");

  train.finish();
  report.train = train.count();
  if (val) {
    val->finish();
    report.val = val->count();
  }
  return report;
}

}  // namespace iris::data
