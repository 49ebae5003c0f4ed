// Attributes of HDF5 groups and datasets: strings (variable-length UTF-8 when written; fixed-length ones
// written by other tools are read too), 64-bit integers, doubles, and 1-D lists of strings and integers.
#include <algorithm>

#include "framework/io/hdf5.h"
#include "framework/io/hdf5_detail.h"

namespace iris::h5 {

using detail::Guard;

namespace {

// A variable-length UTF-8 string type (what h5py writes for Python str).
Handle vlen_string_type(const std::string& where) {
  Handle t(IRIS_H5(H5Tcopy(H5T_C_S1), "cannot copy the string type for ", where), H5Tclose);
  IRIS_H5(H5Tset_size(t.get(), H5T_VARIABLE), "cannot make a variable-length string type for ", where);
  IRIS_H5(H5Tset_cset(t.get(), H5T_CSET_UTF8), "cannot set UTF-8 for ", where);
  return t;
}

Handle make_space(bool scalar, size_t n, const std::string& where) {
  if (scalar)
    return Handle(IRIS_H5(H5Screate(H5S_SCALAR), "cannot make a scalar dataspace for ", where), H5Sclose);
  const hsize_t dims[1] = {static_cast<hsize_t>(n)};
  return Handle(IRIS_H5(H5Screate_simple(1, dims, nullptr), "cannot make a dataspace for ", where), H5Sclose);
}

// Creates attribute `name` (replacing an old one) of `type` over `space` and writes `data` as `mem_type`
// (null for an empty list: HDF5 refuses a null buffer even for zero elements).
void write_attr(const Object& obj, const std::string& name, hid_t type, hid_t space, hid_t mem_type,
                const void* data) {
  const std::string what = "attribute '" + name + "' of " + obj.where();
  const htri_t exists = IRIS_H5(H5Aexists(obj.id(), name.c_str()), "cannot look up ", what);
  if (exists > 0) IRIS_H5(H5Adelete(obj.id(), name.c_str()), "cannot replace ", what);
  Handle a(IRIS_H5(H5Acreate2(obj.id(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                   "cannot create ", what, " (file not writable?)"),
           H5Aclose);
  if (data != nullptr) IRIS_H5(H5Awrite(a.get(), mem_type, data), "cannot write ", what);
}

// An opened attribute with its type, class and element count, after checking it exists and is 0-d or 1-d.
struct OpenAttr {
  Handle attr, type, space;
  H5T_class_t cls = H5T_NO_CLASS;
  size_t count = 0;
  std::string what;
};

OpenAttr open_attr(const Object& obj, const std::string& name) {
  OpenAttr a;
  a.what = "attribute '" + name + "' of " + obj.where();
  const htri_t exists = IRIS_H5(H5Aexists(obj.id(), name.c_str()), "cannot look up ", a.what);
  IRIS_CHECK(exists > 0, "hdf5: missing ", a.what);
  a.attr = Handle(IRIS_H5(H5Aopen(obj.id(), name.c_str(), H5P_DEFAULT), "cannot open ", a.what), H5Aclose);
  a.type = Handle(IRIS_H5(H5Aget_type(a.attr.get()), "cannot get the type of ", a.what), H5Tclose);
  a.space = Handle(IRIS_H5(H5Aget_space(a.attr.get()), "cannot get the dataspace of ", a.what), H5Sclose);
  a.cls = IRIS_H5(H5Tget_class(a.type.get()), "cannot get the type class of ", a.what);
  const int rank = IRIS_H5(H5Sget_simple_extent_ndims(a.space.get()), "cannot get the rank of ", a.what);
  IRIS_CHECK(rank <= 1, "hdf5: ", a.what, " has rank ", rank, "; expected a scalar or a list");
  a.count = static_cast<size_t>(
      IRIS_H5(H5Sget_simple_extent_npoints(a.space.get()), "cannot count the elements of ", a.what));
  return a;
}

std::vector<std::string> read_strings(const Object& obj, const std::string& name) {
  OpenAttr a = open_attr(obj, name);
  IRIS_CHECK(a.cls == H5T_STRING, "hdf5: ", a.what, " is not a string (HDF5 class ", static_cast<int>(a.cls),
             ")");
  std::vector<std::string> out;
  if (a.count == 0) return out;
  const htri_t is_vlen = IRIS_H5(H5Tis_variable_str(a.type.get()), "cannot inspect the type of ", a.what);
  if (is_vlen > 0) {
    Handle mem = vlen_string_type(a.what);
    const H5T_cset_t cset = IRIS_H5(H5Tget_cset(a.type.get()), "cannot get the character set of ", a.what);
    IRIS_H5(H5Tset_cset(mem.get(), cset), "cannot set the character set for ", a.what);
    std::vector<char*> ptrs(a.count, nullptr);
    IRIS_H5(H5Aread(a.attr.get(), mem.get(), ptrs.data()), "cannot read ", a.what);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    IRIS_H5(H5Dvlen_reclaim(mem.get(), a.space.get(), H5P_DEFAULT, ptrs.data()), "cannot free strings of ",
            a.what);
    return out;
  }
  // Fixed length: `size` bytes per string, padded with NULs or spaces.
  const size_t size = H5Tget_size(a.type.get());
  IRIS_CHECK(size > 0, "hdf5: ", a.what, " has a zero-size string type");
  std::vector<char> buf(size * a.count);
  IRIS_H5(H5Aread(a.attr.get(), a.type.get(), buf.data()), "cannot read ", a.what);
  const bool space_padded =
      IRIS_H5(H5Tget_strpad(a.type.get()), "cannot get the string padding of ", a.what) == H5T_STR_SPACEPAD;
  for (size_t i = 0; i < a.count; ++i) {
    std::string s(buf.data() + i * size, size);
    s = s.substr(0, s.find('\0'));
    if (space_padded) s.erase(s.find_last_not_of(' ') + 1);
    out.push_back(std::move(s));
  }
  return out;
}

template <class T>
std::vector<T> read_numbers(const Object& obj, const std::string& name, hid_t mem_type, bool allow_float) {
  OpenAttr a = open_attr(obj, name);
  const bool ok = a.cls == H5T_INTEGER || (allow_float && a.cls == H5T_FLOAT);
  IRIS_CHECK(ok, "hdf5: ", a.what, " is not ", allow_float ? "a number" : "an integer", " (HDF5 class ",
             static_cast<int>(a.cls), ")");
  std::vector<T> out(a.count);
  if (a.count > 0) IRIS_H5(H5Aread(a.attr.get(), mem_type, out.data()), "cannot read ", a.what);
  return out;
}

}  // namespace

bool Object::has_attr(const std::string& name) const {
  Guard g;
  return IRIS_H5(H5Aexists(id(), name.c_str()), "cannot look up attribute '", name, "' of ", where()) > 0;
}

namespace {
herr_t collect_attr(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> Object::attr_names() const {
  Guard g;
  std::vector<std::string> names;
  hsize_t idx = 0;
  IRIS_H5(H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &names),
          "cannot list the attributes of ", where());
  std::sort(names.begin(), names.end());
  return names;
}

void Object::set_string_attr(const std::string& name, const std::string& value) {
  Guard g;
  Handle type = vlen_string_type(where());
  Handle space = make_space(true, 1, where());
  const char* p = value.c_str();
  write_attr(*this, name, type.get(), space.get(), type.get(), &p);
}

void Object::set_strings_attr(const std::string& name, const std::vector<std::string>& values) {
  Guard g;
  Handle type = vlen_string_type(where());
  Handle space = make_space(false, values.size(), where());
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  write_attr(*this, name, type.get(), space.get(), type.get(), ptrs.empty() ? nullptr : ptrs.data());
}

void Object::set_int_attr(const std::string& name, int64_t value) {
  Guard g;
  Handle space = make_space(true, 1, where());
  write_attr(*this, name, H5T_STD_I64LE, space.get(), H5T_NATIVE_INT64, &value);
}

void Object::set_ints_attr(const std::string& name, const std::vector<int64_t>& values) {
  Guard g;
  Handle space = make_space(false, values.size(), where());
  write_attr(*this, name, H5T_STD_I64LE, space.get(), H5T_NATIVE_INT64,
             values.empty() ? nullptr : values.data());
}

void Object::set_double_attr(const std::string& name, double value) {
  Guard g;
  Handle space = make_space(true, 1, where());
  write_attr(*this, name, H5T_IEEE_F64LE, space.get(), H5T_NATIVE_DOUBLE, &value);
}

std::string Object::string_attr(const std::string& name) const {
  Guard g;
  auto v = read_strings(*this, name);
  IRIS_CHECK(v.size() == 1, "hdf5: attribute '", name, "' of ", where(), " holds ", v.size(),
             " strings; expected one");
  return v[0];
}

std::vector<std::string> Object::strings_attr(const std::string& name) const {
  Guard g;
  return read_strings(*this, name);
}

int64_t Object::int_attr(const std::string& name) const {
  Guard g;
  auto v = read_numbers<int64_t>(*this, name, H5T_NATIVE_INT64, false);
  IRIS_CHECK(v.size() == 1, "hdf5: attribute '", name, "' of ", where(), " holds ", v.size(),
             " integers; expected one");
  return v[0];
}

std::vector<int64_t> Object::ints_attr(const std::string& name) const {
  Guard g;
  return read_numbers<int64_t>(*this, name, H5T_NATIVE_INT64, false);
}

double Object::double_attr(const std::string& name) const {
  Guard g;
  auto v = read_numbers<double>(*this, name, H5T_NATIVE_DOUBLE, true);
  IRIS_CHECK(v.size() == 1, "hdf5: attribute '", name, "' of ", where(), " holds ", v.size(),
             " numbers; expected one");
  return v[0];
}

}  // namespace iris::h5
