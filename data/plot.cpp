#include "data/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/grid.h"
#include "framework/core/error.h"

namespace iris::data {

namespace {

const uint8_t kBlack[3] = {0, 0, 0};
const uint8_t kGridGrey[3] = {225, 225, 225};
const uint8_t kPalette[8][3] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};

// The y axis: [lo, hi] in steps of `step` (1, 2 or 5 times a power of ten), labels with `decimals` digits.
struct YAxis {
  double lo = 0, hi = 1, step = 0.25;
  int decimals = 2;
  std::vector<std::string> labels() const {
    std::vector<std::string> out;
    const int n = static_cast<int>(std::lround((hi - lo) / step));
    for (int k = 0; k <= n; ++k) {
      char buf[64];
      double v = lo + k * step;
      if (std::fabs(v) < step * 1e-6) v = 0;  // no "-0.00"
      std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
      out.push_back(buf);
    }
    return out;
  }
};

YAxis y_axis(const std::vector<PlotSeries>& series, double reference) {
  double lo = INFINITY, hi = -INFINITY;
  auto include = [&](double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  for (const auto& s : series)
    for (double v : s.y) include(v);
  include(reference);
  if (!std::isfinite(lo)) lo = 0, hi = 1;  // nothing to show: an empty frame
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double d = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const double raw = (hi - lo) / 4;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  YAxis a;
  a.step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  a.lo = std::floor(lo / a.step + 1e-9) * a.step;
  a.hi = std::ceil(hi / a.step - 1e-9) * a.step;
  a.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(a.step) + 1e-9)));
  return a;
}

int max_text_width(const std::vector<std::string>& texts, int scale) {
  int w = 0;
  for (const auto& t : texts) w = std::max(w, text_width(t, scale));
  return w;
}

bool has_legend(const std::vector<PlotSeries>& series) {
  return series.size() > 1;
}

void put(Image& img, int x, int y, const uint8_t rgb[3]) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  for (int c = 0; c < 3; ++c) img.at(y, x, c) = rgb[c];
}

// A filled square of side 2 r + 1 centred on (x, y).
void square(Image& img, int x, int y, int r, const uint8_t rgb[3]) {
  for (int dy = -r; dy <= r; ++dy)
    for (int dx = -r; dx <= r; ++dx) put(img, x + dx, y + dy, rgb);
}

// A line `thickness` pixels wide (a square brush moved along Bresenham's path).
void line(Image& img, int x0, int y0, int x1, int y1, int thickness, const uint8_t rgb[3]) {
  const int r = thickness / 2;
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    square(img, x0, y0, r, rgb);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

void ring(Image& img, int cx, int cy, int radius, int thickness, const uint8_t rgb[3]) {
  for (int y = cy - radius - thickness; y <= cy + radius + thickness; ++y)
    for (int x = cx - radius - thickness; x <= cx + radius + thickness; ++x) {
      const double d = std::hypot(x - cx, y - cy);
      if (d >= radius && d < radius + thickness) put(img, x, y, rgb);
    }
}

}  // namespace

const uint8_t* series_color(size_t i) {
  return kPalette[i % 8];
}

int PlotFrame::x_pixel(int i) const {
  // Categories centred in equal slots: one category sits in the middle.
  return left + static_cast<int>(std::lround((i + 0.5) * (right - left) / ticks));
}

int PlotFrame::y_pixel(double v) const {
  return bottom - static_cast<int>(std::lround((v - y_min) / (y_max - y_min) * (bottom - top)));
}

PlotFrame plot_frame(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  IRIS_CHECK(!o.x_ticks.empty(), "line_plot: no x ticks");
  IRIS_CHECK(!series.empty(), "line_plot: no series");
  IRIS_CHECK(o.text_scale >= 1, "line_plot: text scale must be at least 1, got ", o.text_scale);
  for (const auto& s : series)
    IRIS_CHECK(s.y.size() == o.x_ticks.size(), "line_plot: series '", s.label, "' has ", s.y.size(),
               " values for ", o.x_ticks.size(), " x ticks");
  const int s = o.text_scale, ch = 7 * s, pad = 4 * s, tick = 2 * s;
  const YAxis axis = y_axis(series, o.reference);
  PlotFrame f;
  f.y_min = axis.lo;
  f.y_max = axis.hi;
  f.ticks = static_cast<int>(o.x_ticks.size());
  // Half a line more above the area: its top tick label is centred on its top edge.
  f.top = pad + (o.title.empty() ? 0 : ch + pad) + (o.y_label.empty() ? 0 : ch + pad) + ch / 2 + pad;
  f.left = pad + max_text_width(axis.labels(), s) + pad + tick;
  int legend = 0;
  if (has_legend(series)) {
    std::vector<std::string> labels;
    for (const auto& e : series) labels.push_back(e.label);
    legend = pad + 6 * ch + pad + max_text_width(labels, s) + pad;
  }
  f.right = o.width - 1 - legend - pad;
  f.bottom = o.height - 1 - pad - (o.x_label.empty() ? 0 : ch + pad) - ch - pad - tick;
  IRIS_CHECK(f.right - f.left >= 8 * f.ticks && f.bottom - f.top >= 4 * ch, "line_plot: a ", o.width, "x",
             o.height, " image is too small for this plot's text (", f.ticks, " x ticks)");
  return f;
}

Image line_plot(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  const PlotFrame f = plot_frame(series, o);
  const YAxis axis = y_axis(series, o.reference);
  const int s = o.text_scale, ch = 7 * s, pad = 4 * s, tick = 2 * s;
  Image img(o.height, o.width, 3, 255);

  int y_text = pad;
  if (!o.title.empty()) {
    draw_text(img, (o.width - text_width(o.title, s)) / 2, y_text, o.title, s, kBlack);
    y_text += ch + pad;
  }
  if (!o.y_label.empty()) draw_text(img, pad, y_text, o.y_label, s, kBlack);

  // Horizontal grid lines with their values, then the axes over them.
  const std::vector<std::string> labels = axis.labels();
  for (size_t k = 0; k < labels.size(); ++k) {
    const int y = f.y_pixel(axis.lo + static_cast<double>(k) * axis.step);
    line(img, f.left, y, f.right, y, 1, kGridGrey);
    line(img, f.left - tick, y, f.left, y, 1, kBlack);
    draw_text(img, f.left - tick - pad / 2 - text_width(labels[k], s), y - ch / 2, labels[k], s, kBlack);
  }
  line(img, f.left, f.top, f.left, f.bottom, 1, kBlack);
  line(img, f.left, f.bottom, f.right, f.bottom, 1, kBlack);
  for (int i = 0; i < f.ticks; ++i) {
    const int x = f.x_pixel(i);
    line(img, x, f.bottom, x, f.bottom + tick, 1, kBlack);
    const std::string& t = o.x_ticks[static_cast<size_t>(i)];
    draw_text(img, x - text_width(t, s) / 2, f.bottom + tick + pad / 2, t, s, kBlack);
  }
  if (!o.x_label.empty())
    draw_text(img, f.left + (f.right - f.left - text_width(o.x_label, s)) / 2, o.height - pad - ch, o.x_label,
              s, kBlack);

  const uint8_t white[3] = {255, 255, 255};
  if (std::isfinite(o.reference)) {
    const uint8_t grey[3] = {110, 110, 110};
    const int y = f.y_pixel(o.reference);
    for (int x = f.left + 1; x <= f.right; x += 7 * s)
      line(img, x, y, std::min(f.right, x + 4 * s), y, s, grey);
    const int tw = text_width(o.reference_label, s);
    const int above = y - s - ch - pad / 2;  // the label above the line, or below it at the area's top
    const int tx = f.right - pad / 2 - tw, ty = above >= f.top ? above : y + s + pad / 2;
    for (int yy = ty - s; yy < ty + ch + s; ++yy) line(img, tx - s, yy, tx + tw + s, yy, 1, white);
    draw_text(img, tx, ty, o.reference_label, s, grey);
  }
  // The series: lines between neighbouring finite values, a square on each value.
  for (size_t k = 0; k < series.size(); ++k) {
    const uint8_t* c = series_color(k);
    const std::vector<double>& y = series[k].y;
    for (int i = 0; i + 1 < f.ticks; ++i)
      if (std::isfinite(y[i]) && std::isfinite(y[i + 1]))
        line(img, f.x_pixel(i), f.y_pixel(y[i]), f.x_pixel(i + 1), f.y_pixel(y[i + 1]), s, c);
    for (int i = 0; i < f.ticks; ++i)
      if (std::isfinite(y[i])) square(img, f.x_pixel(i), f.y_pixel(y[i]), s + 1, c);
  }
  if (o.best_series >= 0 && o.best_x >= 0 && static_cast<size_t>(o.best_series) < series.size() &&
      o.best_x < f.ticks) {
    const double v = series[static_cast<size_t>(o.best_series)].y[static_cast<size_t>(o.best_x)];
    if (std::isfinite(v)) {
      const int x = f.x_pixel(o.best_x), y = f.y_pixel(v);
      ring(img, x, y, 5 * s, s, kBlack);
      const int tw = text_width("best", s);
      const int tx = x + 6 * s + tw <= f.right ? x + 6 * s : x - 6 * s - tw;  // inside the plot area
      const int ty = y - 6 * s - ch >= f.top ? y - 6 * s - ch : y + 6 * s;
      // A clear patch under the label: readable where a line runs under it.
      for (int yy = ty - s; yy < ty + ch + s; ++yy) line(img, tx - s, yy, tx + tw + s, yy, 1, white);
      draw_text(img, tx, ty, "best", s, kBlack);
    }
  }
  if (has_legend(series)) {
    const int x = f.right + 2 * pad;
    for (size_t k = 0; k < series.size(); ++k) {
      const int y = f.top + static_cast<int>(k) * (ch + pad) + ch / 2;
      line(img, x, y, x + 5 * ch, y, s, series_color(k));
      square(img, x + 5 * ch / 2, y, s + 1, series_color(k));
      draw_text(img, x + 6 * ch, y - ch / 2, series[k].label, s, kBlack);
    }
  }
  return img;
}

void write_line_plot(const std::string& path, const std::vector<PlotSeries>& series,
                     const PlotOptions& options) {
  write_png(path, line_plot(series, options));
}

}  // namespace iris::data
