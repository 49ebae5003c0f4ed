// data/bar_chart.h: bars reach their values in their series' colours, whiskers span their intervals, the
// reference line is drawn, the axis covers everything, and bad input is refused.
#include <doctest/doctest.h>

#include <cmath>

#include "data/bar_chart.h"
#include "data/plot.h"
#include "framework/core/error.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;

namespace {

bool is(const Image& img, int x, int y, const uint8_t* rgb) {
  return img.at(y, x, 0) == rgb[0] && img.at(y, x, 1) == rgb[1] && img.at(y, x, 2) == rgb[2];
}

std::vector<Bar> bars() {
  return {
      {"regression", "n=100", 15.3, 11.0, 19.5}, {"sr3", "n=100", 47.4, 42.0, 53.0}, {"none", "n=0", NAN}};
}

BarChartOptions options() {
  BarChartOptions o;
  o.title = "Fool rate";
  o.y_label = "%";
  o.value_suffix = "%";
  o.reference = 50;
  o.reference_label = "50%";
  return o;
}

}  // namespace

TEST_CASE("bar_chart: each bar filled to its value in its colour, whiskers at its interval") {
  const auto b = bars();
  const BarChartOptions o = options();
  const Image img = bar_chart(b, o);
  const BarFrame f = bar_frame(b, o);
  CHECK(img.width == 720);
  CHECK(img.height == 480);
  CHECK(f.y_min == 0);
  CHECK(f.y_max >= 53.0);  // the highest whisker fits
  CHECK(f.y_pixel(47.4) < f.y_pixel(15.3));
  for (int i = 0; i < 2; ++i) {
    const int x = f.x_center(i) - f.half_width() / 2;  // inside the bar, off its whisker
    INFO("bar ", i);
    CHECK(is(img, x, f.bottom - 2, series_color(static_cast<size_t>(i))));
    CHECK(is(img, x, f.y_pixel(b[static_cast<size_t>(i)].value) + 2, series_color(static_cast<size_t>(i))));
    CHECK_FALSE(
        is(img, x, f.y_pixel(b[static_cast<size_t>(i)].value) - 3, series_color(static_cast<size_t>(i))));
    const uint8_t black[3] = {0, 0, 0};
    CHECK(is(img, f.x_center(i), f.y_pixel(b[static_cast<size_t>(i)].hi), black));
    CHECK(is(img, f.x_center(i), f.y_pixel(b[static_cast<size_t>(i)].lo), black));
  }
  // No value: no bar.
  CHECK_FALSE(is(img, f.x_center(2) - f.half_width() / 2, f.bottom - 2, series_color(2)));
  test::TempDir dir("bar-chart");
  write_bar_chart(dir.file("c.png"), b, o);
  CHECK(read_png(dir.file("c.png")) == img);
}

TEST_CASE("bar_chart refuses no bars and an image too small for its text") {
  CHECK_THROWS_AS(bar_chart({}, options()), Error);
  BarChartOptions o = options();
  o.width = 60;
  CHECK_THROWS_AS(bar_chart(bars(), o), Error);
}
