// Image files (PNG exact, JPEG close), bad files, colour conversion, image <-> tensor conversions, and grids.
#include <zlib.h>

#include <cmath>

#include "data/grid.h"
#include "data/image.h"
#include "data/resize.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;

namespace {
// A smooth image (JPEG's favourite kind) for lossy round trips.
Image smooth_image(int h, int w, int c) {
  Image im(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch)
        im.at(y, x, ch) = static_cast<uint8_t>(128 + 100 * std::sin(0.15 * x + 0.1 * y + ch));
  return im;
}

double mean_abs_diff(const Image& a, const Image& b) {
  REQUIRE(a.pixels.size() == b.pixels.size());
  double s = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) s += std::abs(a.pixels[i] - b.pixels[i]);
  return s / static_cast<double>(a.pixels.size());
}
}  // namespace

TEST_CASE("PNG round trips grey and RGB images exactly") {
  TempDir dir("png");
  for (int c : {1, 3}) {
    const Image im = pattern_image(13, 21, c, c);
    const std::string path = dir.file("im" + std::to_string(c) + ".png");
    write_png(path, im);
    CHECK(read_png(path) == im);
    CHECK(read_image(path) == im);  // detected by signature
  }
}

TEST_CASE("JPEG round trips close to the original") {
  TempDir dir("jpeg");
  for (int c : {1, 3}) {
    const Image im = smooth_image(32, 48, c);
    const std::string path = dir.file("im.jpg");
    write_image(path, im);  // by extension, quality 95
    const Image back = read_jpeg(path);
    REQUIRE(back.height == 32);
    REQUIRE(back.width == 48);
    REQUIRE(back.channels == c);
    CHECK(mean_abs_diff(back, im) < 2.0);
    CHECK(read_image(path) == back);
    // Lower quality costs accuracy: a check that the comparison can fail.
    write_jpeg(path, im, 5);
    CHECK(mean_abs_diff(read_jpeg(path), im) > mean_abs_diff(back, im));
  }
}

TEST_CASE("bad image files give errors naming the file") {
  TempDir dir("badimg");
  const std::string png = dir.file("a.png"), jpg = dir.file("a.jpg");
  write_png(png, pattern_image(40, 40, 3, 0));
  write_jpeg(jpg, smooth_image(40, 40, 3));
  auto bytes = read_bytes(png);
  bytes.resize(bytes.size() / 2);
  write_bytes(dir.file("cut.png"), bytes);
  check_throws_with([&] { (void)read_png(dir.file("cut.png")); }, {"cut.png"});
  bytes = read_bytes(jpg);
  bytes.resize(bytes.size() / 2);
  write_bytes(dir.file("cut.jpg"), bytes);
  check_throws_with([&] { (void)read_jpeg(dir.file("cut.jpg")); }, {"cut.jpg"});
  write_bytes(dir.file("junk.png"), std::vector<char>(64, 'z'));
  check_throws_with([&] { (void)read_png(dir.file("junk.png")); }, {"junk.png"});
  check_throws_with([&] { (void)read_jpeg(dir.file("junk.png")); }, {"junk.png"});
  check_throws_with([&] { (void)read_image(dir.file("junk.png")); }, {"junk.png", "neither PNG nor JPEG"});
  check_throws_with([&] { (void)read_image(dir.file("missing.png")); }, {"missing.png"});
  check_throws_with([&] { write_png(dir.file("no/such/dir/x.png"), Image(2, 2, 1)); }, {"x.png"});
  check_throws_with([&] { write_image(dir.file("x.bmp"), Image(2, 2, 1)); }, {"x.bmp", "extension"});
  check_throws_with([&] { write_png(dir.file("y.png"), Image(2, 2, 2)); }, {"y.png", "2 channels"});
  // A valid header claiming 100000 x 100000 RGB pixels is refused before any allocation.
  std::string huge = "\x89PNG\r\n\x1a\n";
  auto chunk = [&huge](const std::string& type_and_data) {
    const auto n = static_cast<uint32_t>(type_and_data.size() - 4);
    const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(type_and_data.data()),
                            static_cast<uInt>(type_and_data.size()));
    for (int s = 24; s >= 0; s -= 8) huge += static_cast<char>((n >> s) & 0xFF);
    huge += type_and_data;
    for (int s = 24; s >= 0; s -= 8) huge += static_cast<char>((crc >> s) & 0xFF);
  };
  chunk(std::string("IHDR\0\1\x86\xA0\0\1\x86\xA0\x08\x02\0\0\0", 17));
  chunk("IDAT");
  chunk("IEND");
  write_bytes(dir.file("huge.png"), std::vector<char>(huge.begin(), huge.end()));
  check_throws_with([&] { (void)read_png(dir.file("huge.png")); },
                    {"huge.png", "100000x100000", "over the limit of 100,000,000"});
  check_throws_with([&] { (void)read_image(dir.file("huge.png")); }, {"huge.png", "over the limit"});
}

TEST_CASE("the pixel limit is checked against PNG and JPEG headers and can be chosen") {
  TempDir dir("img-limit");
  const std::string png = dir.file("a.png"), jpg = dir.file("a.jpg");
  write_png(png, pattern_image(40, 30, 3, 0));
  write_jpeg(jpg, smooth_image(40, 30, 3));
  for (const std::string& f : {png, jpg}) {
    CAPTURE(f);
    check_throws_with([&] { (void)read_image(f, 1199); }, {f, "30x40 = 1,200 pixels", "limit of 1,199"});
    CHECK(read_image(f, 1200).width == 30);
  }
}

TEST_CASE("grey and RGB conversions") {
  Image rgb(1, 2, 3);
  rgb.pixels = {255, 0, 0, 10, 200, 30};
  const Image g = to_gray(rgb);
  CHECK(g.pixels == std::vector<uint8_t>{76, 124});  // 0.299*255 = 76.2; 2.99 + 117.4 + 3.42 = 123.8
  const Image back = to_rgb(g);
  CHECK(back.pixels == std::vector<uint8_t>{76, 76, 76, 124, 124, 124});
  CHECK(to_gray(g) == g);
  CHECK(to_channels(g, 3) == back);
}

TEST_CASE("uint8 <-> float [-1, 1] conversions round, clamp and round-trip exactly") {
  std::vector<uint8_t> all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  const Tensor u8 = Tensor::from_vector(all, {1, 16, 16, 1});
  const Tensor f = u8_to_float(u8);
  CHECK(f.dtype() == DType::f32);
  const auto fv = f.to_vector<float>();
  CHECK(fv[0] == -1.0f);
  CHECK(fv[255] == 1.0f);
  CHECK(float_to_u8(f).to_vector<uint8_t>() == all);
  CHECK(float_to_u8(u8_to_float(u8, DType::f64)).to_vector<uint8_t>() == all);
  // Rounding to nearest, clamping, NaN -> 0.
  const std::vector<float> x = {10.4f / 127.5f - 1, 10.6f / 127.5f - 1, 1.5f, -2.0f, NAN, 0.0f};
  CHECK(float_to_u8(Tensor::from_vector(x, {6})).to_vector<uint8_t>() ==
        std::vector<uint8_t>{10, 11, 255, 0, 0, 128});
  // Images <-> tensors.
  const std::vector<Image> ims = {pattern_image(3, 5, 3, 1), pattern_image(3, 5, 3, 2)};
  const Tensor t = images_to_tensor(ims);
  CHECK(t.shape() == Shape{2, 3, 5, 3});
  CHECK(tensor_to_images(t) == ims);
  CHECK(tensor_to_images(t.select(0, 1))[0] == ims[1]);
  check_throws_with(
      [&] {
        (void)stack_images({ims[0], pattern_image(3, 4, 3, 0)});
      },
      {"stack_images", "3x4x3"});
  check_throws_with([&] { (void)u8_to_float(f); }, {"u8_to_float", "f32"});
}

TEST_CASE("grid layout, nearest upsizing of small images and captions") {
  const Image truth = pattern_image(28, 28, 1, 3);
  const Image low = resize(truth, 7, 7, Filter::area);
  const Image mid = resize(truth, 14, 14, Filter::area);
  const std::vector<std::vector<Image>> rows = {{low, mid, truth}, {low, truth, mid}};
  const Image g = make_grid(rows, {"low-res", "SR3", "truth"}, {"#0", "#1"});
  // Scale 1 (cells < 64 px), padding 4. Columns: "low-res" is 7*6-1 = 41 px wide, "SR3" 17 -> 28 (cell),
  // "truth" 29. Row titles: "#0" 11 px. Width 4 + (11+4) + (41+4) + (28+4) + (29+4) = 129;
  // height 4 + (7+4) + 2 * (28+4) = 79.
  CHECK(g.width == 129);
  CHECK(g.height == 79);
  CHECK(g.channels == 3);
  // Cell (0, 0): x = 4 + 15 + (41 - 28) / 2 = 25, y = 4 + 11 = 15; the 7x7 image upsized 4x.
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      CHECK(g.at(15 + y, 25 + x, 0) == low.at(y / 4, x / 4));
      CHECK(g.at(15 + y, 25 + x, 2) == low.at(y / 4, x / 4));
    }
  // Cell (1, 2): x = 4 + 15 + 45 + 32 + (29 - 28) / 2 = 96, y = 15 + 32 = 47; the 14x14 image upsized 2x.
  CHECK(g.at(47 + 27, 96 + 27, 1) == mid.at(13, 13));
  CHECK(g.at(47 + 5, 96 + 8, 1) == mid.at(2, 4));
  // Captions: dark pixels in the title band, only background in the corner.
  int dark = 0;
  for (int y = 4; y < 11; ++y)
    for (int x = 0; x < g.width; ++x) dark += g.at(y, x, 0) == 0;
  CHECK(dark > 40);
  CHECK(g.at(0, 0, 0) == 255);
  CHECK(g.at(g.height - 1, g.width - 1, 1) == 255);
  TempDir dir("grid");
  write_grid(dir.file("grid.png"), rows, {"low-res", "SR3", "truth"}, {"#0", "#1"});
  CHECK(read_png(dir.file("grid.png")) == g);
  check_throws_with([&] { (void)make_grid(rows, {"a", "b"}); }, {"make_grid", "2 column titles"});
  check_throws_with([&] { (void)make_grid({{low}, {low, low}}, {}); }, {"make_grid", "row 1"});
}

TEST_CASE("the bitmap font draws glyphs at any scale") {
  CHECK(text_width("AB", 2) == 22);
  CHECK(text_width("", 3) == 0);
  for (char ch : std::string("0123456789abcdefghijklmnopqrstuvwxyz|-_.:/()#+=%"))
    CHECK_MESSAGE(font_has_glyph(ch), "no glyph for '", ch, "'");
  CHECK_FALSE(font_has_glyph('@'));
  const uint8_t black[3] = {0, 0, 0};
  Image im(14, 10, 1, 255);
  draw_text(im, 0, 0, "-", 2, black);  // the dash is glyph row 3: pixel rows 6 and 7, columns 0..9
  for (int y = 0; y < 14; ++y)
    for (int x = 0; x < 10; ++x) CHECK(im.at(y, x) == ((y == 6 || y == 7) ? 0 : 255));
  Image small(3, 3, 3, 255);
  draw_text(small, -4, -4, "@@@", 1,
            black);  // clipped; an unknown character is a box whose right edge lands on x = 0
  CHECK(small.at(0, 0, 0) == 0);
  CHECK(small.at(0, 1, 0) == 255);  // the gap between characters
}
