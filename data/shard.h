// The shard format: a data set is a folder of HDF5 shards plus an index.
//
// Each shard "<prefix>-NNNNN.h5" holds N samples:
//   images            uint8 [N, H, W, C]       C = 1 (grey) or 3 (RGB)
//   labels            int32 [N]                optional (class-conditional data)
//   lowres_<h>        uint8 [N, h, w, C]       optional, one per low-resolution size; w = h * W / H
// Root attributes: format = "iris-shard", format_version = 1, source, class_names (string list), height,
// width, channels, lowres_sizes (int list of the h's), has_labels (0/1), count (N), shard_index. Every
// dataset carries a CRC-32C attribute ("crc32c", see framework/io/hdf5.h).
//
// index.json lists the shards in order with their counts and file sizes in bytes, plus the same metadata; a
// sample's global index is its position in that order. A folder without index.json is not a complete set:
// ShardWriter writes the index last, after every shard is on disk, and every file (shards and index) is
// written atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "framework/core/tensor.h"

namespace iris::data {

inline constexpr const char* kShardFormat = "iris-shard";
inline constexpr int64_t kShardFormatVersion = 1;
inline constexpr const char* kShardIndexFile = "index.json";

// What every shard of a set shares.
struct ShardSpec {
  int height = 0, width = 0, channels = 0;
  std::vector<int> lowres_sizes;  // heights of the lowres_<h> datasets, in storage order
  bool has_labels = false;
  std::vector<std::string> class_names;  // may be empty; when given, labels must index it
  std::string source;                    // free text: where the data came from

  int lowres_width(int h) const;  // h * width / height; throws unless exact
  // Throws unless the sizes are positive, channels is 1 or 3, and every low-res size is smaller than the
  // height, distinct, and gives an integer width.
  void validate() const;
  bool operator==(const ShardSpec&) const = default;
};

std::string lowres_dataset_name(int h);  // "lowres_<h>"

struct Sample {
  Image image;
  int32_t label = -1;         // -1 when the set has no labels
  std::vector<Image> lowres;  // one per ShardSpec::lowres_sizes, same order
};

struct ShardWriterOptions {
  int64_t samples_per_shard = 1000;
  std::string prefix = "shard";
  // Replace an existing set in the folder: its index is removed first, and its shards that the new set
  // does not reuse are removed by finish().
  bool overwrite = false;
};

// Appends samples and writes a shard every samples_per_shard samples. Memory: one shard's samples.
class ShardWriter {
 public:
  ShardWriter(std::string dir, ShardSpec spec, ShardWriterOptions options = {});
  ~ShardWriter();  // without finish(), the shards written so far stay but no index is written
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Adds one sample. The image must match the spec's size and channels; the low-res images are made with
  // the antialiased bicubic downsampler (resize.h).
  void add(const Image& image, int32_t label = -1);
  // Adds a sample with its own low-res images (one per spec size; none means: compute them as above).
  void add(const Sample& sample);
  // Writes the last (partial) shard and index.json. No sample may be added afterwards.
  void finish();

  int64_t count() const { return total_; }
  int64_t shards_written() const { return static_cast<int64_t>(shards_.size()); }
  const std::string& dir() const { return dir_; }

 private:
  void flush_shard();
  void remove_stale_shards();

  std::string dir_;
  ShardSpec spec_;
  ShardWriterOptions options_;
  std::vector<uint8_t> images_;
  std::vector<std::vector<uint8_t>> lowres_;
  std::vector<int32_t> labels_;
  int64_t pending_ = 0, total_ = 0;
  std::vector<std::pair<std::string, int64_t>> shards_;  // file name, count
  bool finished_ = false;
};

struct ShardInfo {
  std::string file;    // name inside the folder
  int64_t count = 0;   // samples
  int64_t first = 0;   // global index of its first sample
  int64_t bytes = -1;  // file size recorded in the index (-1: not recorded)
};

struct ShardSetOptions {
  bool verify_checksums = false;  // read every dataset once at open and check its CRC-32C
  // Check each dataset's CRC-32C the first time samples are read from it (once per dataset and process):
  // damaged data is an error naming the shard instead of being silently trained on, at the cost of reading
  // the data once more, spread over the first epoch instead of up front.
  bool verify_on_first_read = false;
  int max_open_files = 32;  // shards kept open at once (least recently used are closed)
};

// A read-only view of a shard folder. open() checks the index and every shard (format, version, sizes,
// counts, datasets); each failure is an iris::Error naming the file at fault. Copies share the open files;
// reads are safe from several threads.
class ShardSet {
 public:
  static ShardSet open(const std::string& dir, const ShardSetOptions& options = {});

  const std::string& dir() const;
  const ShardSpec& spec() const;
  int64_t size() const;  // samples
  const std::vector<ShardInfo>& shards() const;
  // The shard holding global sample i and i's row in it.
  std::pair<int64_t, int64_t> locate(int64_t i) const;

  Sample sample(int64_t i) const;  // image, label and every low-res image
  // Samples at `indices` (any order) with the given low-res sizes: one lock for the whole list.
  std::vector<Sample> samples(const std::vector<int64_t>& indices,
                              const std::vector<int>& lowres_sizes) const;
  Image image(int64_t i) const;
  Image lowres(int64_t i, int h) const;
  int32_t label(int64_t i) const;  // throws when the set has no labels
  // Ranges of consecutive samples, possibly spanning shards: uint8 [n, H, W, C], uint8 [n, h, w, C], int32
  // [n].
  Tensor images(int64_t start, int64_t count) const;
  Tensor lowres(int h, int64_t start, int64_t count) const;
  Tensor labels(int64_t start, int64_t count) const;

  // Checks the CRC-32C of every dataset of every shard; throws naming the first corrupted file and dataset.
  void verify_checksums() const;
  // Throws unless every label is in [0, num_classes), naming the first bad one's shard file, its row there,
  // its index in the set and its value (a label equal to num_classes would otherwise train as a model's
  // null class). Reads the labels only (4 bytes a sample).
  void check_labels(int64_t num_classes) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace iris::data
