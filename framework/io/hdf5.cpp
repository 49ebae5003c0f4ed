// HDF5 wrapper: handles, error conversion, files, groups, datasets and tensors. Attributes are in
// hdf5_attributes.cpp, atomic writing and fsync in atomic_file.cpp, CRC-32C in checksum.cpp.
#include "framework/io/hdf5.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>

#include "framework/io/file_seal.h"
#include "framework/io/hdf5_detail.h"

namespace iris::h5 {

static_assert(std::endian::native == std::endian::little,
              "Iris stores tensors little-endian and reads them with native types: a big-endian host needs "
              "explicit conversions");
static_assert(std::is_same_v<Handle::CloseFn, decltype(&H5Fclose)>, "HDF5 close functions changed signature");

// ---- detail -----------------------------------------------------------------------------------------------

namespace detail {

static std::recursive_mutex& global_mutex() {
  static std::recursive_mutex m;
  return m;
}

Guard::Guard() : lock_(global_mutex()) {
  // HDF5's exit-time cleanup closes every file still registered. A file whose close failed (a full disk
  // while its metadata was flushed) stays registered half torn down, and that cleanup then segfaults in
  // H5F__close_cb. The wrapper closes every file it opens itself (RAII), so the cleanup is not needed: turn
  // it off before the library initialises (H5dont_atexit must precede every other HDF5 call).
  static const bool no_atexit_cleanup = [] {
    (void)H5dont_atexit();
    return true;
  }();
  (void)no_atexit_cleanup;
  thread_local bool silenced = false;
  if (!silenced) {
    // Cannot fail for the default stack; if it somehow did, HDF5 would merely print its own messages too.
    (void)H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
}

namespace {
herr_t collect_error(unsigned, const H5E_error2_t* e, void* out) {
  auto* msgs = static_cast<std::vector<std::string>*>(out);
  std::string m = e->desc ? e->desc : "";
  if (m.empty()) {
    char buf[256] = {0};
    if (H5Eget_msg(e->min_num, nullptr, buf, sizeof(buf)) > 0) m = buf;
  }
  if (!m.empty() && std::find(msgs->begin(), msgs->end(), m) == msgs->end()) msgs->push_back(m);
  return 0;
}
}  // namespace

std::string stack_message() {
  std::vector<std::string> msgs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &msgs);
  H5Eclear2(H5E_DEFAULT);
  // The outermost messages say what failed, the innermost why; keep both ends of long stacks.
  if (msgs.size() > 6) msgs.erase(msgs.begin() + 3, msgs.end() - 3);
  std::string out;
  for (size_t i = 0; i < msgs.size(); ++i) out += (i ? "; " : "") + msgs[i];
  std::replace(out.begin(), out.end(), '\n', ' ');  // some HDF5 messages embed a ctime() line
  return out;
}

}  // namespace detail

using detail::Guard;

// ---- Handle -----------------------------------------------------------------------------------------------

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && close_) {
    Guard g;
    // A handle of a file closed with H5F_CLOSE_STRONG is already invalid: closing it again fails harmlessly.
    if (close_(id_) < 0) H5Eclear2(H5E_DEFAULT);
  }
  id_ = -1;
}

// ---- type mapping -----------------------------------------------------------------------------------------

namespace {

hid_t file_type_of(DType t) {
  switch (t) {
    case DType::f32:
      return H5T_IEEE_F32LE;
    case DType::f64:
      return H5T_IEEE_F64LE;
    case DType::i32:
      return H5T_STD_I32LE;
    case DType::i64:
      return H5T_STD_I64LE;
    case DType::u8:
      return H5T_STD_U8LE;
    case DType::bf16:
      return H5T_STD_U16LE;
  }
  IRIS_THROW("hdf5: unknown dtype");
}

hid_t mem_type_of(DType t) {
  switch (t) {
    case DType::f32:
      return H5T_NATIVE_FLOAT;
    case DType::f64:
      return H5T_NATIVE_DOUBLE;
    case DType::i32:
      return H5T_NATIVE_INT32;
    case DType::i64:
      return H5T_NATIVE_INT64;
    case DType::u8:
      return H5T_NATIVE_UINT8;
    case DType::bf16:
      return H5T_NATIVE_UINT16;
  }
  IRIS_THROW("hdf5: unknown dtype");
}

constexpr const char* kDTypeAttr = "iris_dtype";

std::string child_path(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

}  // namespace

std::string Object::where() const {
  return "'" + file_ + "' " + kind_ + " '" + path_ + "'";
}

// ---- Dataset ----------------------------------------------------------------------------------------------

const Shape& Dataset::shape() const {
  Guard g;
  if (shape_) return *shape_;
  Handle space(IRIS_H5(H5Dget_space(id()), "cannot get the dataspace of ", where()), H5Sclose);
  const int rank = IRIS_H5(H5Sget_simple_extent_ndims(space.get()), "cannot get the rank of ", where());
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0)
    IRIS_H5(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), "cannot get dims of ", where());
  shape_ = Shape(dims.begin(), dims.end());
  return *shape_;
}

DType Dataset::dtype() const {
  Guard g;
  if (!dtype_) dtype_ = lookup_dtype();
  return *dtype_;
}

DType Dataset::lookup_dtype() const {
  Handle type(IRIS_H5(H5Dget_type(id()), "cannot get the type of ", where()), H5Tclose);
  const H5T_class_t cls = IRIS_H5(H5Tget_class(type.get()), "cannot get the type class of ", where());
  const size_t size = H5Tget_size(type.get());
  IRIS_CHECK(size > 0, "hdf5: cannot get the element size of ", where(), " (HDF5: ", detail::stack_message(),
             ")");
  if (cls == H5T_FLOAT && size == 4) return DType::f32;
  if (cls == H5T_FLOAT && size == 8) return DType::f64;
  if (cls == H5T_INTEGER) {
    const bool is_signed = IRIS_H5(H5Tget_sign(type.get()), "cannot get the sign of ", where()) == H5T_SGN_2;
    if (is_signed && size == 4) return DType::i32;
    if (is_signed && size == 8) return DType::i64;
    if (!is_signed && size == 1) return DType::u8;
    if (!is_signed && size == 2 && has_attr(kDTypeAttr) && string_attr(kDTypeAttr) == "bf16")
      return DType::bf16;
  }
  IRIS_THROW("hdf5: ", where(), " has an element type Iris cannot read (class ", static_cast<int>(cls), ", ",
             size, " bytes); supported: f32, f64, i32, i64, u8 and bf16 stored as uint16");
}

int64_t Dataset::rows() const {
  const Shape& s = shape();
  IRIS_CHECK(!s.empty(), "hdf5: ", where(), " is a scalar and has no rows");
  return s[0];
}

size_t Dataset::row_bytes() const {
  const Shape& s = shape();
  const int64_t per_row = s.empty() ? 1 : shape_numel(Shape(s.begin() + 1, s.end()));
  return static_cast<size_t>(per_row) * dtype_size(dtype());
}

void Dataset::read_selection(int64_t start, int64_t count, void* dst) const {
  Guard g;
  const Shape& s = shape();
  const DType dt = dtype();
  if (shape_numel(s) == 0 || count == 0) return;
  if (s.empty()) {
    IRIS_H5(H5Dread(id(), mem_type_of(dt), H5S_ALL, H5S_ALL, H5P_DEFAULT, dst), "cannot read ", where());
    return;
  }
  std::vector<hsize_t> off(s.size(), 0), cnt(s.begin(), s.end());
  off[0] = static_cast<hsize_t>(start);
  cnt[0] = static_cast<hsize_t>(count);
  Handle fspace(IRIS_H5(H5Dget_space(id()), "cannot get the dataspace of ", where()), H5Sclose);
  IRIS_H5(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(), nullptr),
          "cannot select rows [", start, ", ", start + count, ") of ", where());
  Handle mspace(IRIS_H5(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr),
                        "cannot make a memory dataspace for ", where()),
                H5Sclose);
  IRIS_H5(H5Dread(id(), mem_type_of(dt), mspace.get(), fspace.get(), H5P_DEFAULT, dst), "cannot read rows [",
          start, ", ", start + count, ") of ", where(), " (corrupted or truncated file?)");
}

Tensor Dataset::read() const {
  Guard g;
  Tensor t = Tensor::empty(shape(), dtype());
  read_selection(0, t.dim() == 0 ? 1 : t.size(0), t.data_ptr());
  return t;
}

Tensor Dataset::read_rows(int64_t start, int64_t count) const {
  Guard g;
  Shape s = shape();
  IRIS_CHECK(!s.empty(), "hdf5: read_rows of scalar ", where());
  IRIS_CHECK(start >= 0 && count >= 0 && start + count <= s[0], "hdf5: rows [", start, ", ", start + count,
             ") out of range for ", where(), " of shape ", shape_str(s));
  s[0] = count;
  Tensor t = Tensor::empty(s, dtype());
  read_selection(start, count, t.data_ptr());
  return t;
}

void Dataset::read_rows_into(int64_t start, int64_t count, void* dst, size_t dst_bytes) const {
  Guard g;
  const Shape& s = shape();
  IRIS_CHECK(!s.empty(), "hdf5: read_rows_into of scalar ", where());
  IRIS_CHECK(start >= 0 && count >= 0 && start + count <= s[0], "hdf5: rows [", start, ", ", start + count,
             ") out of range for ", where(), " of shape ", shape_str(s));
  const size_t need = static_cast<size_t>(count) * row_bytes();
  IRIS_CHECK(dst_bytes == need, "hdf5: read_rows_into ", where(), ": destination has ", dst_bytes,
             " bytes, rows need ", need);
  read_selection(start, count, dst);
}

uint32_t Dataset::compute_checksum() const {
  Guard g;
  const Shape& s = shape();
  if (s.empty()) return h5::crc32c(read().data_ptr(), dtype_size(dtype()));
  const size_t rb = row_bytes();
  // Blocks of about 64 MiB: bounded memory whatever the dataset size.
  const int64_t block =
      std::max<int64_t>(1, static_cast<int64_t>((size_t{64} << 20) / std::max<size_t>(rb, 1)));
  std::vector<uint8_t> buf;
  uint32_t crc = 0;
  for (int64_t r = 0; r < s[0]; r += block) {
    const int64_t n = std::min(block, s[0] - r);
    buf.resize(static_cast<size_t>(n) * rb);
    read_selection(r, n, buf.data());
    crc = h5::crc32c(buf.data(), buf.size(), crc);
  }
  return crc;
}

void Dataset::store_checksum() {
  set_int_attr(kChecksumAttr, static_cast<int64_t>(compute_checksum()));
}

void Dataset::verify_checksum() const {
  IRIS_CHECK(has_checksum(), "hdf5: ", where(), " has no ", kChecksumAttr, " checksum attribute");
  const int64_t stored = int_attr(kChecksumAttr);
  const uint32_t actual = compute_checksum();
  IRIS_CHECK(stored == static_cast<int64_t>(actual), "hdf5: checksum mismatch in ", where(), ": stored ",
             stored, ", data gives ", actual, " (the file is corrupted)");
}

int64_t Dataset::file_offset() const {
  Guard g;
  const haddr_t a = H5Dget_offset(id());
  H5Eclear2(H5E_DEFAULT);
  return a == HADDR_UNDEF ? -1 : static_cast<int64_t>(a);
}

int64_t Dataset::storage_bytes() const {
  Guard g;
  // H5Dget_storage_size returns 0 both for "nothing allocated" and for errors; either way no raw data.
  const hsize_t n = H5Dget_storage_size(id());
  H5Eclear2(H5E_DEFAULT);
  return static_cast<int64_t>(n);
}

// ---- Group ------------------------------------------------------------------------------------------------

bool Group::has(const std::string& name) const {
  Guard g;
  IRIS_CHECK(!name.empty(), "hdf5: empty child name in ", where());
  // H5Lexists fails (rather than answering false) when an intermediate component is missing: walk the path.
  size_t pos = 0;
  while (true) {
    const size_t slash = name.find('/', pos);
    const std::string prefix = name.substr(0, slash);
    const htri_t e =
        IRIS_H5(H5Lexists(id(), prefix.c_str(), H5P_DEFAULT), "cannot look up '", prefix, "' in ", where());
    if (e == 0) return false;
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

ChildKind Group::kind(const std::string& name) const {
  Guard g;
  IRIS_CHECK(has(name), "hdf5: ", where(), " has no child '", name, "'");
  Handle obj(IRIS_H5(H5Oopen(id(), name.c_str(), H5P_DEFAULT), "cannot open '", name, "' in ", where()),
             H5Oclose);
  const H5I_type_t t = IRIS_H5(H5Iget_type(obj.get()), "cannot get the kind of '", name, "' in ", where());
  return t == H5I_GROUP ? ChildKind::group : t == H5I_DATASET ? ChildKind::dataset : ChildKind::other;
}

namespace {
herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> Group::children() const {
  Guard g;
  std::vector<std::string> names;
  hsize_t idx = 0;
  IRIS_H5(H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, &names),
          "cannot list the children of ", where());
  std::sort(names.begin(), names.end());
  return names;
}

Group Group::create_group(const std::string& name) {
  Guard g;
  Handle h(IRIS_H5(H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                   "cannot create group '", name, "' in ", where()),
           H5Gclose);
  return Group(std::move(h), file_, child_path(path_, name));
}

Group Group::open_group(const std::string& name) const {
  Guard g;
  IRIS_CHECK(has(name), "hdf5: ", where(), " has no group '", name, "'");
  Handle h(IRIS_H5(H5Gopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open group '", name, "' in ", where()),
           H5Gclose);
  return Group(std::move(h), file_, child_path(path_, name));
}

Dataset Group::open_dataset(const std::string& name) const {
  Guard g;
  IRIS_CHECK(has(name), "hdf5: ", where(), " has no dataset '", name, "'");
  Handle h(
      IRIS_H5(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "cannot open dataset '", name, "' in ", where()),
      H5Dclose);
  return Dataset(std::move(h), file_, child_path(path_, name));
}

Dataset Group::write_tensor(const std::string& name, const Tensor& t, bool checksum) {
  check_defined(t, "hdf5 write_tensor");
  const Tensor host = t.cpu().contiguous();
  Guard g;
  const Shape& s = host.shape();
  std::vector<hsize_t> dims(s.begin(), s.end());
  Handle space(IRIS_H5(s.empty() ? H5Screate(H5S_SCALAR)
                                 : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                       "cannot make a dataspace of shape ", shape_str(s), " for '", name, "' in ", where()),
               H5Sclose);
  Handle h(IRIS_H5(H5Dcreate2(id(), name.c_str(), file_type_of(host.dtype()), space.get(), H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT),
                   "cannot create dataset '", name, "' (", host.summary(), ") in ", where()),
           H5Dclose);
  Dataset ds(std::move(h), file_, child_path(path_, name));
  if (host.numel() > 0) {
    IRIS_H5(H5Dwrite(ds.id(), mem_type_of(host.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, host.data_ptr()),
            "cannot write ", ds.where(), " (", host.summary(), ")");
  }
  if (host.dtype() == DType::bf16) ds.set_string_attr(kDTypeAttr, "bf16");
  if (checksum)
    ds.set_int_attr(kChecksumAttr, static_cast<int64_t>(h5::crc32c(host.data_ptr(), host.nbytes())));
  return ds;
}

// ---- File -------------------------------------------------------------------------------------------------

namespace {
Handle make_fapl(bool writable, const std::string& path) {
  Handle fapl(IRIS_H5(H5Pcreate(H5P_FILE_ACCESS), "cannot create file access properties for '", path, "'"),
              H5Pclose);
  // Writers close strongly so that commit() works while the caller still holds groups or datasets; readers
  // close weakly so that an open dataset keeps its file alive.
  IRIS_H5(H5Pset_fclose_degree(fapl.get(), writable ? H5F_CLOSE_STRONG : H5F_CLOSE_WEAK),
          "cannot set the close degree for '", path, "'");
#if H5_VERSION_GE(1, 10, 7)
  IRIS_H5(H5Pset_file_locking(fapl.get(), false, true), "cannot disable file locking for '", path, "'");
#endif
  return fapl;
}
}  // namespace

File File::create(const std::string& path, int64_t user_block_bytes) {
  Guard g;
  Handle fapl = make_fapl(true, path);
  Handle fcpl(IRIS_H5(H5Pcreate(H5P_FILE_CREATE), "cannot create file creation properties for '", path, "'"),
              H5Pclose);
  if (user_block_bytes > 0)
    IRIS_H5(H5Pset_userblock(fcpl.get(), static_cast<hsize_t>(user_block_bytes)), "cannot reserve a ",
            user_block_bytes, "-byte user block in '", path, "'");
  Handle h(IRIS_H5(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), "hdf5: cannot create '",
                   path, "'"),
           H5Fclose);
  return File(std::move(h), path, true);
}

File File::open(const std::string& path, Mode mode) {
  std::error_code ec;
  IRIS_CHECK(std::filesystem::is_regular_file(path, ec), "hdf5: cannot open '", path,
             "': no such file (or not a regular file)");
  // Before HDF5 sees the file: its parser may crash on damaged metadata.
  (void)check_seal(path);
  if (mode == Mode::read_write) remove_seal(path);
  Guard g;
  Handle fapl = make_fapl(mode == Mode::read_write, path);
  const unsigned flags = mode == Mode::read_write ? H5F_ACC_RDWR : H5F_ACC_RDONLY;
  Handle h(IRIS_H5(H5Fopen(path.c_str(), flags, fapl.get()), "hdf5: cannot open '", path,
                   "' (not an HDF5 file, or corrupted or truncated)"),
           H5Fclose);
  return File(std::move(h), path, mode == Mode::read_write);
}

bool File::is_hdf5(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  if (looks_sealed(path)) return true;  // H5Fis_accessible would parse a possibly damaged file
  Guard g;
#if H5_VERSION_GE(1, 12, 0)
  const htri_t r = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t r = H5Fis_hdf5(path.c_str());
#endif
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    handle_ = std::move(o.handle_);
    path_ = std::move(o.path_);
    writable_ = o.writable_;
  }
  return *this;
}

File::~File() = default;  // the handle closes itself, ignoring errors

Group File::root() const {
  IRIS_CHECK(is_open(), "hdf5: '", path_, "' is not open");
  Guard g;
  Handle h(IRIS_H5(H5Gopen2(handle_.get(), "/", H5P_DEFAULT), "cannot open the root group of '", path_, "'"),
           H5Gclose);
  return Group(std::move(h), path_, "/");
}

void File::flush() {
  IRIS_CHECK(is_open(), "hdf5: flush of '", path_, "', which is not open");
  Guard g;
  IRIS_H5(H5Fflush(handle_.get(), H5F_SCOPE_GLOBAL), "hdf5: cannot flush '", path_, "'");
}

void File::close() {
  if (!is_open()) return;
  Guard g;
  const int64_t id = handle_.release();
  IRIS_H5(H5Fclose(id), "hdf5: cannot close '", path_, "' (its data may not all be on disk)");
}

}  // namespace iris::h5
