// Shard folders: byte-identical round trips, roll-over, the index, and every kind of bad input (missing,
// truncated, corrupted shards, wrong version, wrong image size, bad index) as an iris::Error naming the file.
#include <nlohmann/json.hpp>

#include "data/resize.h"
#include "data/shard.h"
#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// 8x6 RGB (not square), one low-res size 4x3, labels from 3 classes.
ShardSpec small_spec() {
  ShardSpec s;
  s.height = 8;
  s.width = 6;
  s.channels = 3;
  s.lowres_sizes = {4};
  s.has_labels = true;
  s.class_names = {"zero", "one", "two"};
  s.source = "unit test";
  return s;
}

// Writes `n` pattern samples, 4 per shard; odd samples bring their own low-res image.
std::vector<Sample> write_small_set(const std::string& dir, int n, ShardSpec spec = small_spec()) {
  ShardWriterOptions o;
  o.samples_per_shard = 4;
  ShardWriter w(dir, spec, o);
  std::vector<Sample> samples;
  for (int i = 0; i < n; ++i) {
    Sample s;
    s.image = pattern_image(spec.height, spec.width, spec.channels, i);
    s.label = i % 3;
    if (i % 2) {
      s.lowres = {pattern_image(4, spec.lowres_width(4), spec.channels, 100 + i)};
      w.add(s);
    } else {
      w.add(s.image, s.label);
      s.lowres = {resize(s.image, 4, spec.lowres_width(4), Filter::bicubic)};
    }
    samples.push_back(s);
  }
  w.finish();
  return samples;
}

}  // namespace

TEST_CASE("a shard set round-trips byte for byte across shard boundaries") {
  TempDir dir("shard-rt");
  const std::string d = dir.path().string();
  const auto samples = write_small_set(d, 10);
  // A stray temporary from a killed writer is ignored: readers only follow the index.
  write_bytes(dir.file("shard-00001.h5.tmp-99999"), std::vector<char>(100, 'x'));
  const ShardSet set = ShardSet::open(d, {.verify_checksums = true});
  CHECK(set.size() == 10);
  REQUIRE(set.shards().size() == 3);
  CHECK(set.shards()[0].file == "shard-00000.h5");
  CHECK(set.shards()[2].count == 2);
  CHECK(set.shards()[2].first == 8);
  CHECK(set.spec() == small_spec());
  CHECK(set.locate(5) == std::pair<int64_t, int64_t>{1, 1});
  for (int i = 0; i < 10; ++i) {
    CAPTURE(i);
    const Sample s = set.sample(i);
    CHECK(s.image == samples[i].image);
    CHECK(s.label == samples[i].label);
    REQUIRE(s.lowres.size() == 1);
    CHECK(s.lowres[0] == samples[i].lowres[0]);
  }
  // Ranges spanning shards.
  std::vector<Image> want;
  for (int i = 2; i < 9; ++i) want.push_back(samples[i].image);
  CHECK(unstack_images(set.images(2, 7)) == want);
  CHECK(set.labels(3, 6).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 0, 1, 2});
  CHECK(unstack_images(set.lowres(4, 7, 3))[2] == samples[9].lowres[0]);
  check_throws_with([&] { (void)set.images(8, 3); }, {"samples [8, 11)", "10 samples"});
  check_throws_with([&] { (void)set.lowres(0, 3); }, {"no low-res size 3"});
  // The index is plain JSON that lists the shards.
  const auto j = nlohmann::json::parse(read_bytes(dir.file("index.json")));
  CHECK(j["format"] == "iris-shard");
  CHECK(j["format_version"] == 1);
  CHECK(j["num_samples"] == 10);
  CHECK(j["shards"][1]["count"] == 4);
  CHECK(j["shards"][1]["bytes"] == fs::file_size(dir.file("shard-00001.h5")));
  // Each shard carries the format attributes and a checksum per dataset.
  const h5::File f = h5::File::open(dir.file("shard-00002.h5"));
  const h5::Group root = f.root();
  CHECK(root.string_attr("format") == "iris-shard");
  CHECK(root.int_attr("count") == 2);
  CHECK(root.strings_attr("class_names") == small_spec().class_names);
  CHECK(root.children() == std::vector<std::string>{"images", "labels", "lowres_4"});
  for (const auto& name : root.children()) CHECK(root.open_dataset(name).has_checksum());
}

TEST_CASE("a set without labels or low-res images") {
  TempDir dir("shard-plain");
  ShardSpec spec;
  spec.height = spec.width = 5;
  spec.channels = 1;
  {
    ShardWriter w(dir.path().string(), spec, {.samples_per_shard = 100});
    for (int i = 0; i < 3; ++i) w.add(pattern_image(5, 5, 1, i));
    check_throws_with([&] { w.add(pattern_image(5, 5, 1, 0), 2); }, {"has label 2", "no labels"});
    w.finish();
    check_throws_with([&] { w.add(pattern_image(5, 5, 1, 0)); }, {"add after finish"});
  }
  const ShardSet set = ShardSet::open(dir.path().string());
  CHECK(set.size() == 3);
  CHECK(set.sample(2).label == -1);
  CHECK(set.sample(2).lowres.empty());
  CHECK(set.image(1) == pattern_image(5, 5, 1, 1));
  check_throws_with([&] { (void)set.label(0); }, {"has no labels"});
}

TEST_CASE("ShardWriter rejects samples that do not fit the spec") {
  TempDir dir("shard-writer");
  ShardWriter w(dir.path().string(), small_spec(), {.samples_per_shard = 4});
  check_throws_with([&] { w.add(pattern_image(8, 8, 3, 0), 1); }, {"sample 0", "8x8x3", "8x6x3"});
  check_throws_with([&] { w.add(pattern_image(8, 6, 3, 0), 3); }, {"label 3", "3 classes"});
  check_throws_with([&] { w.add(pattern_image(8, 6, 3, 0)); }, {"no label"});
  Sample s{pattern_image(8, 6, 3, 0), 0, {pattern_image(4, 4, 3, 0)}};
  check_throws_with([&] { w.add(s); }, {"low-res image 0", "4x4x3", "4x3x3"});
  ShardSpec bad = small_spec();
  bad.lowres_sizes = {3};  // 3 * 6 / 8 is not an integer
  check_throws_with([&] { ShardWriter x(dir.file("other"), bad); },
                    {"low-res height 3", "non-integer width"});
  bad.lowres_sizes = {};
  bad.channels = 4;
  check_throws_with([&] { ShardWriter x(dir.file("other"), bad); }, {"4 channels"});
}

TEST_CASE("an unfinished or existing set is refused") {
  TempDir dir("shard-unfinished");
  {
    ShardWriter w(dir.path().string(), small_spec(), {.samples_per_shard = 2});
    for (int i = 0; i < 5; ++i) w.add(pattern_image(8, 6, 3, i), 0);
    // no finish(): two shards are on disk, the index is not
  }
  CHECK(fs::exists(dir.file("shard-00001.h5")));
  check_throws_with([&] { (void)ShardSet::open(dir.path().string()); },
                    {"no index.json", dir.path().string()});
  write_small_set(dir.path().string(), 3);
  check_throws_with([&] { ShardWriter w(dir.path().string(), small_spec()); }, {"already holds a shard set"});
  ShardWriter w(dir.path().string(), small_spec(),
                {.overwrite = true});  // allowed, and removes the old index
  CHECK_FALSE(fs::exists(dir.file("index.json")));
  w.add(pattern_image(8, 6, 3, 0), 0);
  write_bytes(dir.file("notes.txt"), {'h', 'i'});
  w.finish();
  // Shards the new set does not list are gone; other files stay.
  CHECK(fs::exists(dir.file("shard-00000.h5")));
  CHECK_FALSE(fs::exists(dir.file("shard-00001.h5")));
  CHECK_FALSE(fs::exists(dir.file("shard-00002.h5")));
  CHECK(fs::exists(dir.file("notes.txt")));
  CHECK(ShardSet::open(dir.path().string()).size() == 1);
}

TEST_CASE("a missing shard is an error naming it") {
  TempDir dir("shard-missing");
  write_small_set(dir.path().string(), 10);
  fs::remove(dir.file("shard-00001.h5"));
  check_throws_with([&] { (void)ShardSet::open(dir.path().string()); }, {"missing shard", "shard-00001.h5"});
}

TEST_CASE("a truncated shard is an error naming it") {
  TempDir dir("shard-trunc");
  write_small_set(dir.path().string(), 10);
  fs::resize_file(dir.file("shard-00002.h5"), fs::file_size(dir.file("shard-00002.h5")) / 2);
  check_throws_with([&] { (void)ShardSet::open(dir.path().string()); }, {"shard-00002.h5"});
}

TEST_CASE("a corrupted shard is an error naming it") {
  TempDir dir("shard-corrupt");
  write_small_set(dir.path().string(), 10);
  const std::string shard = dir.file("shard-00001.h5");
  int64_t offset = -1;
  {
    const h5::File f = h5::File::open(shard);
    offset = f.root().open_dataset("images").file_offset();
  }
  REQUIRE(offset > 0);
  flip_byte(shard, offset + 100);
  // The structure is intact, so a plain open succeeds; checksums find the damage.
  const ShardSet set = ShardSet::open(dir.path().string());
  check_throws_with([&] { set.verify_checksums(); }, {"checksum mismatch", "shard-00001.h5", "/images"});
  check_throws_with([&] { (void)ShardSet::open(dir.path().string(), {.verify_checksums = true}); },
                    {"checksum mismatch", "shard-00001.h5"});
  // Damage to the file's header is found at open.
  flip_byte(shard, 0);
  check_throws_with([&] { (void)ShardSet::open(dir.path().string()); }, {"shard-00001.h5"});
}

TEST_CASE("a shard of another format version is an error naming it") {
  TempDir dir("shard-version");
  write_small_set(dir.path().string(), 10);
  {
    h5::File f = h5::File::open(dir.file("shard-00000.h5"), h5::File::Mode::read_write);
    f.root().set_int_attr("format_version", 2);
  }
  check_throws_with([&] { (void)ShardSet::open(dir.path().string()); },
                    {"shard-00000.h5", "format version 2", "reads version 1"});
  {
    h5::File f = h5::File::open(dir.file("shard-00000.h5"), h5::File::Mode::read_write);
    f.root().set_string_attr("format", "something-else");
  }
  check_throws_with([&] { (void)ShardSet::open(dir.path().string()); },
                    {"shard-00000.h5", "not an Iris shard"});
}

TEST_CASE("a shard with images of the wrong size is an error naming it") {
  TempDir dir("shard-size");
  const std::string a = dir.file("a"), b = dir.file("b");
  write_small_set(a, 10);
  ShardSpec other = small_spec();
  other.height = 10;  // 10x6 images with low-res 5x3
  other.lowres_sizes = {5};
  {
    ShardWriter w(b, other, {.samples_per_shard = 4});
    for (int i = 0; i < 10; ++i) w.add(pattern_image(10, 6, 3, i), 0);
    w.finish();
  }
  fs::copy_file(fs::path(b) / "shard-00001.h5", fs::path(a) / "shard-00001.h5",
                fs::copy_options::overwrite_existing);
  check_throws_with([&] { (void)ShardSet::open(a); }, {"shard-00001.h5", "10x6x3", "8x6x3"});
}

TEST_CASE("a shard whose datasets disagree with the index is an error naming it") {
  TempDir dir("shard-count");
  write_small_set(dir.path().string(), 10);
  {
    h5::File f = h5::File::open(dir.file("shard-00002.h5"), h5::File::Mode::read_write);
    f.root().set_int_attr("count", 3);
  }
  check_throws_with([&] { (void)ShardSet::open(dir.path().string()); },
                    {"shard-00002.h5", "3 samples", "index says 2"});
  {
    h5::File f = h5::File::open(dir.file("shard-00002.h5"), h5::File::Mode::read_write);
    h5::Group root = f.root();
    root.set_int_attr("count", 2);
    root.write_tensor("extra", Tensor::zeros({1000}, DType::i32));
  }
  // Consistent again, but no longer the file the index describes: its size gives it away.
  check_throws_with([&] { (void)ShardSet::open(dir.path().string()); },
                    {"shard-00002.h5", "bytes but the index says"});
}

TEST_CASE("bad index files are errors naming them") {
  TempDir dir("shard-index");
  const std::string d = dir.path().string();
  write_small_set(d, 6);
  const std::string index = dir.file("index.json");
  const auto good = read_bytes(index);
  write_bytes(index,
              std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)));
  check_throws_with([&] { (void)ShardSet::open(d); }, {"index.json", "malformed"});
  auto j = nlohmann::json::parse(good);
  j["format_version"] = 7;
  const std::string s0 = j.dump();
  write_bytes(index, std::vector<char>(s0.begin(), s0.end()));
  check_throws_with([&] { (void)ShardSet::open(d); }, {"index.json", "format version 7"});
  j = nlohmann::json::parse(good);
  j["num_samples"] = 5;
  const std::string s1 = j.dump();
  write_bytes(index, std::vector<char>(s1.begin(), s1.end()));
  check_throws_with([&] { (void)ShardSet::open(d); }, {"index.json", "5 samples", "hold 6"});
  j = nlohmann::json::parse(good);
  j["shards"][0]["file"] = "../elsewhere.h5";
  const std::string s2 = j.dump();
  write_bytes(index, std::vector<char>(s2.begin(), s2.end()));
  check_throws_with([&] { (void)ShardSet::open(d); }, {"index.json", "bad shard file name"});
  j = nlohmann::json::parse(good);
  j.erase("height");
  const std::string s3 = j.dump();
  write_bytes(index, std::vector<char>(s3.begin(), s3.end()));
  check_throws_with([&] { (void)ShardSet::open(d); }, {"index.json", "height"});
  check_throws_with([&] { (void)ShardSet::open(dir.file("nowhere")); }, {"nowhere", "no such folder"});
}
