// The bookkeeping of sampling runs (diffusion/sampling_record.h), tested directly: the split of pending
// samples over ranks and rounds, the gather of a single process, the run record (run.json) refusing or
// resuming a run, reading back finished samples and sampling again missing, damaged or mis-shaped ones.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "diffusion/sampling_inputs.h"
#include "diffusion/sampling_record.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::diffusion;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// A u8 image [h, w, c] whose pixels encode `seed`.
data::Image image_of(int h, int w, int c, int seed) {
  data::Image img(h, w, c);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(seed * 31 + i);
  return img;
}

// u8 [rows.size(), h, w, c] of image_of(row) for each row.
Tensor rows_of(const std::vector<int64_t>& rows, int h, int w, int c) {
  std::vector<data::Image> imgs;
  for (int64_t r : rows) imgs.push_back(image_of(h, w, c, static_cast<int>(r)));
  return data::stack_images(imgs);
}

nlohmann::json identity(int steps = 50) {
  return {{"command", "cascade"},
          {"stages", {{{"steps", 50}, {"weights", "ema"}}, {{"steps", steps}, {"weights", "ema"}}}},
          {"seed", 4}};
}

}  // namespace

TEST_CASE("RankSplit gives every pending sample to exactly one rank and round, in contiguous runs") {
  for (int ranks = 1; ranks <= 5; ++ranks)
    for (int64_t batch = 1; batch <= 4; ++batch)
      for (int64_t n = 0; n <= 13; ++n) {
        CAPTURE(ranks);
        CAPTURE(batch);
        CAPTURE(n);
        std::vector<int64_t> pending;
        for (int64_t i = 0; i < n; ++i) pending.push_back(3 * i + 1);  // sparse, as after a resume
        const RankSplit split(pending, batch, ranks);
        const int64_t per = (n + ranks - 1) / ranks;
        CHECK(split.rounds() == (per == 0 ? 0 : (per + split.chunk() - 1) / split.chunk()));
        std::map<int64_t, int> seen;
        for (int q = 0; q < ranks; ++q) {
          std::vector<int64_t> own;
          for (int64_t r = 0; r < split.rounds(); ++r) {
            const std::vector<int64_t> rows = split.rows(r, q);
            CHECK(static_cast<int64_t>(rows.size()) <= batch);
            own.insert(own.end(), rows.begin(), rows.end());
          }
          // Rank q's rows: one contiguous run of `pending`, ascending.
          if (!own.empty()) {
            const auto at = std::find(pending.begin(), pending.end(), own.front());
            REQUIRE(at != pending.end());
            CHECK(std::equal(own.begin(), own.end(), at));
          }
          for (int64_t r : own) ++seen[r];
        }
        CHECK(seen.size() == pending.size());
        for (const auto& [row, count] : seen) CHECK(count == 1);
        CHECK(split.rows(split.rounds(), 0).empty());  // past the last round: nothing
      }
}

TEST_CASE("RankSplit rejects a bad batch, rank count or rank") {
  check_throws_with([] { (void)RankSplit({1, 2}, 0, 1); }, {"batch must be positive", "0"});
  check_throws_with([] { (void)RankSplit({1, 2}, 2, 0); }, {"ranks must be positive"});
  const RankSplit split({1, 2, 3}, 2, 2);
  check_throws_with([&] { (void)split.rows(0, 2); }, {"rank 2 of 2"});
}

TEST_CASE(
    "SampleSplit without a communicator samples every pending row in rounds and gathers them in place") {
  const std::vector<int64_t> pending = {0, 2, 3, 6};
  SampleSplit split(pending, 3, nullptr);
  CHECK(split.ranks() == 1);
  CHECK(split.is_root());
  REQUIRE(split.rounds() == 2);
  CHECK(split.rows(0) == std::vector<int64_t>{0, 2, 3});
  CHECK(split.rows(1) == std::vector<int64_t>{6});
  std::vector<Tensor> outputs;
  std::vector<int64_t> got;
  for (int64_t r = 0; r < split.rounds(); ++r) {
    const std::vector<int64_t> rows = split.rows(r);
    const std::vector<int64_t> g =
        split.gather(r, {rows_of(rows, 2, 3, 1), rows_of(rows, 4, 6, 1)}, {{2, 3, 1}, {4, 6, 1}}, 7, outputs);
    got.insert(got.end(), g.begin(), g.end());
  }
  CHECK(got == pending);
  REQUIRE(outputs.size() == 2);
  CHECK(outputs[0].shape() == Shape{7, 2, 3, 1});
  CHECK(outputs[1].shape() == Shape{7, 4, 6, 1});
  for (int64_t r : pending)
    CHECK(data::unstack_images(take_rows(outputs[1], {r}))[0] == image_of(4, 6, 1, static_cast<int>(r)));
  CHECK(share_rows(nullptr, pending, 7) == pending);
}

TEST_CASE("first_difference names the first differing setting by its path") {
  CHECK(first_difference(identity(), identity()).path.empty());
  const JsonDifference d = first_difference(identity(50), identity(25));
  CHECK(d.path == "stages[1].steps");
  CHECK(d.describe() == "'stages[1].steps' was 50, now 25");
  nlohmann::json added = identity();
  added["aug_level"] = 0.1;
  CHECK(first_difference(identity(), added).describe() == "'aug_level' was absent, now 0.1");
  CHECK(first_difference(added, identity()).describe() == "'aug_level' was 0.1, now absent");
  nlohmann::json fewer = identity();
  fewer["stages"].erase(1);
  CHECK(first_difference(identity(), fewer).path == "stages");  // arrays of other lengths differ as a whole
}

TEST_CASE("SampleRecord starts a run, refuses to replace it, and resumes it only with the same settings") {
  TempDir dir("sample-record");
  const std::string out = dir.file("run");
  const std::vector<std::string> dirs = {out + "/stage_0", out + "/stage_1"};
  const std::vector<Shape> shapes = {{2, 2, 1}, {4, 4, 1}};
  const std::vector<std::string> names = {"a", "b", "c"};
  {
    SampleRecord fresh(out, dirs, shapes, names, identity(), false, false);
    CHECK(fresh.total() == 3);
    CHECK(fresh.done() == 0);
    CHECK(fresh.pending() == std::vector<int64_t>{0, 1, 2});
    CHECK(fs::exists(fs::path(out) / kRunRecordName));
    CHECK(fs::is_directory(dirs[1]));
  }
  check_throws_with([&] { (void)SampleRecord(out, dirs, shapes, names, identity(), false, false); },
                    {"already holds a sampling run", "--resume", "--overwrite"});
  check_throws_with([&] { (void)SampleRecord(out, dirs, shapes, names, identity(25), true, false); },
                    {"other settings", "'stages[1].steps' was 50, now 25"});
  check_throws_with(
      [&] { (void)SampleRecord(dir.file("none"), dirs, shapes, names, identity(), true, false); },
      {"holds no sampling run", "run.json"});
  std::ofstream(fs::path(out) / kRunRecordName) << "{ not json";
  check_throws_with([&] { (void)SampleRecord(out, dirs, shapes, names, identity(), true, false); },
                    {"cannot read", "run.json"});
  // --overwrite replaces the run (and its record).
  SampleRecord over(out, dirs, shapes, names, identity(25), false, true);
  std::ifstream saved(fs::path(out) / kRunRecordName);
  CHECK(first_difference(nlohmann::json::parse(saved), identity(25)).path.empty());
}

TEST_CASE("SampleRecord on resume reads back complete samples and samples missing or damaged ones again") {
  TempDir dir("sample-record-resume");
  const std::string out = dir.file("run");
  const std::vector<std::string> dirs = {out + "/stage_0", out + "/stage_1"};
  const std::vector<Shape> shapes = {{2, 2, 1}, {4, 4, 1}};
  const std::vector<std::string> names = {"s0", "s1", "s2", "s3", "s4", "s5"};
  {
    SampleRecord record(out, dirs, shapes, names, identity(), false, false);
    const std::vector<int64_t> all = {0, 1, 2, 3, 4, 5};
    put_rows(record.outputs()[0], 6, all, rows_of(all, 2, 2, 1));
    put_rows(record.outputs()[1], 6, all, rows_of(all, 4, 4, 1));
    record.write(all);
  }
  for (const auto& d : dirs)
    for (const auto& e : fs::directory_iterator(d))
      CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);      // written atomically
  fs::remove(fs::path(dirs[1]) / "s1.png");                                        // its last stage missing
  std::ofstream(fs::path(dirs[0]) / "s2.png", std::ios::trunc) << "not a png";     // damaged
  data::write_png((fs::path(dirs[1]) / "s3.png").string(), image_of(3, 3, 1, 3));  // another shape
  std::ofstream(fs::path(dirs[0]) / "s4.png.tmp-123") << "half written";           // a killed write

  SampleRecord resumed(out, dirs, shapes, names, identity(), true, false);
  CHECK(resumed.done() == 3);
  CHECK(resumed.pending() == std::vector<int64_t>{1, 2, 3});
  REQUIRE(resumed.warnings().size() == 2);
  CHECK(resumed.warnings()[0].find("s2.png cannot be read") != std::string::npos);
  CHECK(resumed.warnings()[1].find("s3.png is 3x3x1, not 4x4x1: sampled again") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::path(dirs[0]) / "s4.png.tmp-123"));
  // The finished samples are back in the outputs, at their rows.
  for (int64_t r : {0, 4, 5}) {
    CAPTURE(r);
    CHECK(data::unstack_images(take_rows(resumed.outputs()[0], {r}))[0] ==
          image_of(2, 2, 1, static_cast<int>(r)));
    CHECK(data::unstack_images(take_rows(resumed.outputs()[1], {r}))[0] ==
          image_of(4, 4, 1, static_cast<int>(r)));
  }
  // Writing the redone samples completes the run: a second resume finds everything.
  const std::vector<int64_t> redo = resumed.pending();
  put_rows(resumed.outputs()[0], 6, redo, rows_of(redo, 2, 2, 1));
  put_rows(resumed.outputs()[1], 6, redo, rows_of(redo, 4, 4, 1));
  resumed.write(redo);
  SampleRecord again(out, dirs, shapes, names, identity(), true, false);
  CHECK(again.done() == 6);
  CHECK(again.pending().empty());
  CHECK(again.warnings().empty());
}

TEST_CASE("SampleRecord rejects output folders and shapes that do not match") {
  TempDir dir("sample-record-bad");
  check_throws_with(
      [&] { (void)SampleRecord(dir.file("a"), {dir.file("a")}, {}, {"x"}, identity(), false, false); },
      {"1 output folders for 0 output shapes"});
  check_throws_with(
      [&] {
        (void)SampleRecord(dir.file("a"), {dir.file("a")}, {{4, 4}}, {"x"}, identity(), false, false);
      },
      {"[H, W, C]"});
}

TEST_CASE(
    "noise_streams and inputs_checksum: shard indices are the streams, and the inputs are checksummed") {
  Inputs in;
  in.names = {"a", "b"};
  CHECK(noise_streams(in, 2) == std::vector<uint64_t>{0, 1});
  in.indices = {7, 9};
  CHECK(noise_streams(in, 2) == std::vector<uint64_t>{7, 9});
  const uint32_t crc = inputs_checksum(in);
  in.labels = {1, 0};
  CHECK(inputs_checksum(in) != crc);
  Inputs swapped = in;
  swapped.names = {"ab", ""};  // names stay apart in the checksum
  CHECK(inputs_checksum(swapped) != inputs_checksum(in));
}
