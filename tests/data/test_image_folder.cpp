// Image folders -> shards: listing (classes, hidden files, unlabelled folders), square crops, the seeded
// stratified split, and the parallel conversion (same shards for any thread count, bad files skipped or
// fatal with strict).
#include <filesystem>
#include <fstream>
#include <set>

#include "data/image_folder.h"
#include "data/resize.h"
#include "data/shard.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// root/<class>/<name>.png for each (class, h, w): images of several sizes and shapes; plus a corrupt PNG, a
// text file and a hidden file. Returns the number of valid images.
int make_folder(const std::string& root) {
  const std::vector<std::tuple<std::string, int, int>> files = {
      {"cat", 40, 30}, {"cat", 30, 50}, {"cat", 32, 32}, {"cat", 20, 20}, {"cat", 24, 36},
      {"dog", 33, 45}, {"dog", 50, 20}, {"dog", 16, 16}, {"dog", 64, 48}};
  int seed = 0;
  for (const auto& [cls, h, w] : files) {
    fs::create_directories(fs::path(root) / cls);
    write_png((fs::path(root) / cls / ("im" + std::to_string(seed) + ".png")).string(),
              pattern_image(h, w, 3, seed));
    ++seed;
  }
  write_jpeg((fs::path(root) / "dog" / "photo.JPG").string(), pattern_image(30, 40, 3, 99));
  write_text((fs::path(root) / "cat" / "broken.png").string(), "this is not a PNG file");
  write_text((fs::path(root) / "dog" / "notes.txt").string(), "ignored");
  write_text((fs::path(root) / "dog" / ".hidden.png").string(), "skipped: hidden");
  return static_cast<int>(files.size()) + 1;
}

}  // namespace

TEST_CASE("image folders: classes are the sorted subfolders, hidden and non-image files are skipped") {
  TempDir dir("imfolder-scan");
  const std::string root = dir.file("src");
  make_folder(root);
  fs::create_directories(fs::path(root) / "cat" / "nested");
  write_png((fs::path(root) / "cat" / "nested" / "deep.png").string(), pattern_image(12, 12, 1, 1));
  write_text(dir.file("src/README.txt"), "beside the classes");
  const ImageFolder f = scan_image_folder(root);
  CHECK(f.class_names == std::vector<std::string>{"cat", "dog"});
  REQUIRE(f.files.size() == 12);  // 5 + 1 broken + 1 nested cat, 4 + 1 jpeg dogs
  CHECK(f.ignored == 2);          // notes.txt, README.txt
  for (size_t i = 1; i < f.files.size(); ++i) {
    CHECK(f.files[i - 1].label <= f.files[i].label);
    if (f.files[i - 1].label == f.files[i].label) CHECK(f.files[i - 1].path < f.files[i].path);
  }
  CHECK(std::count_if(f.files.begin(), f.files.end(), [](const ImageFile& x) { return x.label == 0; }) == 7);
  for (const auto& x : f.files) CHECK(x.path.find(".hidden") == std::string::npos);

  // No subfolders: one unlabelled set.
  const std::string flat = dir.file("flat");
  fs::create_directories(flat);
  write_png(flat + "/b.png", pattern_image(8, 8, 3, 1));
  write_png(flat + "/a.png", pattern_image(8, 8, 3, 2));
  const ImageFolder u = scan_image_folder(flat);
  CHECK(u.class_names.empty());
  REQUIRE(u.files.size() == 2);
  CHECK(fs::path(u.files[0].path).filename() == "a.png");
  CHECK(u.files[0].label == -1);

  fs::create_directories(dir.file("empty/cls"));
  check_throws_with([&] { (void)scan_image_folder(dir.file("empty")); }, {"empty", "no PNG or JPEG"});
  check_throws_with([&] { (void)scan_image_folder(dir.file("missing")); }, {"missing", "no such folder"});
  CHECK(is_image_file_name("x.JPEG"));
  CHECK(!is_image_file_name("x.png.txt"));
}

TEST_CASE("image folders: center and largest square crops") {
  const Image wide = pattern_image(20, 40, 3, 3);
  // center: the short side becomes 10 (bicubic), then the centred 10x10 of the 10x20 result.
  CHECK(square_crop(wide, 10, CropMode::center) ==
        center_crop(resize(wide, 10, 20, Filter::bicubic), 10, 10));
  // largest: the centred 20x20 square, then area resampling (2x2 block means).
  CHECK(square_crop(wide, 10, CropMode::largest) == resize(center_crop(wide, 20, 20), 10, 10, Filter::area));
  const Image tall = pattern_image(41, 17, 1, 4);
  CHECK(square_crop(tall, 17, CropMode::center) == center_crop(tall, 17, 17));  // no resize needed
  const Image c = square_crop(tall, 8, CropMode::center);
  CHECK(c.height == 8);
  CHECK(c.width == 8);
  // Smaller images are upsampled.
  const Image up = square_crop(pattern_image(6, 9, 3, 5), 12, CropMode::largest);
  CHECK(up.height == 12);
  CHECK(up.width == 12);
  CHECK(crop_mode_from_name("largest") == CropMode::largest);
  check_throws_with([] { (void)crop_mode_from_name("random"); }, {"random", "center, largest or none"});
}

TEST_CASE("image folders: the split is stratified, disjoint, complete and fixed by the seed") {
  ImageFolder f;
  f.class_names = {"a", "b", "c"};
  const int sizes[3] = {40, 7, 13};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < sizes[c]; ++i) f.files.push_back({std::to_string(c) + "/" + std::to_string(i), c});
  const FolderSplit s = split_image_folder(f, 0.25, 7);
  std::vector<int> val_per_class(3, 0);
  for (int64_t i : s.val) ++val_per_class[static_cast<size_t>(f.files[static_cast<size_t>(i)].label)];
  CHECK(val_per_class == std::vector<int>{10, 2, 3});  // round(0.25 n): 10, 1.75 -> 2, 3.25 -> 3
  std::set<int64_t> all(s.train.begin(), s.train.end());
  for (int64_t i : s.val) CHECK(all.insert(i).second);  // disjoint
  CHECK(all.size() == f.files.size());                  // complete
  // Same seed, same split and order; another seed, another order.
  const FolderSplit again = split_image_folder(f, 0.25, 7), other = split_image_folder(f, 0.25, 8);
  CHECK(again.train == s.train);
  CHECK(again.val == s.val);
  CHECK(other.train != s.train);
  // The train order mixes the classes (not 40 a's first).
  std::set<int32_t> first_labels;
  for (size_t i = 0; i < 10; ++i) first_labels.insert(f.files[static_cast<size_t>(s.train[i])].label);
  CHECK(first_labels.size() > 1);
  CHECK(split_image_folder(f, 0.0, 1).val.empty());
  check_throws_with([&] { (void)split_image_folder(f, 1.0, 1); }, {"fraction", "[0, 1)"});
}

TEST_CASE("image folders: conversion to shards is the same for any thread count and skips bad files") {
  TempDir dir("imfolder-shards");
  const std::string root = dir.file("src");
  const int valid = make_folder(root);
  ImageFolderShardOptions o;
  o.size = 20;
  o.lowres_sizes = {4, 10};
  o.val_fraction = 0.25;
  o.seed = 3;
  o.samples_per_shard = 3;
  std::vector<std::string> skipped;
  std::vector<int64_t> progress;
  o.on_skip = [&](const std::string& path, const std::string& error) {
    skipped.push_back(path);
    CHECK(error.find("broken.png") != std::string::npos);
  };
  o.progress = [&](int64_t done, int64_t total) {
    progress.push_back(done);
    CHECK(total == valid + 1);
  };
  o.threads = 1;
  const ImageFolderShardReport r1 = write_image_folder_shards(root, dir.file("out1"), o);
  CHECK(r1.skipped == 1);
  REQUIRE(skipped.size() == 1);
  CHECK(fs::path(skipped[0]).filename() == "broken.png");
  CHECK(r1.train + r1.val == valid);
  // val gets round(0.25 * 6) + round(0.25 * 5) = 2 + 1 files, less the broken cat if it drew val.
  const ImageFolder listed = scan_image_folder(root);
  const FolderSplit split = split_image_folder(listed, 0.25, 3);
  const bool broken_in_val = std::any_of(split.val.begin(), split.val.end(), [&](int64_t i) {
    return listed.files[static_cast<size_t>(i)].path.find("broken") != std::string::npos;
  });
  CHECK(split.val.size() == 3);
  CHECK(r1.val == 3 - (broken_in_val ? 1 : 0));
  CHECK(r1.upscaled == 1);  // the 16x16 dog, below the size 20
  CHECK(r1.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(progress.size() == static_cast<size_t>(valid + 1));
  CHECK(progress.back() == valid + 1);

  o.threads = 4;
  o.on_skip = nullptr;
  o.progress = nullptr;
  write_image_folder_shards(root, dir.file("out4"), o);
  for (const char* split : {"train", "val"}) {
    const ShardSet a = ShardSet::open(dir.file("out1/") + split, {.verify_checksums = true});
    const ShardSet b = ShardSet::open(dir.file("out4/") + split);
    REQUIRE(a.size() == b.size());
    CHECK(a.spec() == b.spec());
    CHECK(a.images(0, a.size()).to_vector<int>() == b.images(0, b.size()).to_vector<int>());
    CHECK(a.labels(0, a.size()).to_vector<int>() == b.labels(0, b.size()).to_vector<int>());
    CHECK(a.spec().class_names == std::vector<std::string>{"cat", "dog"});
    CHECK(a.spec().lowres_sizes == std::vector<int>{4, 10});
    // Every sample is the crop of one of the files of its class, with bicubic low-res copies.
    const ImageFolder f = scan_image_folder(root);
    for (int64_t i = 0; i < a.size(); ++i) {
      const Sample s = a.sample(i);
      bool found = false;
      for (const auto& file : f.files) {
        if (file.label != s.label || file.path.find("broken") != std::string::npos) continue;
        if (square_crop(to_rgb(read_image(file.path)), 20, CropMode::center) == s.image) found = true;
      }
      CHECK(found);
      CHECK(s.lowres[0] == resize(s.image, 4, 4, Filter::bicubic));
      CHECK(s.lowres[1] == resize(s.image, 10, 10, Filter::bicubic));
    }
  }

  // strict: the bad file stops the conversion, naming it.
  o.strict = true;
  check_throws_with([&] { write_image_folder_shards(root, dir.file("out-strict"), o); },
                    {"broken.png", "strict"});
  // An existing set is kept unless overwrite.
  o.strict = false;
  check_throws_with([&] { write_image_folder_shards(root, dir.file("out1"), o); },
                    {"already holds a shard set"});
  o.overwrite = true;
  o.val_fraction = 0;
  const ImageFolderShardReport r2 = write_image_folder_shards(root, dir.file("out1"), o);
  CHECK(r2.val == 0);
  CHECK(ShardSet::open(dir.file("out1/train")).size() == valid);
  CHECK(!fs::exists(dir.file("out1/val/index.json")));  // the old val set is gone
}

TEST_CASE("image folders: a folder of only unreadable images is an error naming the count") {
  TempDir dir("imfolder-unreadable");
  const std::string root = dir.file("src");
  fs::create_directories(root);
  for (const char* name : {"a.png", "b.png", "c.jpg"})
    write_bytes(root + "/" + name, std::vector<char>(64, 'z'));
  ImageFolderShardOptions o;
  o.size = 8;
  o.lowres_sizes = {4};
  o.val_fraction = 0;
  check_throws_with([&] { write_image_folder_shards(root, dir.file("out"), o); },
                    {"all 3 image file(s)", "unreadable", "no shard set written"});
  CHECK_FALSE(fs::exists(dir.file("out/train/index.json")));
}

TEST_CASE("image folders: crop none keeps the aspect, and images of another aspect are refused") {
  TempDir dir("imfolder-aspect");
  const std::string root = dir.file("src");
  fs::create_directories(root);
  // 3:2 photos (60x40 and 30x20 come out 24x16 at height 16) and, later, a square one.
  write_png(root + "/a.png", pattern_image(40, 60, 3, 1));
  write_png(root + "/b.png", pattern_image(20, 30, 3, 2));
  ImageFolderShardOptions o;
  o.size = 16;
  o.lowres_sizes = {4};
  o.crop = CropMode::none;
  o.val_fraction = 0;
  o.threads = 1;
  const ImageFolderShardReport r = write_image_folder_shards(root, dir.file("out"), o);
  CHECK(r.train == 2);
  const ShardSet set = ShardSet::open(dir.file("out/train"));
  CHECK(set.spec().height == 16);
  CHECK(set.spec().width == 24);
  CHECK(set.spec().lowres_width(4) == 6);
  for (int64_t i = 0; i < set.size(); ++i) {
    // The low-res copy is the antialiased bicubic resize of the stored image, 4x6 here.
    CHECK(set.lowres(i, 4) == resize(set.image(i), 4, 6, Filter::bicubic));
  }
  // The stored image is the whole photo area-resampled (no crop): a.png is 60x40 -> 24x16.
  const Image a = read_png(root + "/a.png");
  bool found = false;
  for (int64_t i = 0; i < set.size(); ++i) found = found || set.image(i) == resize(a, 16, 24, Filter::area);
  CHECK(found);
  // Widths round to what every low-res copy needs: 16 high with low-res 6 (16/gcd(16, 6) = 8): 50x30 is
  // 26.7 wide at height 16, rounded to 24.
  CHECK(lowres_width_multiple(16, {6}) == 8);
  CHECK(lowres_width_multiple(16, {4, 8}) == 4);
  CHECK(aspect_resize(pattern_image(30, 50, 3, 0), 16, 8).width == 24);
  check_throws_with([&] { square_crop(a, 16, CropMode::none); }, {"crop mode none keeps the aspect"});
  CHECK(crop_mode_from_name("none") == CropMode::none);
  CHECK(std::string(crop_mode_name(CropMode::none)) == "none");
  write_png(root + "/c.png", pattern_image(32, 32, 3, 3));
  check_throws_with([&] { write_image_folder_shards(root, dir.file("out2"), o); },
                    {"16x16", "24x16", "shard images of other aspects separately"});
}
