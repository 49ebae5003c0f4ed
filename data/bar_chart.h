// Bar charts with confidence intervals as RGB images (written as PNG), drawn with grid.h's 5x7 font in
// plot.h's colours: one bar per category, its value above it, a whisker for its interval and an optional
// dashed reference line (e.g. SR3's Figure 6: each method's fool rate against the 50% of a perfect fake).
//
// Layout, top to bottom: title, y label, the plot area (y from `y_min` to a 1-2-5 tick at or above the
// highest value, whisker or reference), the category labels, a second line under each (`notes`).
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "data/image.h"

namespace iris::data {

struct Bar {
  std::string label;  // under the bar
  std::string note;   // a second line under it (e.g. "n=120"); may be empty
  double value = 0;   // NaN: no bar (nothing measured); the label is still drawn
  double lo = std::numeric_limits<double>::quiet_NaN(), hi = std::numeric_limits<double>::quiet_NaN();
};

struct BarChartOptions {
  std::string title, y_label;
  std::string value_suffix;  // appended to the value printed above each bar ("%")
  int decimals = 1;          // of the printed values
  int width = 720, height = 480;
  int text_scale = 2;
  double y_min = 0;
  double y_max = std::numeric_limits<double>::quiet_NaN();  // NaN: from the data
  double reference = std::numeric_limits<double>::quiet_NaN();
  std::string reference_label;
};

// The plot area and the value mapping, from the data and options alone (tests find a bar's pixels).
struct BarFrame {
  int left = 0, top = 0, right = 0, bottom = 0;  // inclusive
  double y_min = 0, y_max = 1, step = 0.25;
  int bars = 1;
  int x_center(int i) const;
  int half_width() const;  // of a bar, in pixels
  int y_pixel(double v) const;
};

// Throws iris::Error for no bars or an image too small for the text.
BarFrame bar_frame(const std::vector<Bar>& bars, const BarChartOptions& options);
Image bar_chart(const std::vector<Bar>& bars, const BarChartOptions& options);
void write_bar_chart(const std::string& path, const std::vector<Bar>& bars, const BarChartOptions& options);

}  // namespace iris::data
