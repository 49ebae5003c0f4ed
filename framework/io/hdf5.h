// A small RAII wrapper over the HDF5 C API: files, groups, datasets, attributes, tensors as datasets,
// row slices, CRC-32C checksums and atomic (write-to-temp, fsync, rename) file creation.
//
// Every HDF5 call is checked. HDF5's automatic error printing is turned off; a failure becomes an iris::Error
// that names the file and the object ("'run/ckpt.h5' dataset '/model/w'") and carries the innermost
// messages of HDF5's error stack. All calls into HDF5 made through this wrapper are serialised by one
// process-wide lock, so the wrapper is safe to use from several threads even with a non-thread-safe HDF5.
//
// Tensors are stored little-endian with their shape as the dataspace: f32, f64, i32, i64 and u8 map to the
// HDF5 types of the same name; bf16 is stored as uint16 with the attribute iris_dtype = "bf16". Files are
// readable by h5py (strings are variable-length UTF-8).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::h5 {

// CRC-32C (Castagnoli polynomial, reflected, as in iSCSI/ext4): crc32c("123456789") == 0xE3069283.
// `crc` continues a previous value, so crc32c(ab) == crc32c(b, crc32c(a)).
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// Name of the dataset attribute holding the CRC-32C of the dataset's raw little-endian bytes.
inline constexpr const char* kChecksumAttr = "crc32c";

// One HDF5 identifier and the function that closes it. Move-only; closes on destruction (errors there are
// ignored: destructors must not throw; use the explicit close of File to see them).
class Handle {
 public:
  using CloseFn = int (*)(int64_t);
  Handle() = default;
  Handle(int64_t id, CloseFn close) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  int64_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();
  int64_t release() {  // gives up ownership without closing
    const int64_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  int64_t id_ = -1;
  CloseFn close_ = nullptr;
};

// A group or a dataset of an open file: the things that carry attributes.
class Object {
 public:
  const std::string& file_path() const { return file_; }
  const std::string& path() const { return path_; }  // inside the file: "/", "/images", "/model/w"
  // "'<file>' <kind> '<path>'", used in every error message about this object.
  std::string where() const;
  int64_t id() const { return handle_.get(); }

  bool has_attr(const std::string& name) const;
  std::vector<std::string> attr_names() const;  // sorted

  // Writing an attribute replaces any previous one of the same name.
  void set_string_attr(const std::string& name, const std::string& value);
  void set_int_attr(const std::string& name, int64_t value);
  void set_double_attr(const std::string& name, double value);
  void set_strings_attr(const std::string& name, const std::vector<std::string>& values);
  void set_ints_attr(const std::string& name, const std::vector<int64_t>& values);

  // Reading checks that the attribute exists and has a compatible type and shape (a scalar or a 1-element
  // array for the scalar forms); strings may be fixed- or variable-length.
  std::string string_attr(const std::string& name) const;
  int64_t int_attr(const std::string& name) const;
  double double_attr(const std::string& name) const;  // integer attributes convert
  std::vector<std::string> strings_attr(const std::string& name) const;
  std::vector<int64_t> ints_attr(const std::string& name) const;

 protected:
  Object() = default;
  Object(Handle handle, std::string file, std::string path, const char* kind)
      : handle_(std::move(handle)), file_(std::move(file)), path_(std::move(path)), kind_(kind) {}

  Handle handle_;
  std::string file_, path_;
  const char* kind_ = "object";
};

class Dataset : public Object {
 public:
  Dataset() = default;
  const Shape& shape() const;
  DType dtype() const;   // the Iris dtype the dataset reads as; throws for types Iris has no dtype for
  int64_t rows() const;  // shape[0]; throws for a scalar dataset

  Tensor read() const;  // the whole dataset, on the CPU
  // Rows [start, start + count) along the first axis, reading only those bytes from the file.
  Tensor read_rows(int64_t start, int64_t count) const;
  // The same into caller memory of exactly count * row_bytes() bytes (the loader reads into its batches).
  void read_rows_into(int64_t start, int64_t count, void* dst, size_t dst_bytes) const;
  size_t row_bytes() const;  // bytes of one row (of the whole dataset for a scalar)

  // CRC-32C of the stored bytes, read in blocks (memory stays bounded for large datasets).
  uint32_t compute_checksum() const;
  bool has_checksum() const { return has_attr(kChecksumAttr); }
  void store_checksum();  // computes and writes the attribute (file opened for writing)
  // Throws naming the file and dataset when the attribute is missing or does not match the data.
  void verify_checksum() const;

  // Byte offset of the data in the file (contiguous datasets), or -1 when it has none (chunked, empty).
  int64_t file_offset() const;
  // Bytes of the data stored in the file (0 when none is allocated).
  int64_t storage_bytes() const;

 private:
  friend class Group;
  Dataset(Handle h, std::string file, std::string path)
      : Object(std::move(h), std::move(file), std::move(path), "dataset") {}
  void read_selection(int64_t start, int64_t count, void* dst) const;
  DType lookup_dtype() const;

  // Shape and dtype, looked up once: the wrapper never resizes a dataset, and the loader's per-row reads
  // should not repeat the metadata calls.
  mutable std::optional<Shape> shape_;
  mutable std::optional<DType> dtype_;
};

enum class ChildKind { group, dataset, other };

class Group : public Object {
 public:
  Group() = default;
  bool has(const std::string& name) const;  // a child (group, dataset or other link), or a path "a/b" below
  ChildKind kind(const std::string& name) const;
  std::vector<std::string> children() const;  // names of the direct children, sorted

  Group create_group(const std::string& name);
  Group open_group(const std::string& name) const;
  Dataset open_dataset(const std::string& name) const;

  // Writes `t` (any device, any layout) as a new dataset `name` with t's shape; contiguous layout, so row
  // slices read only their bytes. With `checksum`, stores its CRC-32C attribute.
  Dataset write_tensor(const std::string& name, const Tensor& t, bool checksum = true);
  Tensor read_tensor(const std::string& name) const { return open_dataset(name).read(); }

 private:
  friend class File;
  Group(Handle h, std::string file, std::string path)
      : Object(std::move(h), std::move(file), std::move(path), "group") {}
};

class File {
 public:
  enum class Mode { read_only, read_write };
  File() = default;
  // Creates (truncating an existing file) for writing, reserving `user_block_bytes` at its start (0, or a
  // power of two >= 512) that HDF5 leaves alone (AtomicWriter puts the file's seal there, file_seal.h).
  static File create(const std::string& path, int64_t user_block_bytes = 0);
  // Opens an existing file; read-only files are opened without HDF5 file locking (they are immutable once
  // renamed into place, and locking fails on some cluster file systems). A sealed file's seal is checked
  // first, without HDF5 (file_seal.h): damaged metadata is refused before the HDF5 library could crash on
  // it. Opening a sealed file for writing removes its seal, which the writes would invalidate.
  static File open(const std::string& path, Mode mode = Mode::read_only);
  // True when `path` exists and carries the HDF5 signature, or an Iris seal (whose check is left to open).
  static bool is_hdf5(const std::string& path);

  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept;
  ~File();

  bool is_open() const { return handle_.valid(); }
  const std::string& path() const { return path_; }
  Group root() const;
  void flush();
  // Closes the file, reporting failures (the destructor ignores them). Groups and datasets opened from it
  // must be closed (destroyed) first when the file was created or opened for writing.
  void close();

 private:
  File(Handle h, std::string path, bool writable)
      : handle_(std::move(h)), path_(std::move(path)), writable_(writable) {}
  Handle handle_;
  std::string path_;
  bool writable_ = false;
};

// Writes an HDF5 file atomically: the data goes to "<target>.tmp-<pid>", and commit() flushes and closes
// it, seals it (file_seal.h), fsyncs it, renames it over the target and fsyncs the directory. Readers
// therefore see either the old file or the complete new one, never a partial file, even if the process is
// killed mid-write. Destroying an uncommitted writer removes the temporary file.
class AtomicWriter {
 public:
  // `max_datasets`: how many datasets the seal should be able to list, so that readers can check the
  // metadata alone; a file with more is sealed too, but readers then check every byte.
  explicit AtomicWriter(std::string target, int64_t max_datasets = 64);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  Group root() const { return file_.root(); }
  File& file() { return file_; }
  const std::string& target() const { return target_; }
  const std::string& temp_path() const { return temp_; }
  // Groups and datasets obtained from root() must have been destroyed before commit.
  void commit();

 private:
  std::string target_, temp_;
  int64_t seal_bytes_ = 0;
  File file_;
  bool committed_ = false;
};

// The temporary name used for atomic writes of `target` by this process: "<target>.tmp-<pid>".
std::string temp_path_for(const std::string& target);
// Writes `contents` to `target` atomically (same protocol as AtomicWriter), for small text files.
void write_file_atomic(const std::string& target, const std::string& contents);
// fsync of a file or directory by path; throws naming it on failure.
void fsync_path(const std::string& path, bool directory = false);

}  // namespace iris::h5
