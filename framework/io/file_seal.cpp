// The seal of Iris's HDF5 files: written after the file is closed, checked before HDF5 opens it. Plain POSIX
// I/O only: nothing here may depend on the file's HDF5 structure being intact. Format in file_seal.h.
#include "framework/io/file_seal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "framework/core/error.h"
#include "framework/core/format.h"
#include "framework/io/hdf5.h"

namespace iris::h5 {

namespace {

constexpr char kMagic[8] = {'I', 'R', 'I', 'S', 'S', 'E', 'A', 'L'};
constexpr uint32_t kSealVersion = 1;
constexpr uint32_t kExtentsNotRecorded = 0xFFFFFFFFu;
constexpr size_t kFixedBytes = 40;  // the fields before the extents
constexpr size_t kBlockCrcAt = 36;
constexpr int64_t kMaxBlockBytes = int64_t{1} << 20;

// An open file descriptor, closed on scope exit.
class Fd {
 public:
  Fd(const std::string& path, int flags) : path_(path), fd_(::open(path.c_str(), flags | O_CLOEXEC)) {
    IRIS_CHECK(fd_ >= 0, "cannot open '", path, "': ", std::strerror(errno));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int64_t size() const {
    struct stat st {};
    IRIS_CHECK(::fstat(fd_, &st) == 0, "cannot stat '", path_, "': ", std::strerror(errno));
    return static_cast<int64_t>(st.st_size);
  }
  // Reads exactly `n` bytes at `offset` (fewer only at the end of the file); returns the count read.
  size_t read_at(void* dst, size_t n, int64_t offset) const {
    size_t done = 0;
    while (done < n) {
      const ssize_t r =
          ::pread(fd_, static_cast<char*>(dst) + done, n - done, offset + static_cast<off_t>(done));
      if (r < 0 && errno == EINTR) continue;
      IRIS_CHECK(r >= 0, "cannot read '", path_, "': ", std::strerror(errno));
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }
  void write_at(const void* src, size_t n, int64_t offset) const {
    size_t done = 0;
    while (done < n) {
      const ssize_t r =
          ::pwrite(fd_, static_cast<const char*>(src) + done, n - done, offset + static_cast<off_t>(done));
      if (r < 0 && errno == EINTR) continue;
      IRIS_CHECK(r > 0, "cannot write the seal of '", path_, "': ", std::strerror(errno));
      done += static_cast<size_t>(r);
    }
  }
  // CRC-32C of bytes [begin, end), continuing `crc`; throws when the file ends early.
  uint32_t crc_range(int64_t begin, int64_t end, uint32_t crc) const {
    std::vector<char> buf(size_t{1} << 20);
    for (int64_t at = begin; at < end;) {
      const size_t n = static_cast<size_t>(std::min<int64_t>(end - at, static_cast<int64_t>(buf.size())));
      IRIS_CHECK(read_at(buf.data(), n, at) == n, "'", path_, "' ended while its checksum was read");
      crc = crc32c(buf.data(), n, crc);
      at += static_cast<int64_t>(n);
    }
    return crc;
  }

 private:
  std::string path_;
  int fd_;
};

template <typename T>
T load(const std::vector<char>& b, size_t at) {
  T v{};
  std::memcpy(&v, b.data() + at, sizeof(T));  // little-endian host (checked in hdf5.cpp)
  return v;
}
template <typename T>
void store(std::vector<char>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

uint32_t block_crc(std::vector<char> block) {
  store<uint32_t>(block, kBlockCrcAt, 0);
  return crc32c(block.data(), block.size());
}

// Sorted, merged, non-empty extents.
std::vector<Extent> normalized(std::vector<Extent> e) {
  std::erase_if(e, [](const Extent& x) { return x.bytes <= 0 || x.offset < 0; });
  std::sort(e.begin(), e.end(), [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  std::vector<Extent> out;
  for (const Extent& x : e) {
    if (!out.empty() && x.offset <= out.back().offset + out.back().bytes)
      out.back().bytes = std::max(out.back().bytes, x.offset + x.bytes - out.back().offset);
    else
      out.push_back(x);
  }
  return out;
}

// CRC of [begin, end) without the extents (sorted, disjoint, inside the range).
uint32_t crc_outside(const Fd& fd, int64_t begin, int64_t end, const std::vector<Extent>& extents) {
  uint32_t crc = 0;
  int64_t at = begin;
  for (const Extent& x : extents) {
    crc = fd.crc_range(at, x.offset, crc);
    at = x.offset + x.bytes;
  }
  return fd.crc_range(at, end, crc);
}

bool is_power_of_two(int64_t v) {
  return v > 0 && (v & (v - 1)) == 0;
}

// Whether the file starts with a seal, perhaps a damaged one: most of the magic, or a seal version and block
// size with the HDF5 signature right after that block. A few damaged bytes at the start must be reported as
// a damaged seal, not handed to HDF5 as a file with a foreign user block.
bool seal_present(const Fd& fd, const std::vector<char>& head) {
  int same = 0;
  for (size_t i = 0; i < sizeof(kMagic); ++i) same += head[i] == kMagic[i];
  if (same >= 5) return true;
  const int64_t block = load<uint32_t>(head, 12);
  if (load<uint32_t>(head, 8) != kSealVersion || !is_power_of_two(block) || block < 512 ||
      block > kMaxBlockBytes)
    return false;
  static constexpr char kHdf5Signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  char sig[8] = {};
  return fd.read_at(sig, sizeof(sig), block) == sizeof(sig) && std::memcmp(sig, kHdf5Signature, 8) == 0;
}

}  // namespace

int64_t seal_block_bytes(int64_t max_extents) {
  int64_t need = static_cast<int64_t>(kFixedBytes) + 16 * std::max<int64_t>(max_extents, 0);
  int64_t block = 512;
  while (block < need && block < kMaxBlockBytes) block *= 2;
  return block;
}

void write_seal(const std::string& path, int64_t block_bytes, std::vector<Extent> raw_extents) {
  IRIS_CHECK(is_power_of_two(block_bytes) && block_bytes >= 512 && block_bytes <= kMaxBlockBytes,
             "write_seal '", path, "': bad user block size ", block_bytes);
  const Fd fd(path, O_RDWR);
  const int64_t length = fd.size();
  IRIS_CHECK(length > block_bytes, "write_seal '", path, "': the file (", length,
             " bytes) is no longer than its user block");
  std::vector<Extent> extents = normalized(std::move(raw_extents));
  for (const Extent& x : extents)
    IRIS_CHECK(x.offset >= block_bytes && x.offset + x.bytes <= length, "write_seal '", path,
               "': raw data extent [", x.offset, ", ", x.offset + x.bytes, ") outside the file's HDF5 part");
  const bool recorded = kFixedBytes + 16 * extents.size() <= static_cast<size_t>(block_bytes);

  std::vector<char> block(static_cast<size_t>(block_bytes), 0);
  std::memcpy(block.data(), kMagic, sizeof(kMagic));
  store<uint32_t>(block, 8, kSealVersion);
  store<uint32_t>(block, 12, static_cast<uint32_t>(block_bytes));
  store<uint64_t>(block, 16, static_cast<uint64_t>(length));
  store<uint32_t>(block, 24, fd.crc_range(block_bytes, length, 0));
  store<uint32_t>(block, 28, recorded ? crc_outside(fd, block_bytes, length, extents) : 0);
  store<uint32_t>(block, 32, recorded ? static_cast<uint32_t>(extents.size()) : kExtentsNotRecorded);
  if (recorded) {
    for (size_t i = 0; i < extents.size(); ++i) {
      store<uint64_t>(block, kFixedBytes + 16 * i, static_cast<uint64_t>(extents[i].offset));
      store<uint64_t>(block, kFixedBytes + 16 * i + 8, static_cast<uint64_t>(extents[i].bytes));
    }
  }
  store<uint32_t>(block, kBlockCrcAt, block_crc(block));
  fd.write_at(block.data(), block.size(), 0);
}

bool looks_sealed(const std::string& path) {
  try {
    const Fd fd(path, O_RDONLY);
    std::vector<char> head(kFixedBytes, 0);
    return fd.read_at(head.data(), head.size(), 0) == head.size() && seal_present(fd, head);
  } catch (const Error&) {
    return false;
  }
}

SealCheck check_seal(const std::string& path, bool whole_file) {
  SealCheck result;
  const Fd fd(path, O_RDONLY);
  const int64_t size = fd.size();
  std::vector<char> head(kFixedBytes, 0);
  if (fd.read_at(head.data(), head.size(), 0) < head.size() || !seal_present(fd, head)) return result;

  const auto claimed_length = static_cast<int64_t>(load<uint64_t>(head, 16));
  if (size < static_cast<int64_t>(kFixedBytes) + 512)
    IRIS_THROW("'", path, "' is truncated: ", with_commas(size), " of ", with_commas(claimed_length),
               " bytes (its seal says)");
  const int64_t block_bytes = load<uint32_t>(head, 12);
  IRIS_CHECK(is_power_of_two(block_bytes) && block_bytes >= 512 && block_bytes <= kMaxBlockBytes, "'", path,
             "' has a damaged seal (its header at the start of the file): block size ", block_bytes);
  if (size < block_bytes)
    IRIS_THROW("'", path, "' is truncated: ", with_commas(size), " of ", with_commas(claimed_length),
               " bytes (its seal says)");
  std::vector<char> block(static_cast<size_t>(block_bytes));
  IRIS_CHECK(fd.read_at(block.data(), block.size(), 0) == block.size(), "'", path, "' is truncated");
  IRIS_CHECK(block_crc(block) == load<uint32_t>(block, kBlockCrcAt), "'", path,
             "' has a damaged seal: checksum mismatch in its first ", with_commas(block_bytes),
             " bytes (the file is damaged)");
  const uint32_t version = load<uint32_t>(block, 8);
  IRIS_CHECK(version == kSealVersion, "'", path, "' has a seal of version ", version, "; this Iris reads ",
             kSealVersion);
  const auto length = static_cast<int64_t>(load<uint64_t>(block, 16));
  IRIS_CHECK(size >= length, "'", path, "' is truncated: ", with_commas(size), " of ", with_commas(length),
             " bytes");
  IRIS_CHECK(size == length, "'", path, "' is ", with_commas(size), " bytes but its seal says ",
             with_commas(length), " (bytes appended, or the file was changed after it was written)");

  const uint32_t count = load<uint32_t>(block, 32);
  const bool recorded = count != kExtentsNotRecorded;
  if (recorded) {
    IRIS_CHECK(kFixedBytes + 16 * static_cast<size_t>(count) <= block.size(), "'", path,
               "' has a damaged seal: ", count, " extents do not fit its block");
    std::vector<Extent> extents(count);
    int64_t end_of_previous = block_bytes;
    for (uint32_t i = 0; i < count; ++i) {
      extents[i].offset = static_cast<int64_t>(load<uint64_t>(block, kFixedBytes + 16 * i));
      extents[i].bytes = static_cast<int64_t>(load<uint64_t>(block, kFixedBytes + 16 * i + 8));
      IRIS_CHECK(extents[i].offset >= end_of_previous && extents[i].bytes > 0 &&
                     extents[i].bytes <= length - extents[i].offset,
                 "'", path, "' has a damaged seal: bad extent ", i);
      end_of_previous = extents[i].offset + extents[i].bytes;
    }
    IRIS_CHECK(crc_outside(fd, block_bytes, length, extents) == load<uint32_t>(block, 28), "'", path,
               "' is damaged: checksum mismatch in its metadata (the HDF5 structure), so it is not opened");
  }
  if (!recorded || whole_file) {
    IRIS_CHECK(fd.crc_range(block_bytes, length, 0) == load<uint32_t>(block, 24), "'", path,
               "' is damaged: checksum mismatch over the whole file, so it is not opened");
    result.whole_file = true;
  }
  result.state = SealState::sealed;
  return result;
}

void remove_seal(const std::string& path) {
  if (check_seal(path).state != SealState::sealed) return;
  const Fd fd(path, O_RDWR);
  std::vector<char> head(kFixedBytes, 0);
  (void)fd.read_at(head.data(), head.size(), 0);
  const std::vector<char> zeros(load<uint32_t>(head, 12), 0);
  fd.write_at(zeros.data(), zeros.size(), 0);
}

}  // namespace iris::h5
