// `iris shard`: the built program run on synthetic IDX files and on the real Fashion-MNIST files (when the
// Debian package is installed), and on a folder of generated images; the results opened with ShardSet.
#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "data/resize.h"
#include "data/shard.h"
#include "tests/data/data_test_util.h"
#include "tests/tools/tool_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> shard_files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".h5") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("iris shard fashion-mnist: writes, is idempotent, refuses other options, overwrites") {
  TempDir dir("cli-fmnist");
  const std::string src = dir.file("idx"), out = dir.file("out");
  write_fake_fashion(src, 250, 40);
  const std::string base = "shard fashion-mnist --src " + shell_quote(src) + " --out " + shell_quote(out);

  IrisRun r = run_iris(base + " --samples-per-shard 100 --lowres 7,14");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("train: 250 img in"));  // the progress display's final line
  CHECK(r.has("250 samples (28x28x1, 10 classes, low-res 7x7 and 14x14) in 3 shards"));
  const ShardSet train = ShardSet::open(out + "/train", {.verify_checksums = true});
  CHECK(train.size() == 250);
  CHECK(train.spec().class_names == fashion_mnist_classes());
  CHECK(train.label(123) == 3);
  CHECK(train.lowres(17, 7) == resize(train.image(17), 7, 7, Filter::bicubic));
  CHECK(ShardSet::open(out + "/test").size() == 40);

  // Again with the same options: nothing is rewritten.
  const auto stamp = fs::last_write_time(out + "/train/train-00000.h5");
  r = run_iris(base + " --samples-per-shard 100 --lowres 7,14");
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.has("already holds these shards"));
  CHECK(fs::last_write_time(out + "/train/train-00000.h5") == stamp);

  // Other options: refused, naming the folder, the differences and the way out.
  r = run_iris(base + " --samples-per-shard 100 --lowres 7");
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK(r.has("iris: error:"));
  CHECK(r.has(out + "/train' holds a different shard set: low-res sizes 7, 14, requested 7"));
  CHECK(r.has("--overwrite"));
  r = run_iris(base + " --samples-per-shard 50 --lowres 7,14");
  CHECK(r.code == 1);
  CHECK(r.has("3 shards, requested 5 (--samples-per-shard)"));
  CHECK(fs::last_write_time(out + "/train/train-00000.h5") == stamp);

  // --overwrite replaces both sets; a smaller set leaves no stale shard behind.
  r = run_iris(base + " --samples-per-shard 100 --lowres 7 --limit 90 --overwrite");
  INFO(r.out);
  REQUIRE(r.code == 0);
  const ShardSet small = ShardSet::open(out + "/train");
  CHECK(small.size() == 90);
  CHECK(small.spec().lowres_sizes == std::vector<int>{7});
  CHECK(shard_files(out + "/train") == std::vector<std::string>{"train-00000.h5"});

  // An interrupted run (no index) is redone without --overwrite; the complete split is kept.
  fs::remove(out + "/test/index.json");
  r = run_iris(base + " --samples-per-shard 100 --lowres 7 --limit 90");
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.has("train: already complete, kept"));
  CHECK(ShardSet::open(out + "/test").size() == 40);

  // A missing source names the folder and the package.
  r = run_iris("shard fashion-mnist --src " + shell_quote(dir.file("nowhere")) + " --out " +
               shell_quote(out));
  CHECK(r.code == 1);
  CHECK(r.has("nowhere"));
  CHECK(r.has("dataset-fashion-mnist"));
}

TEST_CASE("iris shard fashion-mnist on the Debian package's files with --limit") {
  const std::string src = default_fashion_mnist_dir();
  if (!fs::exists(fashion_mnist_images_file(src, "train"))) {
    MESSAGE("skipped: no Fashion-MNIST in '", src,
            "' (Debian package dataset-fashion-mnist, or set IRIS_FASHION_MNIST_DIR)");
    return;
  }
  TempDir dir("cli-fmnist-real");
  const std::string out = dir.file("fm");
  const std::string cmd =
      "shard fashion-mnist --out " + shell_quote(out) + " --limit 300 --samples-per-shard 128";
  IrisRun r = run_iris(cmd);
  INFO(r.out);
  REQUIRE(r.code == 0);
  const ShardSet train = ShardSet::open(out + "/train", {.verify_checksums = true});
  REQUIRE(train.size() == 300);
  CHECK(train.shards().size() == 3);
  CHECK(train.spec().lowres_sizes == std::vector<int>{7, 14});  // the default
  const FashionMnistSplit real = load_fashion_mnist(src, "train");
  for (int64_t i : {0, 150, 299}) {
    const Image im = train.image(i);
    CHECK(std::equal(im.pixels.begin(), im.pixels.end(), real.images.pixels.begin() + i * 784));
    CHECK(train.label(i) == real.labels[static_cast<size_t>(i)]);
  }
  CHECK(ShardSet::open(out + "/test").size() == 300);
  r = run_iris(cmd);
  CHECK(r.code == 0);
  CHECK(r.has("nothing to do"));
  r = run_iris(cmd + " --lowres 14");
  CHECK(r.code == 1);
  CHECK(r.has("--overwrite"));
}

TEST_CASE("iris shard images: class folders, low-res copies, a val split, a corrupt file reported") {
  TempDir dir("cli-images");
  const std::string src = dir.file("src"), out = dir.file("out");
  int seed = 0;
  for (const char* cls : {"apples", "pears"}) {
    fs::create_directories(src + "/" + cls);
    for (int k = 0; k < 4; ++k, ++seed)
      write_png(src + "/" + cls + "/" + std::to_string(k) + ".png",
                pattern_image(24 + 4 * k, 40 - 3 * k, 3, seed));
  }
  write_bytes(src + "/pears/corrupt.png", {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n', 'x', 'y'});
  const std::string args = "shard images " + shell_quote(src) + " --out " + shell_quote(out) +
                           " --size 16 --lowres 4,8 --val-fraction 0.25 --threads 3 --seed 1";
  IrisRun r = run_iris(args);
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("9 images in " + src + " (2 classes)"));
  CHECK(r.has("skipped: "));
  CHECK(r.has("corrupt.png"));
  CHECK(r.has("skipped 1 unreadable file"));
  const ShardSet train = ShardSet::open(out + "/train"), val = ShardSet::open(out + "/val");
  CHECK(train.size() + val.size() == 8);
  CHECK(val.size() >= 1);
  CHECK(train.spec().class_names == std::vector<std::string>{"apples", "pears"});
  CHECK(train.spec().height == 16);
  CHECK(train.spec().channels == 3);
  const Sample s = train.sample(0);
  CHECK(s.lowres[0] == resize(s.image, 4, 4, Filter::bicubic));
  CHECK(s.lowres[1] == resize(s.image, 8, 8, Filter::bicubic));

  // The same command again is refused; --strict fails on the corrupt file.
  r = run_iris(args);
  CHECK(r.code == 1);
  CHECK(r.has("already holds a shard set; pass --overwrite"));
  r = run_iris(args + " --overwrite --strict");
  CHECK(r.code == 1);
  CHECK(r.has("corrupt.png"));
  // Bad arguments are caught before any work.
  r = run_iris("shard images " + shell_quote(src) + " --out " + shell_quote(dir.file("o2")) +
               " --size 16 --lowres 16");
  CHECK(r.code == 1);
  CHECK(r.has("low-res size 16 must be in [1, 16)"));
  r = run_iris("shard images " + shell_quote(src) + " --out x --size 16 --lowres 4 --crop diagonal");
  CHECK(r.code != 0);
  CHECK(r.has("--crop"));
  r = run_iris("shard images --help");
  CHECK(r.code == 0);
  CHECK(r.has("largest"));
}
