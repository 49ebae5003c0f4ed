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

}  // namespace iris::test
