// Helpers for the `iris rate` tests: small synthetic sample files shaped like the ones `iris sample` and
// `iris cascade` write, and a ready-made study folder built from them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "framework/io/hdf5.h"
#include "tests/data/data_test_util.h"
#include "tools/rate/sources.h"
#include "tools/rate/study.h"

namespace iris::test {

// n grey 8x8 images, image i a distinct pattern shifted by `salt` (salt 0: the "truth").
inline std::vector<data::Image> pattern_images(int n, int salt = 0, int size = 8) {
  std::vector<data::Image> out;
  for (int i = 0; i < n; ++i) {
    data::Image img(size, size, 1);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        img.at(y, x) = static_cast<uint8_t>((x * 29 + y * 13 + i * 41 + salt * 97) % 256);
    out.push_back(img);
  }
  return out;
}

struct SampleFile {
  std::string format = "iris-samples";
  std::string dataset = "images";
  std::vector<data::Image> images, truth, lowres;
  std::vector<std::string> names;
  std::vector<int64_t> indices;
};

// Writes `f` as iris sample writes samples.h5 (or, with format "iris-cascade-samples" and dataset
// "stage_1", cascade.h5).
inline void write_sample_file(const std::string& path, const SampleFile& f) {
  h5::AtomicWriter w(path);
  {
    h5::Group root = w.root();
    root.set_string_attr("format", f.format);
    root.set_string_attr("sampler", "ddpm");
    root.set_int_attr("steps", 100);
    if (f.format == "iris-cascade-samples") {
      root.set_int_attr("num_stages", 2);
      root.write_tensor("stage_0", data::stack_images(f.lowres.empty() ? f.images : f.lowres));
    }
    root.write_tensor(f.dataset, data::stack_images(f.images));
    if (!f.truth.empty()) root.write_tensor("truth", data::stack_images(f.truth));
    if (!f.lowres.empty()) root.write_tensor("lowres", data::stack_images(f.lowres));
    if (!f.names.empty()) root.set_strings_attr("names", f.names);
    if (!f.indices.empty())
      root.write_tensor("indices",
                        Tensor::from_vector<int64_t>(f.indices, {static_cast<int64_t>(f.indices.size())}));
  }
  w.commit();
}

inline std::vector<data::Image> downsized(const std::vector<data::Image>& images) {
  std::vector<data::Image> out;
  for (const auto& img : images) {
    data::Image s(img.height / 2, img.width / 2, img.channels);
    for (int y = 0; y < s.height; ++y)
      for (int x = 0; x < s.width; ++x) s.at(y, x) = img.at(2 * y, 2 * x);
    out.push_back(s);
  }
  return out;
}

// Two methods over the same `n` truth images: "sr3" (salt 1) and "regression" (salt 2), each a samples.h5 in
// its own folder under `root`, with truth, low-res inputs and names.
inline std::vector<std::string> write_two_methods(const std::filesystem::path& root, int n) {
  const auto truth = pattern_images(n);
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back("img" + std::to_string(i));
  std::vector<std::string> args;
  const char* methods[] = {"sr3", "regression"};
  for (int k = 0; k < 2; ++k) {
    std::filesystem::create_directories(root / methods[k]);
    SampleFile f;
    f.images = pattern_images(n, k + 1);
    f.truth = truth;
    f.lowres = downsized(truth);
    f.names = names;
    const std::string path = (root / methods[k] / "samples.h5").string();
    write_sample_file(path, f);
    args.push_back(std::string(methods[k]) + "=" + path);
  }
  return args;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

inline rate::StudyConfig make_study(const std::string& dir, const std::vector<std::string>& methods,
                                    int64_t per_method = -1, uint64_t seed = 0, bool show_input = false) {
  rate::CreateOptions o;
  o.methods = methods;
  o.images_per_method = per_method;
  o.seed = seed;
  o.show_input = show_input;
  return rate::create_study(dir, o, [](const std::string&) {});
}

}  // namespace iris::test
