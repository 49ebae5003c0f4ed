// safetensors files (the format of Hugging Face's `safetensors` library, which PyTorch users load weights
// with), written and read by Iris itself:
//   [N: u64 little-endian][N bytes of JSON header][data]
//   header: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"<key>": "<string>", ...}}
// Offsets are relative to the start of the data; tensors are row-major and little-endian and together cover
// the data exactly, with no gaps or overlaps. Iris pads the header with spaces to a multiple of 8 bytes (so
// that every tensor starts aligned) and writes tensors in name order.
#pragma once

#include <map>
#include <string>

#include "framework/core/tensor.h"

namespace iris::data {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // CPU tensors
  std::map<std::string, std::string> metadata;
};

// Writes atomically (temporary name, then rename). dtypes: f32, f64, bf16, i64, i32, u8.
void write_safetensors(const std::string& path, const SafetensorsFile& file);

// Reads and checks the whole file: the header's size against the file's, its JSON, every entry's dtype, shape
// and offsets (within the data, matching the shape, covering the data exactly). Throws iris::Error naming the
// file and the tensor at fault.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace iris::data
