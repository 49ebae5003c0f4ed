// Helpers shared by the data tests: a temporary folder removed at the end of the test, file byte edits used
// to simulate corruption, and small synthetic images.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <zlib.h>

#include "data/image.h"

namespace iris::test {

// A fresh folder under std::filesystem::temp_directory_path(), removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("iris-test-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Inverts every bit of the byte at `offset` of the file.
inline void flip_byte(const std::string& path, int64_t offset) {
  auto bytes = read_bytes(path);
  bytes.at(static_cast<size_t>(offset)) = static_cast<char>(~bytes.at(static_cast<size_t>(offset)));
  write_bytes(path, bytes);
}

// A deterministic image whose pixels vary with position, channel and `seed`.
inline data::Image pattern_image(int h, int w, int c, int seed) {
  data::Image im(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch)
        im.at(y, x, ch) = static_cast<uint8_t>((y * 31 + x * 17 + ch * 71 + seed * 13) % 256);
  return im;
}

// ---- synthetic Fashion-MNIST IDX files (gzip'd, big-endian headers) -------------------------------------

inline void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

inline void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// An images file with the given header and `pixels` bytes of the pattern i * 7 (mod 256).
inline std::vector<uint8_t> idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t pixels) {
  std::vector<uint8_t> v;
  put_be32(v, magic);
  put_be32(v, n);
  put_be32(v, rows);
  put_be32(v, cols);
  for (size_t i = 0; i < pixels; ++i) v.push_back(static_cast<uint8_t>(i * 7 % 256));
  return v;
}

inline std::vector<uint8_t> idx_labels(uint32_t magic, const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> v;
  put_be32(v, magic);
  put_be32(v, static_cast<uint32_t>(labels.size()));
  v.insert(v.end(), labels.begin(), labels.end());
  return v;
}

// A Fashion-MNIST-shaped folder (created if needed) with n_train / n_test synthetic 28x28 images, labels i % 10.
inline void write_fake_fashion(const std::string& dir, uint32_t n_train, uint32_t n_test) {
  std::filesystem::create_directories(dir);
  for (auto [stem, n] : {std::pair<std::string, uint32_t>{"train", n_train}, {"t10k", n_test}}) {
    write_gz(dir + "/" + stem + "-images-idx3-ubyte.gz", idx_images(0x803, n, 28, 28, size_t{n} * 784));
    std::vector<uint8_t> labels(n);
    for (uint32_t i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>(i % 10);
    write_gz(dir + "/" + stem + "-labels-idx1-ubyte.gz", idx_labels(0x801, labels));
  }
}

}  // namespace iris::test
