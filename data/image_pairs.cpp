// Paired image folders -> one shard set. Two passes over the pairs, each decoding a window of pairs on worker
// threads and taking them in name order: the first checks every pair (readable, one scale factor, one size)
// before anything is written, so that a bad pair never leaves a half-replaced set behind; the second decodes
// them again and writes them. Decoding twice is the price of checking without holding the images.
#include "data/image_pairs.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "data/image_folder.h"
#include "data/resize.h"
#include "data/shard.h"
#include "framework/core/error.h"
#include "framework/cpu/thread_pool.h"

namespace iris::data {

namespace fs = std::filesystem;

namespace {

// name -> path of the image files directly in `dir`; two files of one name are an error naming both.
std::map<std::string, std::string> images_by_name(const std::string& dir, const char* flag,
                                                  const std::string& suffix) {
  IRIS_CHECK(fs::is_directory(dir), "shard pairs: ", flag, " '", dir, "' is not a folder");
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && it->is_regular_file() && is_image_file_name(name))
      files.push_back(it->path());
  }
  IRIS_CHECK(!ec, "shard pairs: cannot list ", flag, " '", dir, "': ", ec.message());
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> out;
  for (const auto& p : files) {
    std::string name = p.stem().string();
    if (!suffix.empty()) {
      IRIS_CHECK(name.size() > suffix.size() &&
                     name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0,
                 "shard pairs: '", p.string(), "' in ", flag, " does not end with --lr-suffix '", suffix,
                 "' before its extension");
      name.resize(name.size() - suffix.size());
    }
    const auto [at, added] = out.emplace(name, p.string());
    IRIS_CHECK(added, "shard pairs: '", at->second, "' and '", p.string(), "' in ", flag,
               " have the same name '", name, "': which one pairs is ambiguous");
  }
  IRIS_CHECK(!out.empty(), "shard pairs: ", flag, " '", dir,
             "' holds no PNG or JPEG file (.png, .jpg, .jpeg)");
  return out;
}

// "'a.png', 'b.png' and 3 more"
std::string some_files(const std::vector<std::string>& files) {
  constexpr size_t kShown = 5;
  std::string s;
  for (size_t i = 0; i < std::min(files.size(), kShown); ++i) s += (i ? ", '" : "'") + files[i] + "'";
  if (files.size() > kShown) s += " and " + std::to_string(files.size() - kShown) + " more";
  return s;
}

struct Decoded {
  Image hr, lr;
  std::string error;         // an unreadable file (its path is in the message)
  std::exception_ptr fatal;  // not a bad file: stop (out of memory, ...)
};

Decoded decode(const ImagePair& p, const PairShardOptions& o) {
  Decoded d;
  try {
    d.hr = to_channels(read_image(p.hr, o.max_pixels), o.channels);
    d.lr = to_channels(read_image(p.lr, o.max_pixels), o.channels);
  } catch (const Error& e) {
    d.error = e.message();
  } catch (...) {
    d.fatal = std::current_exception();
  }
  return d;
}

// A pair's scale factor, or an error naming both files.
int pair_factor(const ImagePair& p, const Decoded& d) {
  const Image &hr = d.hr, &lr = d.lr;
  const bool integer = hr.height % lr.height == 0 && hr.width % lr.width == 0;
  IRIS_CHECK(integer && hr.height / lr.height == hr.width / lr.width && hr.height / lr.height >= 2,
             "shard pairs: '", p.hr, "' (", hr.width, "x", hr.height, ") and '", p.lr, "' (", lr.width, "x",
             lr.height, ") are not one integer factor >= 2 apart in both axes (width x ",
             static_cast<double>(hr.width) / lr.width, ", height x ",
             static_cast<double>(hr.height) / lr.height, ")");
  return hr.height / lr.height;
}

// Runs `f(index, decoded)` for every pair in order, decoding a window of pairs at a time on `threads`.
void for_each_decoded(const std::vector<ImagePair>& pairs, const PairShardOptions& o, int threads,
                      const std::function<void(size_t, Decoded&)>& f) {
  const size_t window = static_cast<size_t>(4 * threads);
  std::vector<Decoded> slots;
  for (size_t start = 0; start < pairs.size(); start += window) {
    const size_t n = std::min(window, pairs.size() - start);
    slots.assign(n, {});
    cpu::run_parallel(static_cast<int64_t>(n), threads,
                      [&](int64_t i, int) { slots[i] = decode(pairs[start + i], o); });
    for (size_t i = 0; i < n; ++i) {
      Decoded& d = slots[i];
      if (d.fatal) std::rethrow_exception(d.fatal);
      IRIS_CHECK(d.error.empty(), "shard pairs: ", d.error);
      f(start + i, d);
    }
  }
}

}  // namespace

std::vector<ImagePair> match_image_pairs(const std::string& hr_dir, const std::string& lr_dir,
                                         const std::string& lr_suffix) {
  const auto hr = images_by_name(hr_dir, "--hr", "");
  const auto lr = images_by_name(lr_dir, "--lr", lr_suffix);
  std::vector<ImagePair> pairs;
  std::vector<std::string> hr_alone, lr_alone;
  for (const auto& [name, path] : hr) {
    const auto it = lr.find(name);
    if (it == lr.end())
      hr_alone.push_back(path);
    else
      pairs.push_back({name, path, it->second});
  }
  for (const auto& [name, path] : lr)
    if (!hr.count(name)) lr_alone.push_back(path);
  std::string problems;
  if (!hr_alone.empty())
    problems += "\n  " + std::to_string(hr_alone.size()) +
                " high-res file(s) without a low-res partner in '" + lr_dir + "': " + some_files(hr_alone);
  if (!lr_alone.empty())
    problems += "\n  " + std::to_string(lr_alone.size()) +
                " low-res file(s) without a high-res partner in '" + hr_dir + "': " + some_files(lr_alone);
  if (pairs.empty() && lr_suffix.empty())
    problems +=
        "\n  no name is in both: if the low-res names carry a suffix (DIV2K's 0001x4.png), give "
        "--lr-suffix";
  IRIS_CHECK(problems.empty(),
             "shard pairs: the folders do not pair up (files pair by name without their "
             "extension",
             lr_suffix.empty() ? "" : " and the low-res names' suffix '" + lr_suffix + "'", "):", problems);
  return pairs;
}

PairShardReport write_pair_shards(const std::string& hr_dir, const std::string& lr_dir,
                                  const std::string& out_dir, const PairShardOptions& o) {
  IRIS_CHECK(o.channels == 1 || o.channels == 3, "shard pairs: channels must be 1 or 3, got ", o.channels);
  IRIS_CHECK(o.size >= 0, "shard pairs: --size must be positive (or 0: the images' own size), got ", o.size);
  IRIS_CHECK(o.samples_per_shard > 0, "shard pairs: --samples-per-shard must be positive");
  IRIS_CHECK(o.overwrite || !fs::exists(fs::path(out_dir) / kShardIndexFile), "shard pairs: '", out_dir,
             "' already holds a shard set; pass --overwrite to replace it, or choose another --out");
  const std::vector<ImagePair> pairs = match_image_pairs(hr_dir, lr_dir, o.lr_suffix);
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const auto total = static_cast<int64_t>(pairs.size());

  // Pass 1: every pair readable, one scale factor, one stored size.
  PairShardReport report;
  const ImagePair* first = nullptr;
  int first_h = 0, first_w = 0;
  for_each_decoded(pairs, o, threads, [&](size_t i, Decoded& d) {
    const ImagePair& p = pairs[i];
    const int f = pair_factor(p, d);
    if (!first) {
      first = &p;
      report.factor = f;
      first_h = d.hr.height;
      first_w = d.hr.width;
    }
    IRIS_CHECK(f == report.factor, "shard pairs: '", p.hr, "' is ", f, "x '", p.lr, "', but '", first->hr,
               "' is ", report.factor, "x '", first->lr, "': every pair must have the same scale factor");
    if (o.size == 0) {
      IRIS_CHECK(d.hr.height == first_h && d.hr.width == first_w, "shard pairs: '", p.hr, "' is ", d.hr.width,
                 "x", d.hr.height, " but '", first->hr, "' is ", first_w, "x", first_h,
                 ": a shard set holds images of one size; give --size S to store centred S x S crops");
    } else {
      IRIS_CHECK(o.size % f == 0, "shard pairs: --size ", o.size,
                 " is not a multiple of the pairs' scale factor ", f,
                 ": the low-res crop would not cover the same region");
      IRIS_CHECK(o.size <= d.hr.height && o.size <= d.hr.width, "shard pairs: '", p.hr, "' (", d.hr.width,
                 "x", d.hr.height, ") is smaller than --size ", o.size);
    }
    if (o.progress) o.progress(static_cast<int64_t>(i) + 1, 2 * total);
  });
  report.height = o.size > 0 ? o.size : first_h;
  report.width = o.size > 0 ? o.size : first_w;
  const int f = report.factor;

  // Pass 2: write.
  ShardSpec spec;
  spec.height = report.height;
  spec.width = report.width;
  spec.channels = o.channels;
  spec.lowres_sizes = {report.height / f};
  spec.source = "image pairs: high-res " + fs::weakly_canonical(fs::absolute(hr_dir)).string() +
                ", low-res " + fs::weakly_canonical(fs::absolute(lr_dir)).string() + " (factor " +
                std::to_string(f) +
                (o.size > 0 ? ", centred " + std::to_string(o.size) + "x" + std::to_string(o.size) + " crops"
                            : std::string()) +
                ")";
  ShardWriterOptions wo;
  wo.samples_per_shard = o.samples_per_shard;
  wo.prefix = "pairs";
  wo.overwrite = o.overwrite;
  ShardWriter writer(out_dir, spec, wo);
  for_each_decoded(pairs, o, threads, [&](size_t i, Decoded& d) {
    Sample s;
    if (o.size > 0) {  // the centred window, its offsets multiples of f so that the low-res crop is exact
      const int top = f * ((d.hr.height - o.size) / f / 2), left = f * ((d.hr.width - o.size) / f / 2);
      s.image = crop(d.hr, top, left, o.size, o.size);
      s.lowres.push_back(crop(d.lr, top / f, left / f, o.size / f, o.size / f));
    } else {
      s.image = std::move(d.hr);
      s.lowres.push_back(std::move(d.lr));
    }
    writer.add(s);
    if (o.progress) o.progress(total + static_cast<int64_t>(i) + 1, 2 * total);
  });
  writer.finish();
  report.pairs = writer.count();
  return report;
}

}  // namespace iris::data
