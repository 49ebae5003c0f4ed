// tools/rate/sources.h: a study is built from samples.h5 / cascade.h5 / image files / shard folders whose
// truth images agree; the cache holds exactly their images; every mismatch is an error naming the file.
#include <doctest/doctest.h>

#include <filesystem>

#include "data/shard.h"
#include "framework/core/error.h"
#include "tests/common/test_util.h"
#include "tests/rate/rate_test_util.h"

using namespace iris;
using namespace iris::rate;
namespace fs = std::filesystem;

TEST_CASE("create_study caches the truth and every method's outputs and records them in study.json") {
  test::TempDir root("rate-create");
  const auto methods = test::write_two_methods(root.path(), 5);
  const std::string dir = root.file("study");
  const StudyConfig s = test::make_study(dir, methods, 3, 11, true);
  CHECK(s.images == 5);
  CHECK(s.images_per_method == 3);
  CHECK(s.trials_per_rater() == 6);
  CHECK(s.seed == 11);
  CHECK(s.show_input);
  CHECK(s.height == 8);
  CHECK(s.channels == 1);
  CHECK(s.display_px == 256);  // 8 px enlarged 32x
  REQUIRE(s.methods.size() == 2);
  CHECK(s.methods[0].name == "sr3");
  CHECK(s.methods[0].attrs["sampler"] == "ddpm");
  CHECK(s.image_names[4] == "img4");
  CHECK(s.truth_source.find("sr3/samples.h5:truth") != std::string::npos);
  const auto truth = test::pattern_images(5), sr3 = test::pattern_images(5, 1),
             reg = test::pattern_images(5, 2);
  for (int i = 0; i < 5; ++i) {
    CHECK(data::read_png(truth_image_file(dir, i)) == truth[static_cast<size_t>(i)]);
    CHECK(data::read_png(method_image_file(dir, "sr3", i)) == sr3[static_cast<size_t>(i)]);
    CHECK(data::read_png(method_image_file(dir, "regression", i)) == reg[static_cast<size_t>(i)]);
    CHECK(data::read_png(input_image_file(dir, i)).height == 4);
  }
  const StudyConfig back = load_study(dir);
  CHECK(study_to_json(back) == study_to_json(s));
  test::check_throws_with([&] { test::make_study(dir, methods); }, {"already holds a study"});
}

TEST_CASE("methods sampled from other inputs are refused, naming the file and the image") {
  test::TempDir root("rate-mismatch");
  const auto methods = test::write_two_methods(root.path(), 4);
  // A third method whose truth differs in image 2.
  test::SampleFile f;
  f.images = test::pattern_images(4, 3);
  f.truth = test::pattern_images(4);
  f.truth[2].at(0, 0) ^= 1;
  const std::string odd = root.file("odd.h5");
  test::write_sample_file(odd, f);
  auto args = methods;
  args.push_back("odd=" + odd);
  test::check_throws_with([&] { test::make_study(root.file("s1"), args); },
                          {"truth images of method 'odd'", odd, "image 2 ('img2')", "same inputs"});
  CHECK_FALSE(study_exists(root.file("s1")));
}

TEST_CASE("create_study refuses sets that do not fit together, naming them") {
  test::TempDir root("rate-bad");
  const auto methods = test::write_two_methods(root.path(), 4);
  // Another size.
  test::SampleFile big;
  big.images = test::pattern_images(4, 1, 16);
  const std::string big_path = root.file("big.h5");
  test::write_sample_file(big_path, big);
  test::check_throws_with(
      [&] {
        test::make_study(root.file("a"), {methods[0], "big=" + big_path});
      },
      {"method 'big'", "16x16x1", "8x8x1"});
  // Fewer images, without --count.
  test::SampleFile few;
  few.images = test::pattern_images(3, 1);
  const std::string few_path = root.file("few.h5");
  test::write_sample_file(few_path, few);
  test::check_throws_with(
      [&] {
        test::make_study(root.file("b"), {methods[0], "few=" + few_path});
      },
      {"method 'few'", "has 3 images", "--count"});
  // No truth anywhere.
  test::check_throws_with([&] { test::make_study(root.file("c"), {"few=" + few_path}); },
                          {"no truth images", "--truth"});
  // Not a file Iris reads.
  std::ofstream(root.file("junk.txt")) << "hello";
  test::check_throws_with([&] { test::make_study(root.file("d"), {"junk=" + root.file("junk.txt")}); },
                          {"method 'junk'", "neither an HDF5 file"});
  test::check_throws_with([&] { test::make_study(root.file("e"), {"x=" + root.file("missing.h5")}); },
                          {"method 'x'", "does not exist"});
  test::check_throws_with(
      [&] {
        test::make_study(root.file("f"), {methods[0], methods[0]});
      },
      {"two methods are named 'sr3'"});
  test::check_throws_with([&] { test::make_study(root.file("g"), {methods[0]}, 9); },
                          {"--images-per-method 9"});
}

TEST_CASE("a method without truth (iris eval --save-bicubic) joins a study, --count takes the first images") {
  test::TempDir root("rate-bicubic");
  const auto methods = test::write_two_methods(root.path(), 6);
  test::SampleFile bic;  // only `images`, as eval --save-bicubic writes
  bic.format = "";
  bic.images = test::pattern_images(4, 5);
  const std::string path = root.file("bicubic.h5");
  test::write_sample_file(path, bic);
  CreateOptions o;
  o.methods = {methods[0], "bicubic=" + path};
  o.count = 4;
  const StudyConfig s = create_study(root.file("s"), o, [](const std::string&) {});
  CHECK(s.images == 4);
  CHECK(data::read_png(method_image_file(root.file("s"), "bicubic", 3)) == test::pattern_images(4, 5)[3]);
}

TEST_CASE("cascade.h5: the last stage is the method's output, names default to the parent folder") {
  test::TempDir root("rate-cascade");
  fs::create_directories(root.path() / "cdm");
  test::SampleFile c;
  c.format = "iris-cascade-samples";
  c.dataset = "stage_1";
  c.images = test::pattern_images(3, 4);
  c.truth = test::pattern_images(3);
  c.lowres = test::downsized(c.truth);
  const std::string path = (root.path() / "cdm" / "cascade.h5").string();
  test::write_sample_file(path, c);
  const auto [name, spec] = parse_method_arg(path);
  CHECK(name == "cdm");
  CHECK(spec == path);
  const StudyConfig s = test::make_study(root.file("s"), {path});
  CHECK(s.methods[0].source == path + ":stage_1");
  CHECK(data::read_png(method_image_file(root.file("s"), "cdm", 2)) == test::pattern_images(3, 4)[2]);
  test::check_throws_with([&] { test::make_study(root.file("t"), {"x=" + path + ":stage_7"}); },
                          {"no dataset 'stage_7'"});
}

TEST_CASE("--truth from a shard folder takes the rows the samples were drawn from ('indices')") {
  test::TempDir root("rate-shard");
  data::ShardSpec spec;
  spec.height = spec.width = 8;
  spec.channels = 1;
  spec.lowres_sizes = {4};
  const auto all = test::pattern_images(10);
  {
    data::ShardWriter w(root.file("shards"), spec);
    for (const auto& img : all) w.add(img);
    w.finish();
  }
  test::SampleFile f;  // sampled from shard rows 7, 2, 5 (no truth stored)
  f.images = test::pattern_images(3, 1);
  f.indices = {7, 2, 5};
  const std::string path = root.file("m.h5");
  test::write_sample_file(path, f);
  CreateOptions o;
  o.methods = {"m=" + path};
  o.truth = root.file("shards");
  const std::string dir = root.file("s");
  create_study(dir, o, [](const std::string&) {});
  CHECK(data::read_png(truth_image_file(dir, 0)) == all[7]);
  CHECK(data::read_png(truth_image_file(dir, 1)) == all[2]);
  CHECK(data::read_png(truth_image_file(dir, 2)) == all[5]);
}

TEST_CASE("auto_display_px: small images enlarged by a whole factor, large ones capped") {
  CHECK(auto_display_px(28, 28) == 280);
  CHECK(auto_display_px(16, 16) == 256);
  CHECK(auto_display_px(64, 64) == 256);
  CHECK(auto_display_px(256, 256) == 256);
  CHECK(auto_display_px(1024, 1024) == 512);
}
