// Atomic file replacement: write "<target>.tmp-<pid>", fsync it, rename it over the target (atomic on POSIX
// file systems), fsync the directory so that the rename itself survives a crash.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "framework/io/file_seal.h"
#include "framework/io/hdf5.h"

namespace iris::h5 {

namespace fs = std::filesystem;

namespace {
std::string parent_dir(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Where the raw data of every dataset below `g` lies: the seal leaves these bytes to the datasets' own
// checksums, so that a reader checks the metadata without reading the data.
void collect_raw_extents(const Group& g, std::vector<Extent>& out) {
  for (const auto& name : g.children()) {
    if (g.kind(name) == ChildKind::group) {
      collect_raw_extents(g.open_group(name), out);
    } else if (g.kind(name) == ChildKind::dataset) {
      const Dataset ds = g.open_dataset(name);
      const int64_t offset = ds.file_offset();
      if (offset >= 0) out.push_back({offset, ds.storage_bytes()});
    }
  }
}

void rename_over(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  IRIS_CHECK(!ec, "cannot rename '", from, "' to '", to, "': ", ec.message());
}
}  // namespace

std::string temp_path_for(const std::string& target) {
  return target + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  IRIS_CHECK(fd >= 0, "cannot open '", path, "' to fsync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  IRIS_CHECK(rc == 0, "fsync of '", path, "' failed: ", std::strerror(err));
}

void write_file_atomic(const std::string& target, const std::string& contents) {
  const std::string tmp = temp_path_for(target);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  IRIS_CHECK(fd >= 0, "cannot create '", tmp, "' (writing '", target, "'): ", std::strerror(errno));
  size_t done = 0;
  int err = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = errno;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    std::error_code ec;
    fs::remove(tmp, ec);
    IRIS_THROW("cannot write '", tmp, "' (writing '", target, "'): ", std::strerror(err));
  }
  rename_over(tmp, target);
  fsync_path(parent_dir(target), true);
}

AtomicWriter::AtomicWriter(std::string target, int64_t max_datasets)
    : target_(std::move(target)), temp_(temp_path_for(target_)), seal_bytes_(seal_block_bytes(max_datasets)) {
  try {
    file_ = File::create(temp_, seal_bytes_);
  } catch (const Error&) {
    // A create that fails part way (a full disk) can leave an empty temporary file; no destructor will run.
    std::error_code ec;
    fs::remove(temp_, ec);
    throw;
  }
}

AtomicWriter::~AtomicWriter() {
  if (committed_) return;
  try {
    file_.close();
  } catch (...) {
    // The temporary is being discarded; a close failure changes nothing.
  }
  std::error_code ec;
  fs::remove(temp_, ec);
}

void AtomicWriter::commit() {
  IRIS_CHECK(!committed_, "AtomicWriter: '", target_, "' was already committed");
  std::vector<Extent> extents;
  collect_raw_extents(file_.root(), extents);
  file_.close();
  write_seal(temp_, seal_bytes_, std::move(extents));
  fsync_path(temp_);
  rename_over(temp_, target_);
  committed_ = true;
  fsync_path(parent_dir(target_), true);
}

}  // namespace iris::h5
