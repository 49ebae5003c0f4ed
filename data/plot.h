// Line plots as RGB images (written as PNG), drawn with grid.h's 5x7 font: a score against a setting, one
// line per series, for `iris sweep`'s plots.
//
// The x axis is categorical: the values of the setting (x_ticks) at evenly spaced positions 0..m-1, in the
// order given (sampler names, step counts and augmentation levels all read well that way). The y axis spans
// the finite values with 1-2-5 ticks. Layout, top to bottom: title, y label, the plot area (with the legend
// to its right when there is more than one series), tick labels, x label.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "data/image.h"

namespace iris::data {

struct PlotSeries {
  std::string label;      // legend entry
  std::vector<double> y;  // one value per x tick; NaN: no point there (the line breaks)
};

struct PlotOptions {
  std::string title, x_label, y_label;
  std::vector<std::string> x_ticks;  // the categories along x; every series has one value per tick
  int width = 720, height = 480;     // the image, in pixels
  int text_scale = 2;                // font scale: 2 draws 10x14 pixel characters
  // A point to mark (a ring and "best"): series index and x index, or -1 for none.
  int best_series = -1, best_x = -1;
  // A horizontal reference line (a real-data floor, say): dashed grey across the plot area, its label above
  // its right end; NaN: none. The y axis spans it too.
  double reference = std::numeric_limits<double>::quiet_NaN();
  std::string reference_label;
};

// Where the plot area lies and how values map into it (pixels, y down). Computed from the data and options
// alone, so tests can find a point's pixel.
struct PlotFrame {
  int left = 0, top = 0, right = 0, bottom = 0;  // the plot area, inclusive
  double y_min = 0, y_max = 1;                   // the value range the area spans
  int ticks = 1;                                 // number of x categories
  int x_pixel(int i) const;
  int y_pixel(double v) const;
};

// Throws iris::Error unless there are ticks, series and one value per tick in every series, and the image is
// large enough for the text.
PlotFrame plot_frame(const std::vector<PlotSeries>& series, const PlotOptions& options);
Image line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options);
void write_line_plot(const std::string& path, const std::vector<PlotSeries>& series,
                     const PlotOptions& options);

// The colour of series i (RGB): eight distinct colours, then repeating.
const uint8_t* series_color(size_t i);

}  // namespace iris::data
