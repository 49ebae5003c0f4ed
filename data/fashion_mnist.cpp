// Fashion-MNIST IDX files (gzip via zlib) and their conversion to shard folders.
#include "data/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "data/shard.h"
#include "framework/core/error.h"

namespace iris::data {

namespace fs = std::filesystem;

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

std::string default_fashion_mnist_dir() {
  if (const char* env = std::getenv("IRIS_FASHION_MNIST_DIR"); env && *env) return env;
  return "/usr/share/datasets/fashion-mnist";
}

namespace {

// The whole decompressed content of a gzip (or plain) file. Reads in blocks: the header is not trusted for
// the allocation size. At most 4 GiB (no IDX file of interest is larger).
std::vector<uint8_t> read_gz(const std::string& path) {
  IRIS_CHECK(fs::is_regular_file(path), "idx: cannot open '", path, "': no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  IRIS_CHECK(f != nullptr, "idx: cannot open '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> out;
  constexpr size_t kBlock = size_t{1} << 20;
  constexpr size_t kMax = size_t{4} << 30;
  std::string error;
  while (true) {
    const size_t old = out.size();
    if (old >= kMax) {
      error = "larger than 4 GiB";
      break;
    }
    out.resize(old + kBlock);
    const int n = gzread(f, out.data() + old, static_cast<unsigned>(kBlock));
    if (n < 0) {
      int code = 0;
      error = gzerror(f, &code);
      out.resize(old);
      break;
    }
    out.resize(old + static_cast<size_t>(n));
    if (n == 0) break;
  }
  int code = 0;
  const char* msg = gzerror(f, &code);
  if (error.empty() && code != Z_OK && code != Z_STREAM_END) error = msg ? msg : "read error";
  const int rc = gzclose(f);
  if (error.empty() && rc != Z_OK)
    error = rc == Z_BUF_ERROR ? "unexpected end of file (truncated)" : "close failed";
  IRIS_CHECK(error.empty(), "idx: cannot read '", path, "': ", error);
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  std::vector<uint8_t> data = read_gz(path);
  IRIS_CHECK(data.size() >= 4, "idx: '", path, "' is too short (", data.size(), " bytes) for an IDX file");
  const uint32_t magic = be32(data.data());
  IRIS_CHECK(magic == 0x00000803u, "idx: '", path, "' has magic number 0x", std::hex, magic,
             "; expected 0x803 (unsigned bytes, 3 dimensions)");
  IRIS_CHECK(data.size() >= 16, "idx: '", path, "' is too short (", data.size(),
             " bytes) for an image header");
  IdxImages img;
  img.count = be32(data.data() + 4);
  const uint32_t rows = be32(data.data() + 8), cols = be32(data.data() + 12);
  IRIS_CHECK(rows > 0 && cols > 0 && rows <= 65536 && cols <= 65536, "idx: '", path, "' has image size ",
             rows, "x", cols);
  img.rows = static_cast<int>(rows);
  img.cols = static_cast<int>(cols);
  const uint64_t expect = 16 + static_cast<uint64_t>(img.count) * rows * cols;
  IRIS_CHECK(data.size() == expect, "idx: '", path, "' holds ", data.size(), " bytes; its header (",
             img.count, " images of ", rows, "x", cols, ") needs ", expect);
  img.pixels.assign(data.begin() + 16, data.end());
  return img;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  std::vector<uint8_t> data = read_gz(path);
  IRIS_CHECK(data.size() >= 4, "idx: '", path, "' is too short (", data.size(), " bytes) for an IDX file");
  const uint32_t magic = be32(data.data());
  IRIS_CHECK(magic == 0x00000801u, "idx: '", path, "' has magic number 0x", std::hex, magic,
             "; expected 0x801 (unsigned bytes, 1 dimension)");
  IRIS_CHECK(data.size() >= 8, "idx: '", path, "' is too short (", data.size(), " bytes) for a label header");
  const uint64_t count = be32(data.data() + 4);
  IRIS_CHECK(data.size() == 8 + count, "idx: '", path, "' holds ", data.size(), " bytes; its header (", count,
             " labels) needs ", 8 + count);
  return std::vector<uint8_t>(data.begin() + 8, data.end());
}

std::vector<int64_t> read_idx_shape(const std::string& path) {
  IRIS_CHECK(fs::is_regular_file(path), "idx: cannot open '", path, "': no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  IRIS_CHECK(f != nullptr, "idx: cannot open '", path, "': ", std::strerror(errno));
  uint8_t head[4 + 4 * 3] = {};
  const int n = gzread(f, head, sizeof(head));
  gzclose(f);
  IRIS_CHECK(n >= 4, "idx: '", path, "' is too short for an IDX header (", n < 0 ? 0 : n, " bytes)");
  const int dims = head[3];
  IRIS_CHECK(head[0] == 0 && head[1] == 0 && head[2] == 0x08 && (dims == 1 || dims == 3), "idx: '", path,
             "' has magic number 0x", std::hex, be32(head), "; expected 0x801 or 0x803 (unsigned bytes)");
  IRIS_CHECK(n >= 4 + 4 * dims, "idx: '", path, "' is too short for an IDX header (", n, " bytes)");
  std::vector<int64_t> shape;
  for (int d = 0; d < dims; ++d) shape.push_back(be32(head + 4 + 4 * d));
  return shape;
}

namespace {
void check_split(const std::string& split) {
  IRIS_CHECK(split == "train" || split == "test", "fashion-mnist: unknown split '", split,
             "' (expected train or test)");
}
}  // namespace

std::string fashion_mnist_images_file(const std::string& dir, const std::string& split) {
  check_split(split);
  return (fs::path(dir) / (split == "train" ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz"))
      .string();
}

std::string fashion_mnist_labels_file(const std::string& dir, const std::string& split) {
  check_split(split);
  return (fs::path(dir) / (split == "train" ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz"))
      .string();
}

FashionMnistSplit load_fashion_mnist(const std::string& dir, const std::string& split) {
  const std::string images_path = fashion_mnist_images_file(dir, split);
  const std::string labels_path = fashion_mnist_labels_file(dir, split);
  FashionMnistSplit s;
  s.images = read_idx_images(images_path);
  s.labels = read_idx_labels(labels_path);
  IRIS_CHECK(static_cast<int64_t>(s.labels.size()) == s.images.count, "fashion-mnist: '", images_path,
             "' has ", s.images.count, " images but '", labels_path, "' has ", s.labels.size(), " labels");
  for (size_t i = 0; i < s.labels.size(); ++i)
    IRIS_CHECK(s.labels[i] < fashion_mnist_classes().size(), "fashion-mnist: '", labels_path, "' label ", i,
               " is ", static_cast<int>(s.labels[i]), "; expected 0..9");
  return s;
}

namespace {
ShardSpec spec_for(const std::string& src_dir, const std::string& split, int rows, int cols,
                   const std::vector<int>& lowres_sizes) {
  ShardSpec spec;
  spec.height = rows;
  spec.width = cols;
  spec.channels = 1;
  spec.lowres_sizes = lowres_sizes;
  spec.has_labels = true;
  spec.class_names = fashion_mnist_classes();
  spec.source = "Fashion-MNIST " + split + " split (IDX files from " + src_dir + ")";
  return spec;
}
}  // namespace

ShardSpec fashion_mnist_spec(const std::string& src_dir, const std::string& split,
                             const std::vector<int>& lowres_sizes) {
  const std::string path = fashion_mnist_images_file(src_dir, split);
  const std::vector<int64_t> shape = read_idx_shape(path);
  IRIS_CHECK(shape.size() == 3 && shape[1] > 0 && shape[2] > 0 && shape[1] <= 65536 && shape[2] <= 65536,
             "fashion-mnist: '", path, "' does not hold images");
  return spec_for(src_dir, split, static_cast<int>(shape[1]), static_cast<int>(shape[2]), lowres_sizes);
}

int64_t fashion_mnist_count(const std::string& src_dir, const std::string& split, int64_t limit) {
  const int64_t n = read_idx_shape(fashion_mnist_images_file(src_dir, split)).at(0);
  return limit >= 0 ? std::min(limit, n) : n;
}

void write_fashion_mnist_split(const std::string& src_dir, const std::string& split,
                               const std::string& out_split_dir, const FashionMnistShardOptions& options) {
  const FashionMnistSplit data = load_fashion_mnist(src_dir, split);
  const int64_t n = options.limit >= 0 ? std::min(options.limit, data.images.count) : data.images.count;
  const ShardSpec spec = spec_for(src_dir, split, data.images.rows, data.images.cols, options.lowres_sizes);
  ShardWriterOptions wo;
  wo.samples_per_shard = options.samples_per_shard;
  wo.prefix = split;
  wo.overwrite = options.overwrite;
  ShardWriter writer(out_split_dir, spec, wo);
  const size_t pixels = static_cast<size_t>(spec.height) * spec.width;
  if (options.progress) options.progress(split, 0, n);
  for (int64_t i = 0; i < n; ++i) {
    Image im(spec.height, spec.width, 1);
    std::memcpy(im.pixels.data(), data.images.pixels.data() + static_cast<size_t>(i) * pixels, pixels);
    writer.add(im, data.labels[static_cast<size_t>(i)]);
    const bool shard_done = (i + 1) % options.samples_per_shard == 0;
    const bool tick = options.progress_every > 0 && (i + 1) % options.progress_every == 0;
    if (options.progress && (shard_done || tick) && i + 1 < n) options.progress(split, i + 1, n);
  }
  writer.finish();
  if (options.progress) options.progress(split, n, n);
}

void write_fashion_mnist_shards(const std::string& src_dir, const std::string& out_dir,
                                const FashionMnistShardOptions& options) {
  for (const std::string split : {"train", "test"})
    write_fashion_mnist_split(src_dir, split, (fs::path(out_dir) / split).string(), options);
}

}  // namespace iris::data
