// The one reader of "PATH[:DATASET]" image sets (data/image_set.h): image files, folders of them, HDF5
// datasets (u8 or floats, with labels and class names) and shard folders (full size or lowres_<h>), with
// errors that name the path and what it holds.
#include <filesystem>
#include <fstream>

#include "data/image_set.h"
#include "data/shard.h"
#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;
namespace fs = std::filesystem;

TEST_CASE("split_dataset splits PATH:NAME only when PATH exists and the whole argument does not") {
  TempDir dir("image-set-split");
  const std::string f = dir.file("a.h5");
  std::ofstream(f) << "x";
  CHECK(split_dataset(f + ":lowres") == std::pair<std::string, std::string>{f, "lowres"});
  CHECK(split_dataset(f) == std::pair<std::string, std::string>{f, ""});
  CHECK(split_dataset(dir.file("b.h5:lowres")).second.empty());  // b.h5 does not exist
  std::ofstream(dir.file("c:d")) << "x";                         // a file whose name holds a ':'
  CHECK(split_dataset(dir.file("c:d")).second.empty());
}

TEST_CASE("ImageSet reads an HDF5 dataset of images with its labels and class names") {
  TempDir dir("image-set-h5");
  const std::string path = dir.file("samples.h5");
  const Tensor images =
      stack_images({pattern_image(4, 4, 1, 0), pattern_image(4, 4, 1, 1), pattern_image(4, 4, 1, 2)});
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    root.write_tensor("images", images);
    root.write_tensor("lowres", u8_to_float(images.slice(1, 0, 2).contiguous()));  // floats in [-1, 1]
    root.write_tensor("labels", Tensor::from_vector<int32_t>({2, 0, 1}, {3}));
    root.write_tensor("flat", Tensor::zeros({3, 4}, DType::u8));
    root.set_strings_attr("class_names", {"a", "b", "c"});
  }
  const ImageSet set = ImageSet::open(path);
  CHECK(set.kind() == ImageSet::Kind::hdf5);
  CHECK(set.indexed());
  CHECK(set.size() == 3);
  CHECK(set.image(1) == pattern_image(4, 4, 1, 1));
  CHECK(set.name(1) == "#1");
  CHECK(set.images(1, 2).shape() == Shape{2, 4, 4, 1});
  CHECK(set.has_labels());
  CHECK(set.labels() == std::vector<int64_t>{2, 0, 1});
  CHECK(set.class_names() == std::vector<std::string>{"a", "b", "c"});
  // Floats are rounded as when saved to PNG (the u8 -> float -> u8 round trip is exact).
  const ImageSet low = ImageSet::open(path + ":lowres");
  CHECK(low.all_images().dtype() == DType::u8);
  CHECK(low.image(2) == unstack_images(images.slice(1, 0, 2).contiguous())[2]);
  CHECK(ImageSet::open(path, {.prefer_lowres = true}).image(0).height == 2);  // its only low-res dataset

  check_throws_with([&] { (void)ImageSet::open(path + ":nothing", {.tool = "cas"}); },
                    {"cas: '", "has no dataset 'nothing' (it has: flat, images, labels, lowres)"});
  check_throws_with([&] { (void)ImageSet::open(path + ":flat", {.tool = "fd"}); },
                    {"fd: '", "dataset 'flat' must be images [N, H, W, C]", "[3, 4]"});
  check_throws_with(
      [&] { (void)ImageSet::open(dir.file("nowhere.h5"), {.tool = "eval", .role = "reference"}); },
      {"eval: reference '", "nowhere.h5' does not exist"});
  check_throws_with([&] { (void)set.image(3); }, {"image 3 is outside", "3 images"});
}

TEST_CASE("ImageSet reads a folder of image files by sorted name and matches another folder by name") {
  TempDir dir("image-set-folder");
  fs::create_directories(dir.file("pred"));
  fs::create_directories(dir.file("truth"));
  for (const char* n : {"b.png", "a.png"})
    write_png(dir.file(std::string("pred/") + n), pattern_image(5, 5, 3, n[0]));
  for (const char* n : {"a.png", "b.png", "c.png"})
    write_png(dir.file(std::string("truth/") + n), pattern_image(5, 5, 3, n[0] + 1));
  std::ofstream(dir.file("pred/notes.txt")) << "not an image";
  const ImageSet pred = ImageSet::open(dir.file("pred"));
  CHECK(pred.kind() == ImageSet::Kind::image_folder);
  CHECK(pred.named());
  REQUIRE(pred.size() == 2);
  CHECK(pred.name(0) == "a.png");
  CHECK(pred.image(1) == pattern_image(5, 5, 3, 'b'));
  CHECK_FALSE(pred.has_labels());
  CHECK(pred.all_images().shape() == Shape{2, 5, 5, 3});

  const ImageSet truth = ImageSet::open(dir.file("truth"), {.tool = "eval"});
  const ImageSet matched = truth.matching({"b.png", "a.png"}, "reference");
  REQUIRE(matched.size() == 2);
  CHECK(matched.image(0) == pattern_image(5, 5, 3, 'b' + 1));
  check_throws_with(
      [&] {
        (void)truth.matching({"a.png", "z.png"}, "reference");
      },
      {"eval: the reference folder", "no image named like 1 of the predictions (z.png)"});

  const ImageSet one = ImageSet::open(dir.file("pred/a.png"));
  CHECK(one.kind() == ImageSet::Kind::image_file);
  CHECK(one.size() == 1);
  CHECK(one.name(0) == "a.png");

  write_png(dir.file("pred/c.png"), pattern_image(6, 5, 3, 0));
  check_throws_with([&] { (void)ImageSet::open(dir.file("pred"), {.tool = "fd"}).all_images(); },
                    {"fd: '", "c.png' is 6x5x3", "share one size"});
  check_throws_with([&] { (void)ImageSet::open(dir.file("pred/notes.txt"), {.tool = "eval"}); },
                    {"eval: '", "notes.txt' is not an image file"});
  fs::create_directories(dir.file("empty"));
  check_throws_with([&] { (void)ImageSet::open(dir.file("empty"), {.tool = "eval", .role = "low-res"}); },
                    {"eval: the low-res folder '", "holds no PNG or JPEG file"});
  check_throws_with([&] { (void)ImageSet::open(dir.file("pred") + ":images", {.tool = "eval"}); },
                    {"is a folder of images; ':images' has no meaning there"});
}

TEST_CASE("ImageSet reads a shard folder's images or low-res copies with its labels") {
  TempDir dir("image-set-shards");
  ShardSpec spec;
  spec.height = spec.width = 8;
  spec.channels = 1;
  spec.lowres_sizes = {4};
  spec.has_labels = true;
  spec.class_names = {"x", "y"};
  {
    ShardWriter w(dir.path().string(), spec, {.samples_per_shard = 2});
    for (int i = 0; i < 5; ++i) w.add(pattern_image(8, 8, 1, i), i % 2);
    w.finish();
  }
  const ShardSet shards = ShardSet::open(dir.path().string());
  const ImageSet set = ImageSet::open(dir.path().string());
  CHECK(set.kind() == ImageSet::Kind::shards);
  CHECK(set.size() == 5);
  CHECK(set.image(3) == pattern_image(8, 8, 1, 3));
  CHECK(set.labels() == std::vector<int64_t>{0, 1, 0, 1, 0});
  CHECK(set.class_names() == spec.class_names);
  const ImageSet low = ImageSet::open(dir.path().string() + ":lowres_4");
  CHECK(low.image(2) == shards.lowres(2, 4));
  CHECK(low.images(1, 3).shape() == Shape{3, 4, 4, 1});
  CHECK(ImageSet::open(dir.path().string(), {.prefer_lowres = true}).image(0).height == 4);
  check_throws_with([&] { (void)ImageSet::open(dir.path().string() + ":lowres_5", {.tool = "cas"}); },
                    {"cas: the shard folder '", "has no 'lowres_5' (it has: images, lowres_4)"});
}
