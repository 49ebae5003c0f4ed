// The HDF5 layer: tensor round trips of every dtype (byte-identical), row slices, attributes, listing,
// CRC-32C checksums, atomic writes (including a writer killed mid-write) and error messages that name the
// file and object.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

bool same_bytes(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() &&
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

// A tensor of `dtype` with awkward values: extremes, signed zeros, NaN, infinities, subnormals.
Tensor awkward_tensor(DType dtype, const Shape& shape, uint64_t seed) {
  Tensor t = uniform(shape, seed, -1000, 1000, DType::f64);
  std::vector<double> v = t.to_vector<double>();
  const double inf = std::numeric_limits<double>::infinity();
  if (is_floating(dtype)) {
    const std::vector<double> special = {0.0, -0.0, std::nan(""), inf, -inf, 1e-40, -3.5e38, 1.0 / 3.0};
    for (size_t i = 0; i < special.size() && i < v.size(); ++i) v[i] = special[i];
  } else if (dtype == DType::u8) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 37 + seed) % 256);
  } else {
    for (double& x : v) x = std::round(x * 1000);
    if (v.size() > 2) {
      v[0] = dtype == DType::i32 ? 2147483647.0 : 9.0e15;
      v[1] = dtype == DType::i32 ? -2147483648.0 : -9.0e15;
    }
  }
  if (dtype == DType::f64) return Tensor::from_vector(v, shape, DType::f64, Device::cpu());
  if (dtype == DType::i64) {
    std::vector<int64_t> iv(v.begin(), v.end());
    if (iv.size() > 2) iv[2] = std::numeric_limits<int64_t>::min();
    return Tensor::from_vector(iv, shape);
  }
  return Tensor::from_vector(v, shape, DType::f64, Device::cpu()).to(dtype);
}

}  // namespace

TEST_CASE("crc32c matches the standard check value and continues across calls") {
  const char* text = "123456789";
  CHECK(h5::crc32c(text, 9) == 0xE3069283u);
  CHECK(h5::crc32c("", 0) == 0u);
  // 32 zero bytes: the iSCSI test vector (RFC 3720 B.4).
  const std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF);
  CHECK(h5::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  CHECK(h5::crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  // Split anywhere (the 8-byte fast path and the byte tail must agree).
  std::vector<uint8_t> data(1001);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  const uint32_t whole = h5::crc32c(data.data(), data.size());
  for (size_t cut : {0, 1, 7, 8, 13, 500, 1001})
    CHECK(h5::crc32c(data.data() + cut, data.size() - cut, h5::crc32c(data.data(), cut)) == whole);
}

TEST_CASE("every dtype round-trips through HDF5 byte for byte") {
  TempDir dir("h5-dtypes");
  const std::string path = dir.file("t.h5");
  const std::vector<DType> dtypes = {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64, DType::u8};
  std::vector<Tensor> written;
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    h5::Group sub = root.create_group("sub");
    for (size_t k = 0; k < dtypes.size(); ++k) {
      written.push_back(awkward_tensor(dtypes[k], {3, 5, 7}, k + 1));
      sub.write_tensor(dtype_name(dtypes[k]), written.back());
    }
    root.write_tensor("scalar", Tensor::scalar(2.5, DType::f64));
    root.write_tensor("empty", Tensor::empty({0, 4}, DType::f32));
    // A non-contiguous view is written with its logical layout.
    root.write_tensor("transposed", Tensor::arange(12, DType::i32).reshape({3, 4}).transpose(0, 1));
    f.close();
  }
  const h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  CHECK(root.children() == std::vector<std::string>{"empty", "scalar", "sub", "transposed"});
  CHECK(root.kind("sub") == h5::ChildKind::group);
  CHECK(root.kind("scalar") == h5::ChildKind::dataset);
  CHECK(root.has("sub/f32"));
  CHECK_FALSE(root.has("nothing/f32"));
  const h5::Group sub = root.open_group("sub");
  for (size_t k = 0; k < dtypes.size(); ++k) {
    CAPTURE(dtype_name(dtypes[k]));
    const h5::Dataset ds = sub.open_dataset(dtype_name(dtypes[k]));
    CHECK(ds.dtype() == dtypes[k]);
    CHECK(ds.shape() == Shape{3, 5, 7});
    const Tensor back = ds.read();
    CHECK(same_bytes(back, written[k]));
    CHECK(same_bytes(root.read_tensor("sub/" + std::string(dtype_name(dtypes[k]))), written[k]));
    ds.verify_checksum();
  }
  CHECK(root.read_tensor("scalar").item() == 2.5);
  CHECK(root.read_tensor("scalar").dim() == 0);
  CHECK(root.read_tensor("empty").shape() == Shape{0, 4});
  CHECK(root.read_tensor("transposed").to_vector<int32_t>() ==
        std::vector<int32_t>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
}

TEST_CASE("row slices read exactly the requested rows") {
  TempDir dir("h5-rows");
  const std::string path = dir.file("rows.h5");
  const Tensor t = Tensor::arange(10 * 6, DType::f32).reshape({10, 2, 3});
  {
    h5::File f = h5::File::create(path);
    f.root().write_tensor("x", t);
  }
  const h5::Dataset ds = h5::File::open(path).root().open_dataset("x");
  CHECK(ds.rows() == 10);
  CHECK(ds.row_bytes() == 6 * sizeof(float));
  CHECK(same_bytes(ds.read_rows(3, 4), t.slice(0, 3, 7)));
  CHECK(ds.read_rows(9, 1).to_vector<float>() == t.slice(0, 9, 10).to_vector<float>());
  CHECK(ds.read_rows(5, 0).shape() == Shape{0, 2, 3});
  std::vector<float> buf(12);
  ds.read_rows_into(8, 2, buf.data(), buf.size() * sizeof(float));
  CHECK(buf == t.slice(0, 8, 10).to_vector<float>());
  check_throws_with([&] { (void)ds.read_rows(8, 3); }, {"rows [8, 11)", "rows.h5", "/x"});
  check_throws_with([&] { ds.read_rows_into(0, 2, buf.data(), 4); }, {"destination", "rows.h5"});
}

TEST_CASE("attributes of every kind round-trip and replace old values") {
  TempDir dir("h5-attrs");
  const std::string path = dir.file("a.h5");
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    root.set_string_attr("name", "iris shard \xCE\xB1");  // UTF-8 survives
    root.set_int_attr("version", 1);
    root.set_int_attr("version", -(int64_t{1} << 40));  // replaces
    root.set_double_attr("lr", 1e-4);
    root.set_strings_attr("classes", {"T-shirt/top", "", "Ankle boot"});
    root.set_strings_attr("none", {});
    root.set_ints_attr("sizes", {7, 14});
    h5::Dataset ds = root.write_tensor("x", Tensor::ones({2}));
    ds.set_string_attr("unit", "m");
  }
  h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  CHECK(root.string_attr("name") == "iris shard \xCE\xB1");
  CHECK(root.int_attr("version") == -(int64_t{1} << 40));
  CHECK(root.double_attr("lr") == 1e-4);
  CHECK(root.double_attr("version") == -std::ldexp(1.0, 40));  // integers read as doubles
  CHECK(root.strings_attr("classes") == std::vector<std::string>{"T-shirt/top", "", "Ankle boot"});
  CHECK(root.strings_attr("none").empty());
  CHECK(root.ints_attr("sizes") == std::vector<int64_t>{7, 14});
  CHECK(root.attr_names() == std::vector<std::string>{"classes", "lr", "name", "none", "sizes", "version"});
  const h5::Dataset ds = root.open_dataset("x");
  CHECK(ds.string_attr("unit") == "m");
  CHECK(ds.has_checksum());
  check_throws_with([&] { (void)root.int_attr("missing"); }, {"missing attribute 'missing'", "a.h5", "'/'"});
  check_throws_with([&] { (void)root.int_attr("name"); }, {"'name'", "not an integer", "a.h5"});
  check_throws_with([&] { (void)root.string_attr("classes"); }, {"holds 3 strings", "a.h5"});
  check_throws_with([&] { (void)root.string_attr("lr"); }, {"'lr'", "not a string"});
  // A read-only file refuses writes with an error, not a crash.
  h5::Group ro = f.root();
  check_throws_with([&] { ro.set_int_attr("new", 1); }, {"attribute 'new'", "a.h5"});
}

TEST_CASE("a flipped byte in a dataset fails its checksum, naming file and dataset") {
  TempDir dir("h5-crc");
  const std::string path = dir.file("c.h5");
  int64_t offset = -1;
  {
    h5::File f = h5::File::create(path);
    h5::Dataset ds = f.root().write_tensor("images", Tensor::arange(4096, DType::f32));
    offset = ds.file_offset();
  }
  REQUIRE(offset > 0);
  h5::File::open(path).root().open_dataset("images").verify_checksum();
  flip_byte(path, offset + 1234);
  {
    const h5::File f = h5::File::open(path);
    const h5::Dataset ds = f.root().open_dataset("images");
    check_throws_with([&] { ds.verify_checksum(); }, {"checksum mismatch", "c.h5", "/images"});
  }
  // Storing a fresh checksum needs a writable file; after that the data verifies again.
  {
    h5::File rw = h5::File::open(path, h5::File::Mode::read_write);
    rw.root().open_dataset("images").store_checksum();
  }
  h5::File::open(path).root().open_dataset("images").verify_checksum();
}

TEST_CASE("opening bad files gives errors naming them") {
  TempDir dir("h5-bad");
  check_throws_with([&] { (void)h5::File::open(dir.file("absent.h5")); }, {"absent.h5", "no such file"});
  write_bytes(dir.file("text.h5"), std::vector<char>(100, 'x'));
  CHECK_FALSE(h5::File::is_hdf5(dir.file("text.h5")));
  check_throws_with([&] { (void)h5::File::open(dir.file("text.h5")); }, {"text.h5", "cannot open"});
  const std::string good = dir.file("good.h5");
  {
    h5::File f = h5::File::create(good);
    f.root().write_tensor("x", Tensor::arange(100000, DType::f32));
  }
  CHECK(h5::File::is_hdf5(good));
  const h5::File f = h5::File::open(good);
  check_throws_with([&] { (void)f.root().open_dataset("y"); }, {"good.h5", "no dataset 'y'"});
  check_throws_with([&] { (void)f.root().open_group("x"); }, {"good.h5", "cannot open group 'x'"});
  // Truncated: the superblock's end-of-file address lies beyond the data.
  auto bytes = read_bytes(good);
  bytes.resize(bytes.size() / 2);
  write_bytes(dir.file("truncated.h5"), bytes);
  check_throws_with([&] { (void)h5::File::open(dir.file("truncated.h5")); }, {"truncated.h5"});
}

TEST_CASE("atomic writes replace the file whole and clean up when abandoned") {
  TempDir dir("h5-atomic");
  const std::string target = dir.file("ckpt.h5");
  {
    h5::AtomicWriter w(target);
    CHECK(w.temp_path() == target + ".tmp-" + std::to_string(::getpid()));
    h5::Group root = w.root();
    root.write_tensor("x", Tensor::full({3}, 1.0));
    CHECK_FALSE(std::filesystem::exists(target));  // nothing visible before commit
    w.commit();  // with `root` still open: the writer closes the file strongly
  }
  CHECK(h5::File::open(target).root().read_tensor("x").to_vector<float>() == std::vector<float>{1, 1, 1});
  {
    h5::AtomicWriter w(target);
    w.root().write_tensor("x", Tensor::full({3}, 2.0));
    // destroyed without commit: the old file stays, the temporary goes
  }
  CHECK(h5::File::open(target).root().read_tensor("x").to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK_FALSE(std::filesystem::exists(h5::temp_path_for(target)));
  h5::write_file_atomic(dir.file("index.json"), "{\"a\": 1}\n");
  CHECK(read_bytes(dir.file("index.json")).size() == 9);
}

TEST_CASE("a writer killed mid-write leaves the previous file intact") {
  TempDir dir("h5-kill");
  const std::string target = dir.file("shard.h5");
  {
    h5::AtomicWriter w(target);
    w.root().write_tensor("x", Tensor::full({4}, 7.0));
    w.commit();
  }
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child starts replacing the file, writes part of the data, and is killed before commit().
    try {
      h5::AtomicWriter w(target);
      h5::Group root = w.root();
      root.write_tensor("x", Tensor::full({1 << 20}, 9.0));
      w.file().flush();
      ::kill(::getpid(), SIGKILL);
    } catch (...) {
    }
    ::_exit(3);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  const std::string leftover = target + ".tmp-" + std::to_string(child);
  CHECK(std::filesystem::exists(leftover));  // the half-written temporary is still there...
  const Tensor x = h5::File::open(target).root().read_tensor("x");  // ...and the reader never looks at it
  CHECK(x.to_vector<float>() == std::vector<float>{7, 7, 7, 7});
  h5::File::open(target).root().open_dataset("x").verify_checksum();
}
