// Fashion-MNIST: IDX parsing on small synthetic gzip files (magic numbers, sizes, truncation), conversion to
// shards with low-res images, and the real files when the Debian package is installed.
#include <zlib.h>

#include <filesystem>

#include "data/fashion_mnist.h"
#include "data/resize.h"
#include "data/shard.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;
namespace fs = std::filesystem;


TEST_CASE("IDX files are parsed and validated") {
  TempDir dir("idx");
  const std::string images = dir.file("im.gz"), labels = dir.file("lb.gz");
  write_gz(images, idx_images(0x803, 5, 4, 3, 60));
  write_gz(labels, idx_labels(0x801, {1, 2, 3, 4, 5}));
  const IdxImages im = read_idx_images(images);
  CHECK(im.count == 5);
  CHECK(im.rows == 4);
  CHECK(im.cols == 3);
  REQUIRE(im.pixels.size() == 60);
  CHECK(im.pixels[59] == static_cast<uint8_t>(59 * 7 % 256));
  CHECK(read_idx_labels(labels) == std::vector<uint8_t>{1, 2, 3, 4, 5});
  // Wrong magic numbers (images vs labels swapped).
  check_throws_with([&] { (void)read_idx_images(labels); }, {"lb.gz", "magic"});
  check_throws_with([&] { (void)read_idx_labels(images); }, {"im.gz", "magic"});
  // The header promises more data than there is.
  write_gz(dir.file("short.gz"), idx_images(0x803, 6, 4, 3, 60));
  check_throws_with([&] { (void)read_idx_images(dir.file("short.gz")); }, {"short.gz", "needs 88"});
  // A truncated gzip stream.
  write_gz(dir.file("big.gz"), idx_images(0x803, 1000, 16, 16, 256000));
  auto bytes = read_bytes(dir.file("big.gz"));
  bytes.resize(bytes.size() / 2);
  write_bytes(dir.file("cut.gz"), bytes);
  check_throws_with([&] { (void)read_idx_images(dir.file("cut.gz")); }, {"cut.gz"});
  check_throws_with([&] { (void)read_idx_images(dir.file("none.gz")); }, {"none.gz", "no such file"});
}

TEST_CASE("Fashion-MNIST splits check counts and label range") {
  TempDir dir("fmnist-bad");
  const std::string d = dir.path().string();
  write_fake_fashion(d, 12, 5);
  const FashionMnistSplit test = load_fashion_mnist(d, "test");
  CHECK(test.images.count == 5);
  CHECK(test.labels.size() == 5);
  check_throws_with([&] { (void)load_fashion_mnist(d, "val"); }, {"unknown split 'val'"});
  write_gz(d + "/t10k-labels-idx1-ubyte.gz", idx_labels(0x801, {0, 1, 2, 3}));
  check_throws_with([&] { (void)load_fashion_mnist(d, "test"); }, {"5 images", "4 labels"});
  write_gz(d + "/t10k-labels-idx1-ubyte.gz", idx_labels(0x801, {0, 1, 10, 3, 4}));
  check_throws_with([&] { (void)load_fashion_mnist(d, "test"); }, {"t10k-labels-idx1-ubyte.gz", "is 10"});
  CHECK(fashion_mnist_classes().size() == 10);
  CHECK(fashion_mnist_classes()[9] == "Ankle boot");
}

TEST_CASE("IDX headers are read alone, and give the spec and count of a conversion") {
  TempDir dir("idx-header");
  write_gz(dir.file("im.gz"), idx_images(0x803, 5, 4, 3, 60));
  write_gz(dir.file("lb.gz"), idx_labels(0x801, {1, 2, 3, 4, 5}));
  CHECK(read_idx_shape(dir.file("im.gz")) == std::vector<int64_t>{5, 4, 3});
  CHECK(read_idx_shape(dir.file("lb.gz")) == std::vector<int64_t>{5});
  write_gz(dir.file("bad.gz"), idx_images(0x802, 5, 4, 3, 60));
  check_throws_with([&] { (void)read_idx_shape(dir.file("bad.gz")); }, {"bad.gz", "magic"});
  write_gz(dir.file("short.gz"), {0, 0, 8, 3, 0, 0});
  check_throws_with([&] { (void)read_idx_shape(dir.file("short.gz")); }, {"short.gz", "too short"});
  check_throws_with([&] { (void)read_idx_shape(dir.file("none.gz")); }, {"none.gz", "no such file"});

  const std::string src = dir.file("src");
  fs::create_directories(src);
  write_fake_fashion(src, 30, 8);
  const ShardSpec spec = fashion_mnist_spec(src, "test", {7});
  CHECK(spec.height == 28);
  CHECK(spec.channels == 1);
  CHECK(spec.has_labels);
  CHECK(spec.lowres_sizes == std::vector<int>{7});
  CHECK(spec.source.find("test split") != std::string::npos);
  CHECK(fashion_mnist_count(src, "train", -1) == 30);
  CHECK(fashion_mnist_count(src, "train", 12) == 12);
  CHECK(fashion_mnist_count(src, "test", 100) == 8);
  // The spec is exactly what a conversion writes.
  FashionMnistShardOptions o;
  o.lowres_sizes = {7};
  write_fashion_mnist_split(src, "test", dir.file("out"), o);
  CHECK(ShardSet::open(dir.file("out")).spec() == spec);
  CHECK(fs::path(fashion_mnist_images_file(src, "test")).filename() == "t10k-images-idx3-ubyte.gz");
}

TEST_CASE("Fashion-MNIST converts to shard folders with bicubic low-res images") {
  TempDir dir("fmnist-shards");
  const std::string src = dir.file("src"), out = dir.file("out");
  fs::create_directories(src);
  write_fake_fashion(src, 50, 7);
  std::vector<std::pair<std::string, int64_t>> progress;
  FashionMnistShardOptions o;
  o.lowres_sizes = {7, 14};
  o.samples_per_shard = 20;
  o.limit = 45;
  o.progress = [&](const std::string& split, int64_t done, int64_t total) {
    progress.emplace_back(split, done);
    CHECK(total == (split == "train" ? 45 : 7));
  };
  write_fashion_mnist_shards(src, out, o);
  const auto want = std::vector<std::pair<std::string, int64_t>>{{"train", 0},  {"train", 20}, {"train", 40},
                                                                 {"train", 45}, {"test", 0},   {"test", 7}};
  CHECK(progress == want);
  const ShardSet train = ShardSet::open(out + "/train", {.verify_checksums = true});
  CHECK(train.size() == 45);
  CHECK(train.shards().size() == 3);
  CHECK(train.shards()[0].file == "train-00000.h5");
  CHECK(train.spec().class_names == fashion_mnist_classes());
  CHECK(train.spec().lowres_sizes == std::vector<int>{7, 14});
  const FashionMnistSplit src_train = load_fashion_mnist(src, "train");
  for (int64_t i : {0, 21, 44}) {
    const Sample s = train.sample(i);
    CHECK(
        std::equal(s.image.pixels.begin(), s.image.pixels.end(), src_train.images.pixels.begin() + i * 784));
    CHECK(s.label == src_train.labels[static_cast<size_t>(i)]);
    CHECK(s.lowres[0] == resize(s.image, 7, 7, Filter::bicubic));
    CHECK(s.lowres[1] == resize(s.image, 14, 14, Filter::bicubic));
  }
  CHECK(ShardSet::open(out + "/test").size() == 7);
  // Converting again needs overwrite.
  o.progress = nullptr;
  check_throws_with([&] { write_fashion_mnist_shards(src, out, o); }, {"already holds a shard set"});
  o.overwrite = true;
  write_fashion_mnist_shards(src, out, o);
}

TEST_CASE("the real Fashion-MNIST files: 60000 + 10000 images, labels 0..9, balanced classes") {
  const std::string dir = default_fashion_mnist_dir();
  if (!fs::exists(dir + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: no Fashion-MNIST in '", dir,
            "' (Debian package dataset-fashion-mnist, or set IRIS_FASHION_MNIST_DIR)");
    return;
  }
  for (auto [split, n] : {std::pair<std::string, int64_t>{"train", 60000}, {"test", 10000}}) {
    const FashionMnistSplit s = load_fashion_mnist(dir, split);
    CHECK(s.images.count == n);
    CHECK(s.images.rows == 28);
    CHECK(s.images.cols == 28);
    CHECK(static_cast<int64_t>(s.labels.size()) == n);
    std::vector<int64_t> per_class(256, 0);
    for (uint8_t l : s.labels) ++per_class[l];
    CHECK(*std::max_element(s.labels.begin(), s.labels.end()) == 9);
    for (int c = 0; c < 10; ++c) CHECK(per_class[static_cast<size_t>(c)] == n / 10);
    // Images are not blank.
    uint64_t sum = 0;
    for (size_t i = 0; i < 784 * 100; ++i) sum += s.images.pixels[i];
    CHECK(sum > 100 * 784 * 20);
  }
}
