// The seal of atomically written HDF5 files (framework/io/file_seal.h): damage anywhere in a sealed file is
// refused before HDF5 parses it (metadata) or by the dataset's checksum (raw data), with messages naming the
// file and what is wrong; unsealed files (older Iris, other programs) still open.
#include <cstring>
#include <filesystem>

#include "framework/core/format.h"
#include "framework/io/file_seal.h"
#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// A sealed file with two datasets; returns the offset and size of the raw data of "data".
h5::Extent write_sealed(const std::string& path) {
  {
    h5::AtomicWriter w(path);
    h5::Group root = w.root();
    root.set_string_attr("what", "a sealed test file");
    root.write_tensor("data", Tensor::arange(2048, DType::f32));
    root.create_group("g").write_tensor("ints", Tensor::arange(16, DType::i64));
    w.commit();
  }
  const h5::File f = h5::File::open(path);
  const h5::Dataset ds = f.root().open_dataset("data");
  return {ds.file_offset(), ds.storage_bytes()};
}

}  // namespace

TEST_CASE("atomically written files are sealed, and their datasets' offsets are absolute") {
  TempDir dir("seal-good");
  const std::string path = dir.file("s.h5");
  const h5::Extent data = write_sealed(path);
  const h5::SealCheck c = h5::check_seal(path);
  CHECK(c.state == h5::SealState::sealed);
  CHECK_FALSE(c.whole_file);  // the extents were recorded: only the metadata is read
  CHECK(h5::check_seal(path, /*whole_file=*/true).whole_file);
  CHECK(h5::File::is_hdf5(path));
  // The raw bytes at the recorded offset are the tensor's: the seal excludes the right bytes.
  REQUIRE(data.bytes == 2048 * 4);
  const auto bytes = read_bytes(path);
  float v = 0;
  std::memcpy(&v, bytes.data() + data.offset + 4 * 1000, 4);
  CHECK(v == 1000.0f);
  CHECK(h5::File::open(path).root().string_attr("what") == "a sealed test file");
}

TEST_CASE("files without a seal still open and say so") {
  TempDir dir("seal-none");
  const std::string path = dir.file("plain.h5");
  {
    h5::File f = h5::File::create(path);
    f.root().write_tensor("x", Tensor::arange(10, DType::f32));
  }
  CHECK(h5::check_seal(path).state == h5::SealState::unsealed);
  CHECK(h5::File::open(path).root().read_tensor("x").numel() == 10);
}

TEST_CASE("a truncated or extended sealed file is refused with both lengths") {
  TempDir dir("seal-trunc");
  const std::string path = dir.file("s.h5");
  write_sealed(path);
  const auto size = static_cast<int64_t>(fs::file_size(path));
  fs::resize_file(path, static_cast<uintmax_t>(size - 100));
  check_throws_with([&] { (void)h5::File::open(path); }, {"s.h5", "truncated: " + with_commas(size - 100) +
                                                                      " of " + with_commas(size) + " bytes"});
  fs::resize_file(path, 300);  // shorter than the seal itself
  check_throws_with([&] { (void)h5::File::open(path); }, {"s.h5", "truncated: 300 of"});
  write_sealed(path);
  fs::resize_file(path, static_cast<uintmax_t>(size + 8));
  check_throws_with([&] { (void)h5::File::open(path); }, {"s.h5", "bytes but its seal says"});
}

TEST_CASE("damage to the seal, the metadata or the data of a sealed file is found") {
  TempDir dir("seal-damage");
  const std::string path = dir.file("s.h5");
  const h5::Extent data = write_sealed(path);
  const auto good = read_bytes(path);
  auto damaged = [&](int64_t at) {
    auto b = good;
    b.at(static_cast<size_t>(at)) = static_cast<char>(~b.at(static_cast<size_t>(at)));
    write_bytes(path, b);
  };
  for (int64_t at : {0, 3, 13, 20, 36, 41, 300, 511}) {  // magic, block size, length, CRC, extents, padding
    CAPTURE(at);
    damaged(at);
    check_throws_with([&] { (void)h5::File::open(path); }, {"s.h5", "seal"});
  }
  uint32_t block = 0;  // the user block's size, stored at offset 12
  std::memcpy(&block, good.data() + 12, 4);
  REQUIRE(block >= 512);
  damaged(block - 1);  // the seal's last (padding) byte
  check_throws_with([&] { (void)h5::File::open(path); }, {"s.h5", "damaged seal"});
  damaged(block + 8);  // the HDF5 superblock
  check_throws_with([&] { (void)h5::File::open(path); }, {"s.h5", "checksum mismatch in its metadata"});
  CHECK(h5::File::is_hdf5(path));  // the seal's check is left to open, which names the damage
  // Raw data: the metadata still matches, so the file opens; the dataset's checksum and the whole-file check
  // find the damage.
  damaged(data.offset + 40);
  CHECK(h5::check_seal(path).state == h5::SealState::sealed);
  check_throws_with([&] { (void)h5::check_seal(path, true); },
                    {"s.h5", "checksum mismatch over the whole file"});
  const h5::File f = h5::File::open(path);
  check_throws_with([&] { f.root().open_dataset("data").verify_checksum(); }, {"checksum mismatch", "/data"});
}

TEST_CASE("opening a sealed file for writing removes its seal") {
  TempDir dir("seal-rw");
  const std::string path = dir.file("s.h5");
  write_sealed(path);
  {
    h5::File f = h5::File::open(path, h5::File::Mode::read_write);
    f.root().set_int_attr("edited", 1);
  }
  CHECK(h5::check_seal(path).state == h5::SealState::unsealed);
  CHECK(h5::File::open(path).root().int_attr("edited") == 1);
}
