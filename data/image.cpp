// Image files (libpng's simplified API, libjpeg) and image <-> tensor conversions.
#include "data/image.h"

#include <jpeglib.h>
#include <png.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "framework/core/format.h"

namespace iris::data {

Image::Image(int h, int w, int c, uint8_t fill) : height(h), width(w), channels(c) {
  IRIS_CHECK(h >= 0 && w >= 0 && c >= 0, "Image: negative size ", h, "x", w, "x", c);
  pixels.assign(static_cast<size_t>(h) * w * c, fill);
}

std::string Image::str() const {
  return std::to_string(height) + "x" + std::to_string(width) + "x" + std::to_string(channels);
}

void check_image(const Image& img, const std::string& what) {
  IRIS_CHECK(img.height > 0 && img.width > 0, what, ": empty image (", img.str(), ")");
  IRIS_CHECK(img.channels == 1 || img.channels == 3, what, ": image has ", img.channels,
             " channels; expected 1 (grey) or 3 (RGB)");
  IRIS_CHECK(img.pixels.size() == static_cast<size_t>(img.height) * img.width * img.channels, what,
             ": image ", img.str(), " holds ", img.pixels.size(), " bytes");
}

namespace {
// Checked against the header, before anything is allocated: a corrupt or hostile header must not make the
// decoder ask for gigabytes. Empty when within the limit.
std::string pixel_limit_error(uint64_t width, uint64_t height, int64_t max_pixels) {
  if (width * height <= static_cast<uint64_t>(std::max<int64_t>(max_pixels, 0))) return "";
  return "claims " + std::to_string(width) + "x" + std::to_string(height) + " = " +
         with_commas(static_cast<int64_t>(width * height)) + " pixels, over the limit of " +
         with_commas(max_pixels) + " (corrupt header? raise the limit with --max-pixels)";
}
}  // namespace

// ---- PNG
// ---------------------------------------------------------------------------------------------------

Image read_png(const std::string& path, int64_t max_pixels) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str())) {
    const std::string msg = png.message;
    png_image_free(&png);
    IRIS_THROW("png: cannot read '", path, "': ", msg);
  }
  png.format = (png.format & PNG_FORMAT_FLAG_COLOR) ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (const std::string why = pixel_limit_error(png.width, png.height, max_pixels); !why.empty()) {
    png_image_free(&png);
    IRIS_THROW("png: '", path, "' ", why);
  }
  Image img;
  img.height = static_cast<int>(png.height);
  img.width = static_cast<int>(png.width);
  img.channels = PNG_IMAGE_SAMPLE_CHANNELS(png.format);
  img.pixels.resize(PNG_IMAGE_SIZE(png));
  const png_color black = {0, 0, 0};
  if (!png_image_finish_read(&png, &black, img.pixels.data(), 0, nullptr)) {
    const std::string msg = png.message;
    png_image_free(&png);
    IRIS_THROW("png: cannot decode '", path, "': ", msg);
  }
  return img;
}

namespace {
// libpng's simplified-API description of an 8-bit grey or RGB image.
png_image png_image_of(const Image& img) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(img.width);
  png.height = static_cast<png_uint_32>(img.height);
  png.format = img.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  return png;
}
}  // namespace

void write_png(const std::string& path, const Image& img) {
  check_image(img, "png: writing '" + path + "'");
  png_image png = png_image_of(img);
  if (!png_image_write_to_file(&png, path.c_str(), 0, img.pixels.data(), 0, nullptr)) {
    const std::string msg = png.message;
    png_image_free(&png);
    IRIS_THROW("png: cannot write '", path, "': ", msg);
  }
}

std::vector<uint8_t> encode_png(const Image& img) {
  check_image(img, "png: encoding");
  png_image png = png_image_of(img);
  // First call: the size; second: the bytes.
  png_alloc_size_t size = 0;
  std::vector<uint8_t> out;
  if (png_image_write_to_memory(&png, nullptr, &size, 0, img.pixels.data(), 0, nullptr)) {
    out.resize(size);
    if (png_image_write_to_memory(&png, out.data(), &size, 0, img.pixels.data(), 0, nullptr)) {
      out.resize(size);
      return out;
    }
  }
  const std::string msg = png.message;
  png_image_free(&png);
  IRIS_THROW("png: cannot encode a ", img.width, "x", img.height, " image: ", msg);
}

// ---- JPEG ----
// libjpeg reports errors by calling error_exit, which must not return: we longjmp back to the caller's setjmp. The
// functions below create every C++ object that lives across setjmp before calling it, so the jump skips no
// destructor.

namespace {
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level -1) are corrupt-data reports such as "Premature end of JPEG file": treat them as errors so
// that a damaged file never silently yields a grey-filled image. Trace messages (level >= 0) are ignored.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_on_error(cinfo);
}

struct FileCloser {
  std::FILE* f = nullptr;
  ~FileCloser() {
    if (f) std::fclose(f);
  }
};
}  // namespace

Image read_jpeg(const std::string& path, int64_t max_pixels) {
  Image img;
  FileCloser file;
  file.f = std::fopen(path.c_str(), "rb");
  IRIS_CHECK(file.f != nullptr, "jpeg: cannot open '", path, "': ", std::strerror(errno));
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    IRIS_THROW("jpeg: cannot read '", path, "': ", err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, file.f);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    IRIS_THROW("jpeg: '", path, "' is a CMYK image; only grey and RGB/YCbCr JPEGs are supported");
  }
  if (const std::string why = pixel_limit_error(cinfo.image_width, cinfo.image_height, max_pixels);
      !why.empty()) {
    jpeg_destroy_decompress(&cinfo);
    IRIS_THROW("jpeg: '", path, "' ", why);
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  img.height = static_cast<int>(cinfo.output_height);
  img.width = static_cast<int>(cinfo.output_width);
  img.channels = cinfo.output_components;
  img.pixels.resize(static_cast<size_t>(img.height) * img.width * img.channels);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * img.width * img.channels;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return img;
}

void write_jpeg(const std::string& path, const Image& img, int quality) {
  check_image(img, "jpeg: writing '" + path + "'");
  IRIS_CHECK(quality >= 1 && quality <= 100, "jpeg: quality ", quality, " for '", path,
             "' is not in [1, 100]");
  FileCloser file;
  file.f = std::fopen(path.c_str(), "wb");
  IRIS_CHECK(file.f != nullptr, "jpeg: cannot create '", path, "': ", std::strerror(errno));
  jpeg_compress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    IRIS_THROW("jpeg: cannot write '", path, "': ", err.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, file.f);
  cinfo.image_width = static_cast<JDIMENSION>(img.width);
  cinfo.image_height = static_cast<JDIMENSION>(img.height);
  cinfo.input_components = img.channels;
  cinfo.in_color_space = img.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    // libjpeg takes non-const rows but only reads them.
    JSAMPROW row = const_cast<uint8_t*>(img.pixels.data()) +
                   static_cast<size_t>(cinfo.next_scanline) * img.width * img.channels;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  IRIS_CHECK(std::fflush(file.f) == 0 && !std::ferror(file.f), "jpeg: error writing '", path, "'");
  const int rc = std::fclose(file.f);
  file.f = nullptr;
  IRIS_CHECK(rc == 0, "jpeg: error closing '", path, "'");
}

// ---- by type
// -------------------------------------------------------------------------------------------------

Image read_image(const std::string& path, int64_t max_pixels) {
  std::ifstream in(path, std::ios::binary);
  IRIS_CHECK(in.good(), "cannot open image '", path, "'");
  unsigned char sig[8] = {0};
  in.read(reinterpret_cast<char*>(sig), 8);
  const auto got = in.gcount();
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (got == 8 && std::memcmp(sig, png_sig, 8) == 0) return read_png(path, max_pixels);
  if (got >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF) return read_jpeg(path, max_pixels);
  IRIS_THROW("image '", path, "' is neither PNG nor JPEG (unknown signature)");
}

void write_image(const std::string& path, const Image& img) {
  std::string ext =
      path.substr(path.find_last_of('.') == std::string::npos ? path.size() : path.find_last_of('.'));
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (ext == ".png") return write_png(path, img);
  if (ext == ".jpg" || ext == ".jpeg") return write_jpeg(path, img);
  IRIS_THROW("cannot write image '", path, "': unknown extension (use .png, .jpg or .jpeg)");
}

// ---- colour
// --------------------------------------------------------------------------------------------------

Image to_rgb(const Image& img) {
  check_image(img, "to_rgb");
  if (img.channels == 3) return img;
  Image out(img.height, img.width, 3);
  for (size_t i = 0; i < img.pixels.size(); ++i)
    out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = img.pixels[i];
  return out;
}

Image to_gray(const Image& img) {
  check_image(img, "to_gray");
  if (img.channels == 1) return img;
  Image out(img.height, img.width, 1);
  for (size_t i = 0; i < out.pixels.size(); ++i) {
    const double y =
        0.299 * img.pixels[3 * i] + 0.587 * img.pixels[3 * i + 1] + 0.114 * img.pixels[3 * i + 2];
    out.pixels[i] = static_cast<uint8_t>(std::min(255.0, std::floor(y + 0.5)));
  }
  return out;
}

Image to_channels(const Image& img, int channels) {
  IRIS_CHECK(channels == 1 || channels == 3, "to_channels: ", channels,
             " channels requested; expected 1 or 3");
  return channels == 3 ? to_rgb(img) : to_gray(img);
}

// ---- tensors
// -------------------------------------------------------------------------------------------------

Tensor stack_images(const std::vector<Image>& images) {
  IRIS_CHECK(!images.empty(), "stack_images: no images");
  const Image& first = images[0];
  check_image(first, "stack_images: image 0");
  Tensor out = Tensor::empty({static_cast<int64_t>(images.size()), first.height, first.width, first.channels},
                             DType::u8);
  auto* dst = out.data<uint8_t>();
  for (size_t n = 0; n < images.size(); ++n) {
    const Image& im = images[n];
    check_image(im, "stack_images: image " + std::to_string(n));
    IRIS_CHECK(im.height == first.height && im.width == first.width && im.channels == first.channels,
               "stack_images: image ", n, " is ", im.str(), " but image 0 is ", first.str());
    std::memcpy(dst + n * first.size(), im.pixels.data(), first.size());
  }
  return out;
}

std::vector<Image> unstack_images(const Tensor& u8) {
  check_defined(u8, "unstack_images");
  IRIS_CHECK(u8.dtype() == DType::u8 && u8.dim() == 4, "unstack_images: expected u8 [N, H, W, C], got ",
             u8.summary());
  const Tensor host = u8.cpu().contiguous();
  const int h = static_cast<int>(host.size(1)), w = static_cast<int>(host.size(2)),
            c = static_cast<int>(host.size(3));
  IRIS_CHECK(c == 1 || c == 3, "unstack_images: ", c, " channels in ", u8.summary(), "; expected 1 or 3");
  std::vector<Image> out;
  const auto* src = host.data<uint8_t>();
  for (int64_t n = 0; n < host.size(0); ++n) {
    Image im(h, w, c);
    std::memcpy(im.pixels.data(), src + n * im.size(), im.size());
    out.push_back(std::move(im));
  }
  return out;
}

void u8_to_float(const uint8_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) * (1.0f / 127.5f) - 1.0f;
}

namespace {
template <class T>
uint8_t to_byte(T x) {
  if (!(x == x)) return 0;  // NaN
  const T v = std::floor((x + T(1)) * T(127.5) + T(0.5));
  return static_cast<uint8_t>(v < T(0) ? T(0) : v > T(255) ? T(255) : v);
}
}  // namespace

void float_to_u8(const float* src, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = to_byte(src[i]);
}

Tensor u8_to_float(const Tensor& u8, DType dtype) {
  check_defined(u8, "u8_to_float");
  IRIS_CHECK(u8.dtype() == DType::u8, "u8_to_float: expected a u8 tensor, got ", u8.summary());
  IRIS_CHECK(dtype == DType::f32 || dtype == DType::f64, "u8_to_float: output dtype must be f32 or f64, got ",
             dtype_name(dtype));
  const Tensor host = u8.cpu().contiguous();
  Tensor out = Tensor::empty(host.shape(), dtype);
  const auto* src = host.data<uint8_t>();
  const size_t n = static_cast<size_t>(host.numel());
  if (dtype == DType::f32) {
    u8_to_float(src, out.data<float>(), n);
  } else {
    auto* dst = out.data<double>();
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<double>(src[i]) / 127.5 - 1.0;
  }
  return out.to(u8.device());
}

Tensor float_to_u8(const Tensor& x) {
  check_defined(x, "float_to_u8");
  check_floating(x, "float_to_u8");
  const Tensor host = x.detach().cpu().contiguous();
  Tensor out = Tensor::empty(host.shape(), DType::u8);
  auto* dst = out.data<uint8_t>();
  const size_t n = static_cast<size_t>(host.numel());
  if (host.dtype() == DType::f64) {
    const auto* src = host.data<double>();
    for (size_t i = 0; i < n; ++i) dst[i] = to_byte(src[i]);
  } else {
    const Tensor f = host.to(DType::f32);
    float_to_u8(f.data<float>(), dst, n);
  }
  return out.to(x.device());
}

Tensor images_to_tensor(const std::vector<Image>& images) {
  return u8_to_float(stack_images(images));
}

std::vector<Image> tensor_to_images(const Tensor& x) {
  check_defined(x, "tensor_to_images");
  IRIS_CHECK(x.dim() == 4 || x.dim() == 3, "tensor_to_images: expected [N, H, W, C] or [H, W, C], got ",
             x.summary());
  return unstack_images(float_to_u8(x.dim() == 3 ? x.unsqueeze(0) : x));
}

}  // namespace iris::data
