// data/plot.h: line plots land where the frame says, in their series' colours, with the best point ringed,
// gaps at NaN, a legend only for several series, a PNG on disk; bad input is refused.
#include <doctest/doctest.h>

#include <cmath>

#include "data/plot.h"
#include "framework/core/error.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;

namespace {

bool has_color(const Image& img, int x, int y, const uint8_t* rgb) {
  return img.at(y, x, 0) == rgb[0] && img.at(y, x, 1) == rgb[1] && img.at(y, x, 2) == rgb[2];
}

// Pixels of colour `rgb` in the rectangle [x0, x1] x [y0, y1].
int count_color(const Image& img, int x0, int y0, int x1, int y1, const uint8_t* rgb) {
  int n = 0;
  for (int y = std::max(0, y0); y <= std::min(img.height - 1, y1); ++y)
    for (int x = std::max(0, x0); x <= std::min(img.width - 1, x1); ++x) n += has_color(img, x, y, rgb);
  return n;
}

PlotOptions options() {
  PlotOptions o;
  o.title = "PSNR (higher is better)";
  o.x_label = "aug_level";
  o.y_label = "PSNR (dB)";
  o.x_ticks = {"0", "0.1", "0.3"};
  return o;
}

}  // namespace

TEST_CASE("line_plot draws each series' points at the frame's pixels, in its colour") {
  const std::vector<PlotSeries> series = {{"truncated=0", {20.0, 22.5, 21.0}},
                                          {"truncated=1", {19.0, 23.0, 24.0}}};
  PlotOptions o = options();
  o.best_series = 1;
  o.best_x = 2;
  const Image img = line_plot(series, o);
  CHECK(img.width == 720);
  CHECK(img.height == 480);
  CHECK(img.channels == 3);
  const PlotFrame f = plot_frame(series, o);
  CHECK(f.y_min <= 19.0);
  CHECK(f.y_max >= 24.0);
  CHECK(f.left > 0);
  CHECK(f.right < img.width - 1);
  // Categories are evenly spaced, increasing values go up.
  CHECK(f.x_pixel(1) - f.x_pixel(0) == doctest::Approx(f.x_pixel(2) - f.x_pixel(1)).epsilon(0.05));
  CHECK(f.y_pixel(24.0) < f.y_pixel(19.0));
  for (size_t k = 0; k < series.size(); ++k)
    for (int i = 0; i < 3; ++i) {
      const int x = f.x_pixel(i), y = f.y_pixel(series[k].y[static_cast<size_t>(i)]);
      INFO("series ", k, " point ", i);
      // The marker: a filled square in the series colour (the other series may overlap it by a few pixels).
      CHECK(count_color(img, x - 2, y - 2, x + 2, y + 2, series_color(k)) >= 12);
    }
  // The best point is ringed in black around its marker.
  const uint8_t black[3] = {0, 0, 0};
  const int bx = f.x_pixel(2), by = f.y_pixel(24.0);
  CHECK(count_color(img, bx - 14, by - 14, bx + 14, by + 14, black) > 40);
  // Two series: a legend right of the plot area with both colours.
  CHECK(count_color(img, f.right + 1, 0, img.width - 1, img.height - 1, series_color(0)) > 20);
  CHECK(count_color(img, f.right + 1, 0, img.width - 1, img.height - 1, series_color(1)) > 20);
}

TEST_CASE("line_plot breaks lines at NaN, draws no legend for one series and writes a PNG") {
  const std::vector<PlotSeries> series = {{"", {1e-4, NAN, 3e-4}}};
  const PlotOptions o = options();
  const Image img = line_plot(series, o);
  const PlotFrame f = plot_frame(series, o);
  const uint8_t* c = series_color(0);
  CHECK(count_color(img, f.x_pixel(0) - 2, f.y_pixel(1e-4) - 2, f.x_pixel(0) + 2, f.y_pixel(1e-4) + 2, c) >=
        20);
  // Nothing between the two points (the middle one is missing).
  CHECK(count_color(img, f.x_pixel(0) + 6, f.top, f.x_pixel(2) - 6, f.bottom, c) == 0);
  CHECK(count_color(img, f.right + 1, 0, img.width - 1, img.height - 1, c) == 0);
  // A reference line widens the frame to contain it and is drawn dashed in grey across the area.
  PlotOptions with_floor = o;
  with_floor.reference = 0.5e-4;
  with_floor.reference_label = "floor";
  const PlotFrame ff = plot_frame(series, with_floor);
  CHECK(ff.y_min <= 0.5e-4);
  const Image floored = line_plot(series, with_floor);
  const uint8_t grey[3] = {110, 110, 110};
  const int fy = ff.y_pixel(0.5e-4);
  const int dashes = count_color(floored, ff.left + 1, fy, ff.right, fy, grey);
  CHECK(dashes > (ff.right - ff.left) / 3);
  CHECK(dashes < ff.right - ff.left);  // with gaps
  // A constant series still gets a frame that contains it.
  const PlotFrame flat = plot_frame({{"", {5.0, 5.0, 5.0}}}, o);
  CHECK(flat.y_min < 5.0);
  CHECK(flat.y_max > 5.0);

  test::TempDir dir("plot");
  const std::string path = dir.file("psnr.png");
  write_line_plot(path, series, o);
  CHECK(read_png(path) == img);
}

TEST_CASE("line_plot refuses series that do not fit the ticks and images too small for the text") {
  PlotOptions o = options();
  CHECK_THROWS_WITH_AS(line_plot({{"a", {1.0, 2.0}}}, o), doctest::Contains("has 2 values for 3 x ticks"),
                       Error);
  CHECK_THROWS_WITH_AS(line_plot({}, o), doctest::Contains("no series"), Error);
  o.width = 60;
  CHECK_THROWS_WITH_AS(line_plot({{"a", {1.0, 2.0, 3.0}}}, o), doctest::Contains("too small"), Error);
}
