// Paired low-/high-res folders -> shards: files pair by name, the stored low-res copies are the low-res files
// themselves (not resizes), one scale factor and one size are enforced, every mismatch names its files, and
// nothing is written when a pair is wrong.
#include <doctest/doctest.h>

#include <filesystem>

#include "data/image_pairs.h"
#include "data/resize.h"
#include "data/shard.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using iris::test::check_throws_with;
using iris::test::pattern_image;
using iris::test::TempDir;
using iris::test::write_bytes;
namespace fs = std::filesystem;

namespace {

// A low-res partner that no resize of the high-res image gives (a real camera's would not either).
Image partner(int h, int w, int seed) {
  Image im = pattern_image(h, w, 3, seed + 50);
  im.at(0, 0, 0) = 7;
  return im;
}

struct PairFolders {
  TempDir dir{"pairs"};
  std::string hr = dir.file("hr"), lr = dir.file("lr"), out = dir.file("out");
  PairFolders() {
    fs::create_directories(hr);
    fs::create_directories(lr);
  }
  // Writes hr/<name>.<ext> (h x w) and lr/<name><suffix>.png (h/f x w/f).
  void add(const std::string& name, int h, int w, int f, int seed, const std::string& ext = "png",
           const std::string& suffix = "") const {
    write_image(hr + "/" + name + "." + ext, pattern_image(h, w, 3, seed));
    write_image(lr + "/" + name + suffix + ".png", partner(h / f, w / f, seed));
  }
  bool wrote_anything() const { return fs::exists(out) && !fs::is_empty(out); }
};

PairShardOptions opts(int size = 0) {
  PairShardOptions o;
  o.size = size;
  o.threads = 2;
  o.samples_per_shard = 2;
  return o;
}

}  // namespace

TEST_CASE("image pairs: files pair by name and the stored low-res images are the low-res files") {
  PairFolders f;
  f.add("b", 16, 24, 4, 2);
  f.add("a", 16, 24, 4, 1);
  f.add("c", 16, 24, 4, 3, "png");
  write_bytes(f.hr + "/notes.txt", {'h', 'i'});  // not an image by name: ignored
  const auto pairs = match_image_pairs(f.hr, f.lr);
  REQUIRE(pairs.size() == 3);
  CHECK(pairs[0].name == "a");
  CHECK(pairs[2].name == "c");
  CHECK(pairs[1].lr == f.lr + "/b.png");

  const PairShardReport r = write_pair_shards(f.hr, f.lr, f.out, opts());
  CHECK(r.pairs == 3);
  CHECK(r.factor == 4);
  CHECK(r.height == 16);
  CHECK(r.width == 24);
  const ShardSet set = ShardSet::open(f.out, {.verify_checksums = true});
  REQUIRE(set.size() == 3);
  CHECK(set.shards().size() == 2);
  CHECK(set.spec().lowres_sizes == std::vector<int>{4});
  CHECK(!set.spec().has_labels);
  CHECK(set.spec().source.find("factor 4") != std::string::npos);
  for (int i = 0; i < 3; ++i) {
    CHECK(set.image(i) == pattern_image(16, 24, 3, i + 1));
    CHECK(set.lowres(i, 4) == partner(4, 6, i + 1));
    CHECK(!(set.lowres(i, 4) == resize(set.image(i), 4, 6, Filter::bicubic)));
  }
}

TEST_CASE("image pairs: grey output, JPEG files and a low-res name suffix (DIV2K's 0001x4.png)") {
  PairFolders f;
  f.add("0001", 16, 16, 2, 1, "jpg", "x2");
  f.add("0002", 16, 16, 2, 2, "png", "x2");
  PairShardOptions o = opts();
  o.lr_suffix = "x2";
  o.channels = 1;
  const PairShardReport r = write_pair_shards(f.hr, f.lr, f.out, o);
  CHECK(r.factor == 2);
  const ShardSet set = ShardSet::open(f.out);
  CHECK(set.spec().channels == 1);
  CHECK(set.lowres(1, 8) == to_gray(partner(8, 8, 2)));
  // Without the suffix nothing pairs, and every file is named.
  check_throws_with([&] { (void)match_image_pairs(f.hr, f.lr); },
                    {"do not pair up", "0001.jpg", "0002.png", "0001x2.png", "0002x2.png"});
  // A low-res name without the suffix is an error naming it.
  write_image(f.lr + "/0003.png", partner(8, 8, 3));
  check_throws_with([&] { (void)match_image_pairs(f.hr, f.lr, "x2"); }, {"0003.png", "--lr-suffix 'x2'"});
}

TEST_CASE("image pairs: a file without partner or two files of one name are errors naming them") {
  PairFolders f;
  f.add("a", 16, 16, 4, 1);
  f.add("b", 16, 16, 4, 2);
  write_image(f.hr + "/lonely.png", pattern_image(16, 16, 3, 3));
  write_image(f.lr + "/stray.png", partner(4, 4, 4));
  check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts()); },
                    {"1 high-res file(s) without a low-res partner", "lonely.png",
                     "1 low-res file(s) without a high-res partner", "stray.png"});
  CHECK(!f.wrote_anything());
  fs::remove(f.hr + "/lonely.png");
  fs::remove(f.lr + "/stray.png");
  write_image(f.hr + "/a.jpg", pattern_image(16, 16, 3, 1));
  check_throws_with([&] { (void)match_image_pairs(f.hr, f.lr); }, {"a.jpg", "a.png", "same name 'a'"});
}

TEST_CASE("image pairs: another ratio, a non-integer ratio or a different size are errors naming the files") {
  SUBCASE("one pair of another scale factor") {
    PairFolders f;
    f.add("a", 16, 16, 4, 1);
    f.add("b", 16, 16, 2, 2);
    check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts()); },
                      {"hr/b.png' is 2x", "lr/b.png'", "hr/a.png' is 4x", "the same scale factor"});
    CHECK(!f.wrote_anything());
  }
  SUBCASE("a ratio that is not an integer, or not the same in both axes") {
    PairFolders f;
    f.add("a", 16, 16, 4, 1);
    write_image(f.hr + "/b.png", pattern_image(16, 16, 3, 2));
    write_image(f.lr + "/b.png", partner(5, 5, 2));
    check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts()); },
                      {"hr/b.png' (16x16)", "lr/b.png' (5x5)", "not one integer factor"});
    write_image(f.lr + "/b.png", partner(4, 8, 2));
    check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts()); },
                      {"hr/b.png' (16x16)", "lr/b.png' (8x4)", "width x 2, height x 4"});
    CHECK(!f.wrote_anything());
  }
  SUBCASE("an unreadable file") {
    PairFolders f;
    f.add("a", 16, 16, 4, 1);
    f.add("b", 16, 16, 4, 2);
    write_bytes(f.lr + "/b.png", {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
    check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts()); },
                      {"shard pairs", "lr/b.png"});
    CHECK(!f.wrote_anything());
  }
  SUBCASE("images of different sizes: refused, or stored as centred crops with --size") {
    PairFolders f;
    f.add("a", 16, 16, 4, 1);
    f.add("b", 20, 24, 4, 2);
    check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts()); },
                      {"hr/b.png' is 24x20", "hr/a.png' is 16x16", "--size"});
    check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts(6)); },
                      {"--size 6", "not a multiple of the pairs' scale factor 4"});
    check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts(20)); },
                      {"hr/a.png' (16x16) is smaller than --size 20"});
    CHECK(!f.wrote_anything());
    const PairShardReport r = write_pair_shards(f.hr, f.lr, f.out, opts(8));
    CHECK(r.height == 8);
    const ShardSet set = ShardSet::open(f.out);
    // a: offsets (16 - 8) / 2 = 4; b: rows (20 - 8) / 2 = 6 -> 4 (a multiple of 4), columns (24 - 8) / 2 = 8.
    CHECK(set.image(0) == crop(pattern_image(16, 16, 3, 1), 4, 4, 8, 8));
    CHECK(set.lowres(0, 2) == crop(partner(4, 4, 1), 1, 1, 2, 2));
    CHECK(set.image(1) == crop(pattern_image(20, 24, 3, 2), 4, 8, 8, 8));
    CHECK(set.lowres(1, 2) == crop(partner(5, 6, 2), 1, 2, 2, 2));
  }
}

TEST_CASE("image pairs: an existing set is replaced only with overwrite") {
  PairFolders f;
  f.add("a", 16, 16, 4, 1);
  write_pair_shards(f.hr, f.lr, f.out, opts());
  check_throws_with([&] { (void)write_pair_shards(f.hr, f.lr, f.out, opts()); },
                    {"already holds a shard set", "--overwrite"});
  f.add("b", 16, 16, 4, 2);
  PairShardOptions o = opts();
  o.overwrite = true;
  CHECK(write_pair_shards(f.hr, f.lr, f.out, o).pairs == 2);
  CHECK(ShardSet::open(f.out).size() == 2);
}
