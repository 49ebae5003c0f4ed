#include "data/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "framework/io/hdf5.h"
#include "framework/iris.h"

namespace iris::data {

namespace {

const std::map<DType, std::string>& dtype_names() {
  static const std::map<DType, std::string> names = {{DType::f32, "F32"},   {DType::f64, "F64"},
                                                     {DType::bf16, "BF16"}, {DType::i64, "I64"},
                                                     {DType::i32, "I32"},   {DType::u8, "U8"}};
  return names;
}

}  // namespace

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  nlohmann::json header = nlohmann::json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  uint64_t offset = 0;
  std::vector<Tensor> ordered;
  for (const auto& [name, t] : file.tensors) {
    IRIS_CHECK(name != "__metadata__", "safetensors: '", path, "': a tensor cannot be named __metadata__");
    const auto dt = dtype_names().find(t.dtype());
    IRIS_CHECK(dt != dtype_names().end(), "safetensors: '", path, "': tensor '", name, "' has dtype ",
               dtype_name(t.dtype()), ", which Iris does not write");
    const Tensor c = t.cpu().contiguous();
    const uint64_t bytes = c.nbytes();
    header[name] = {{"dtype", dt->second}, {"shape", c.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    ordered.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // tensors start 8-byte aligned
  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  char len[8];
  std::memcpy(len, &n, 8);
  out.append(len, 8);
  out += text;
  for (const Tensor& c : ordered) out.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
  h5::write_file_atomic(path, out);
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  IRIS_CHECK(f.good(), "safetensors: cannot open '", path, "'");
  const uint64_t size = std::filesystem::file_size(path);
  uint64_t n = 0;
  IRIS_CHECK(size >= 8 && f.read(reinterpret_cast<char*>(&n), 8), "safetensors: '", path,
             "' is too short to be a safetensors file (", size, " bytes)");
  IRIS_CHECK(n >= 2 && n <= size - 8 && n <= (uint64_t{100} << 20), "safetensors: '", path,
             "' is not a safetensors file or is truncated (its header claims ", n, " bytes, the file has ",
             size, ")");
  std::string text(n, '\0');
  IRIS_CHECK(f.read(text.data(), static_cast<std::streamsize>(n)), "safetensors: cannot read '", path, "'");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    IRIS_THROW("safetensors: '", path, "': the header is not valid JSON (", e.what(), ")");
  }
  IRIS_CHECK(header.is_object(), "safetensors: '", path, "': the header is not a JSON object");
  const uint64_t data_size = size - 8 - n;
  SafetensorsFile out;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      IRIS_CHECK(e.is_object(), "safetensors: '", path, "': __metadata__ is not an object");
      for (const auto& [k, v] : e.items()) {
        IRIS_CHECK(v.is_string(), "safetensors: '", path, "': metadata '", k, "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "safetensors: '" + path + "', tensor '" + name + "': ";
    IRIS_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
               where, "needs dtype, shape and data_offsets");
    DType dtype = DType::f32;
    bool known = false;
    for (const auto& [d, s] : dtype_names())
      if (e["dtype"].is_string() && e["dtype"].get<std::string>() == s) dtype = d, known = true;
    IRIS_CHECK(known, where, "dtype ", e["dtype"].dump(),
               " is not one Iris reads (F32, F64, BF16, I64, I32, U8)");
    Shape shape;
    IRIS_CHECK(e["shape"].is_array(), where, "shape is not a list");
    uint64_t count = 1;
    for (const auto& d : e["shape"]) {
      IRIS_CHECK(d.is_number_unsigned(), where, "shape ", e["shape"].dump(), " is not a list of sizes");
      shape.push_back(d.get<int64_t>());
      count *= d.get<uint64_t>();
    }
    const auto& o = e["data_offsets"];
    IRIS_CHECK(o.is_array() && o.size() == 2 && o[0].is_number_unsigned() && o[1].is_number_unsigned(), where,
               "data_offsets is not [begin, end]");
    const uint64_t begin = o[0].get<uint64_t>(), end = o[1].get<uint64_t>();
    IRIS_CHECK(begin <= end && end <= data_size, where, "data_offsets [", begin, ", ", end,
               "] lie outside the file's ", data_size, " bytes of data (truncated?)");
    IRIS_CHECK(end - begin == count * dtype_size(dtype), where, "shape ", e["shape"].dump(), " of ",
               e["dtype"].get<std::string>(), " needs ", count * dtype_size(dtype),
               " bytes, data_offsets give ", end - begin);
    Tensor t = Tensor::empty(shape, dtype);
    f.seekg(static_cast<std::streamoff>(8 + n + begin));
    IRIS_CHECK(f.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(end - begin)), where,
               "cannot read its data");
    out.tensors[name] = t;
    spans.push_back({begin, end});
  }
  std::sort(spans.begin(), spans.end());
  uint64_t at = 0;
  for (const auto& [b, e] : spans) {
    IRIS_CHECK(b == at, "safetensors: '", path, "': tensors overlap or leave a gap at byte ", std::min(b, at),
               " of the data");
    at = e;
  }
  IRIS_CHECK(at == data_size, "safetensors: '", path, "': ", data_size - at, " bytes after the last tensor");
  return out;
}

}  // namespace iris::data
