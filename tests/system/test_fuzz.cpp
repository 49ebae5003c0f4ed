// Damaged files, one byte position at a time: a small checkpoint and a small shard set get bytes overwritten
// at every 8th position of their first 8 KiB (the seal, the HDF5 superblock, object headers, attributes and
// names) and at positions inside every dataset's data. Each damaged file must be refused with an error
// naming it: never a crash (the HDF5 library would segfault on some of these if it parsed them), never a
// hang, never damage accepted silently. The counts are printed for the record.
#include <algorithm>
#include <climits>
#include <filesystem>
#include <functional>

#include "data/shard.h"
#include "diffusion/checkpoint.h"
#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"
#include "tests/system/small_checkpoint.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kMetadataSpan = 8192;
constexpr int64_t kStride = 8;

// Byte positions to damage: every 8th of the first 8 KiB, and the first, middle and last byte of every
// dataset's data (found in the intact file).
std::vector<int64_t> positions_to_damage(const std::string& path) {
  std::vector<int64_t> at;
  const auto size = static_cast<int64_t>(fs::file_size(path));
  for (int64_t p = 0; p < std::min(size, kMetadataSpan); p += kStride) at.push_back(p);
  std::function<void(const h5::Group&)> walk = [&](const h5::Group& g) {
    for (const auto& name : g.children()) {
      if (g.kind(name) == h5::ChildKind::group) {
        walk(g.open_group(name));
        continue;
      }
      const h5::Dataset ds = g.open_dataset(name);
      const int64_t off = ds.file_offset(), n = ds.storage_bytes();
      if (off < 0 || n <= 0) continue;
      for (int64_t p : {off, off + n / 2, off + n - 1}) at.push_back(p);
    }
  };
  const h5::File f = h5::File::open(path);
  walk(f.root());
  std::sort(at.begin(), at.end());
  at.erase(std::unique(at.begin(), at.end()), at.end());
  return at;
}

// Writes `good` with 4 bytes from `at` changed (as the reproducer did: a stored length).
void write_damaged(const std::string& path, const std::vector<char>& good, int64_t at) {
  auto b = good;
  for (int64_t i = at; i < std::min<int64_t>(at + 4, static_cast<int64_t>(b.size())); ++i)
    b[static_cast<size_t>(i)] = static_cast<char>(b[static_cast<size_t>(i)] ^ 0xA5);
  write_bytes(path, b);
}

struct Tally {
  int64_t tried = 0, refused = 0;
  std::vector<int64_t> accepted;  // positions whose damage went unnoticed
};

// Calls `use` on the damaged file; a refusal must be an iris::Error naming the file.
void expect_refused(const std::function<void()>& use, const std::string& name, int64_t at, Tally& t) {
  ++t.tried;
  try {
    use();
    t.accepted.push_back(at);
  } catch (const Error& e) {
    ++t.refused;
    CHECK_MESSAGE(e.message().find(name) != std::string::npos, "position ", at, ": ", e.message());
  }
}

void report(const char* what, const Tally& t) {
  MESSAGE(std::string(what), ": ", t.tried, " damaged positions tried, ", t.refused,
          " refused with an error, 0 crashes");
  CHECK_MESSAGE(t.accepted.empty(), std::string(what), ": damage accepted at ", t.accepted.size(),
                " position(s), first ", t.accepted.empty() ? -1 : t.accepted.front());
}

}  // namespace

TEST_CASE("fuzz: every damaged position of a checkpoint is refused by verify, load and resume") {
  TempDir dir("fuzz-ckpt");
  const std::string good_path = dir.file("step_000000008.h5");
  const std::string path = dir.file("step_000000012.h5");
  diffusion::save_checkpoint(good_path, small_checkpoint(8));
  diffusion::save_checkpoint(path, small_checkpoint());
  diffusion::verify_checkpoint(path);
  const auto good = read_bytes(path);
  const auto positions = positions_to_damage(path);
  REQUIRE(positions.size() > 1000);
  Tally verify, load, resume;
  for (int64_t at : positions) {
    write_damaged(path, good, at);
    expect_refused([&] { diffusion::verify_checkpoint(path); }, "step_000000012.h5", at, verify);
    expect_refused([&] { (void)diffusion::load_checkpoint(path); }, "step_000000012.h5", at, load);
    if (at % 64 == 0) {  // --resume auto falls back to the older checkpoint, warning about this one
      std::string warned;
      const auto found =
          diffusion::find_resume_checkpoint(dir.path().string(), [&](const std::string& w) { warned += w; });
      ++resume.tried;
      if (found == good_path && warned.find("step_000000012.h5") != std::string::npos)
        ++resume.refused;
      else
        resume.accepted.push_back(at);
    }
  }
  report("checkpoint verify", verify);
  report("checkpoint load", load);
  report("checkpoint resume auto", resume);
  write_bytes(path, good);
  diffusion::verify_checkpoint(path);  // the intact bytes still verify: the test damaged only copies
}

TEST_CASE("fuzz: every damaged position of a shard is refused at open, or by its checksums for data") {
  TempDir dir("fuzz-shard");
  const std::string set_dir = dir.path().string();
  data::ShardSpec spec;
  spec.height = spec.width = 8;
  spec.channels = 3;
  spec.lowres_sizes = {4};
  spec.has_labels = true;
  spec.class_names = {"a", "b"};
  {
    data::ShardWriter w(set_dir, spec, {.samples_per_shard = 100});
    for (int i = 0; i < 40; ++i) w.add(pattern_image(8, 8, 3, i), i % 2);
    w.finish();
  }
  const std::string path = dir.file("shard-00000.h5");
  const auto good = read_bytes(path);
  const auto positions = positions_to_damage(path);
  REQUIRE(positions.size() > 500);
  int64_t metadata_end = INT64_MAX;  // below the first dataset's data, every byte is metadata (or the seal)
  {
    const h5::File f = h5::File::open(path);
    for (const char* name : {"images", "labels", "lowres_4"})
      metadata_end = std::min(metadata_end, f.root().open_dataset(name).file_offset());
  }
  Tally open_verified, open_plain;
  for (int64_t at : positions) {
    write_damaged(path, good, at);
    expect_refused([&] { (void)data::ShardSet::open(set_dir, {.verify_checksums = true}); }, "shard-00000.h5",
                   at, open_verified);
    if (at + 4 <= metadata_end)
      expect_refused([&] { (void)data::ShardSet::open(set_dir); }, "shard-00000.h5", at, open_plain);
  }
  report("shard open with checksums", open_verified);
  report("shard open (metadata)", open_plain);
  write_bytes(path, good);
  data::ShardSet::open(set_dir, {.verify_checksums = true}).verify_checksums();
}
