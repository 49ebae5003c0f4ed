// safetensors files written and read by Iris (data/safetensors.h): a round trip keeps names, dtypes, shapes,
// values and metadata bit for bit, tensors start 8-byte aligned, and damaged or malformed files are refused
// with errors naming the file (and the tensor) at fault. The library's own reader and writer check the same
// files in the interop suite (tests/interop/test_safetensors.cpp).
#include <cstring>
#include <fstream>
#include <iterator>

#include "data/safetensors.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::test;

namespace {
std::string bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
// A file of `header` (JSON) followed by `data_bytes` zero bytes.
void write_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header << std::string(data_bytes, '\0');
}
}  // namespace

TEST_CASE("safetensors round trip: names, dtypes, shapes, values and metadata, tensors 8-byte aligned") {
  TempDir dir("safetensors");
  data::SafetensorsFile f;
  f.tensors["a.weight"] = Tensor::arange(24, DType::f32).reshape({2, 3, 4});
  f.tensors["b"] = Tensor::arange(5, DType::i64);
  f.tensors["c"] = Tensor::full({3}, -0.25, DType::f64);
  f.tensors["d"] = Tensor::full({7}, 1.5, DType::bf16);
  f.tensors["e"] = Tensor::full({3}, 200, DType::u8);
  f.metadata = {{"format", "iris-weights"}, {"config", "[model]\nx = 1\n"}};
  const std::string path = dir.file("w.safetensors");
  data::write_safetensors(path, f);
  const data::SafetensorsFile g = data::read_safetensors(path);
  CHECK(g.metadata == f.metadata);
  REQUIRE(g.tensors.size() == f.tensors.size());
  for (const auto& [name, t] : f.tensors) {
    CAPTURE(name);
    const Tensor& u = g.tensors.at(name);
    CHECK(u.dtype() == t.dtype());
    CHECK(u.shape() == t.shape());
    CHECK(std::memcmp(u.data_ptr(), t.contiguous().data_ptr(), t.nbytes()) == 0);
  }
  uint64_t n = 0;
  std::memcpy(&n, bytes_of(path).data(), 8);
  CHECK(n % 8 == 0);
}

TEST_CASE("damaged or malformed safetensors files are refused, naming the file and the tensor") {
  TempDir dir("safetensors-bad");
  const std::string good = dir.file("good.safetensors");
  data::SafetensorsFile f;
  f.tensors["w"] = Tensor::arange(16, DType::f32);
  data::write_safetensors(good, f);
  const std::string all = bytes_of(good);
  const std::string truncated = dir.file("truncated.safetensors");
  std::ofstream(truncated, std::ios::binary) << all.substr(0, all.size() - 5);
  check_throws_with([&] { data::read_safetensors(truncated); }, {truncated, "'w'", "outside"});
  const std::string tiny = dir.file("tiny.safetensors");
  std::ofstream(tiny, std::ios::binary) << "abc";
  check_throws_with([&] { data::read_safetensors(tiny); }, {tiny, "too short"});
  const std::string huge = dir.file("huge.safetensors");
  write_raw(huge, "{}", 0);
  std::string h = bytes_of(huge);
  h[7] = 0x40;  // a header length far beyond the file
  std::ofstream(huge, std::ios::binary) << h;
  check_throws_with([&] { data::read_safetensors(huge); }, {huge, "truncated"});
  const std::string json = dir.file("json.safetensors");
  write_raw(json, "{not json}", 0);
  check_throws_with([&] { data::read_safetensors(json); }, {json, "not valid JSON"});
  const std::string dtype = dir.file("dtype.safetensors");
  write_raw(dtype, R"({"x":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", 2);
  check_throws_with([&] { data::read_safetensors(dtype); }, {dtype, "'x'", "F8"});
  const std::string shape = dir.file("shape.safetensors");
  write_raw(shape, R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  check_throws_with([&] { data::read_safetensors(shape); }, {shape, "'x'", "12 bytes"});
  const std::string overlap = dir.file("overlap.safetensors");
  write_raw(
      overlap,
      R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      12);
  check_throws_with([&] { data::read_safetensors(overlap); }, {overlap, "overlap"});
  const std::string tail = dir.file("tail.safetensors");
  write_raw(tail, R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 9);
  check_throws_with([&] { data::read_safetensors(tail); }, {tail, "5 bytes after"});
}
