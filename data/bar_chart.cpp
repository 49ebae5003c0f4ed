#include "data/bar_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/grid.h"
#include "data/plot.h"
#include "framework/core/error.h"

namespace iris::data {

namespace {

const uint8_t kBlack[3] = {0, 0, 0};
const uint8_t kGridGrey[3] = {225, 225, 225};
const uint8_t kRefGrey[3] = {110, 110, 110};
const uint8_t kWhite[3] = {255, 255, 255};

void fill(Image& img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
  for (int y = std::max(0, std::min(y0, y1)); y <= std::min(img.height - 1, std::max(y0, y1)); ++y)
    for (int x = std::max(0, std::min(x0, x1)); x <= std::min(img.width - 1, std::max(x0, x1)); ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = rgb[c];
}

std::string number(double v, int decimals) {
  char buf[64];
  if (std::fabs(v) < 0.5 * std::pow(10.0, -decimals)) v = 0;  // no "-0.0"
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// The top of the axis: the highest thing drawn, rounded up to a tick of a 1-2-5 step of about a fifth of
// the range.
void axis(const std::vector<Bar>& bars, const BarChartOptions& o, double& hi, double& step) {
  double top = o.y_min;
  auto include = [&](double v) {
    if (std::isfinite(v)) top = std::max(top, v);
  };
  for (const auto& b : bars) {
    include(b.value);
    include(b.hi);
  }
  include(o.reference);
  include(o.y_max);
  if (top <= o.y_min) top = o.y_min + 1;
  const double raw = (top - o.y_min) / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  hi = o.y_min + std::ceil((top - o.y_min) / step - 1e-9) * step;
}

int tick_decimals(double step) {
  return std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
}

}  // namespace

int BarFrame::x_center(int i) const {
  return left + static_cast<int>(std::lround((i + 0.5) * (right - left) / bars));
}

int BarFrame::half_width() const {
  return std::max(2, static_cast<int>((right - left) / bars * 0.3));
}

int BarFrame::y_pixel(double v) const {
  return bottom - static_cast<int>(std::lround((v - y_min) / (y_max - y_min) * (bottom - top)));
}

BarFrame bar_frame(const std::vector<Bar>& bars, const BarChartOptions& o) {
  IRIS_CHECK(!bars.empty(), "bar_chart: no bars");
  IRIS_CHECK(o.text_scale >= 1, "bar_chart: text scale must be at least 1, got ", o.text_scale);
  const int s = o.text_scale, ch = 7 * s, pad = 4 * s, tick = 2 * s;
  BarFrame f;
  f.bars = static_cast<int>(bars.size());
  f.y_min = o.y_min;
  axis(bars, o, f.y_max, f.step);
  int label_w = 0;
  for (double v = f.y_min; v <= f.y_max + f.step * 1e-6; v += f.step)
    label_w = std::max(label_w, text_width(number(v, tick_decimals(f.step)), s));
  // Room above the plot for the title, the y label and the value printed over the tallest bar.
  f.top = pad + (o.title.empty() ? 0 : ch + pad) + (o.y_label.empty() ? 0 : ch + pad) + ch + pad;
  f.left = pad + label_w + pad + tick;
  f.right = o.width - 1 - 2 * pad;
  bool notes = false;
  for (const auto& b : bars) notes = notes || !b.note.empty();
  f.bottom = o.height - 1 - pad - (notes ? ch + pad / 2 : 0) - ch - pad - tick;
  IRIS_CHECK(f.right - f.left >= 12 * f.bars && f.bottom - f.top >= 4 * ch, "bar_chart: a ", o.width, "x",
             o.height, " image is too small for ", f.bars, " bars and their text");
  return f;
}

Image bar_chart(const std::vector<Bar>& bars, const BarChartOptions& o) {
  const BarFrame f = bar_frame(bars, o);
  const int s = o.text_scale, ch = 7 * s, pad = 4 * s, tick = 2 * s;
  Image img(o.height, o.width, 3, 255);
  int y_text = pad;
  if (!o.title.empty()) {
    draw_text(img, (o.width - text_width(o.title, s)) / 2, y_text, o.title, s, kBlack);
    y_text += ch + pad;
  }
  if (!o.y_label.empty()) draw_text(img, pad, y_text, o.y_label, s, kBlack);

  const int decimals = tick_decimals(f.step);
  for (double v = f.y_min; v <= f.y_max + f.step * 1e-6; v += f.step) {
    const int y = f.y_pixel(v);
    fill(img, f.left, y, f.right, y, kGridGrey);
    fill(img, f.left - tick, y, f.left, y, kBlack);
    const std::string t = number(v, decimals);
    draw_text(img, f.left - tick - pad / 2 - text_width(t, s), y - ch / 2, t, s, kBlack);
  }
  fill(img, f.left, f.top, f.left, f.bottom, kBlack);

  for (int i = 0; i < f.bars; ++i) {
    const Bar& b = bars[static_cast<size_t>(i)];
    const int x = f.x_center(i), hw = f.half_width();
    if (std::isfinite(b.value))
      fill(img, x - hw, f.y_pixel(b.value), x + hw, f.bottom, series_color(static_cast<size_t>(i)));
    if (std::isfinite(b.lo) && std::isfinite(b.hi)) {
      const int y0 = f.y_pixel(b.lo), y1 = f.y_pixel(b.hi), cap = std::max(3, hw / 3);
      fill(img, x - s / 2, y1, x + (s - 1) / 2, y0, kBlack);
      fill(img, x - cap, y0 - s / 2, x + cap, y0 + (s - 1) / 2, kBlack);
      fill(img, x - cap, y1 - s / 2, x + cap, y1 + (s - 1) / 2, kBlack);
    }
    // The value above the bar (and above its whisker's top, so that the two do not overlap).
    const std::string v = std::isfinite(b.value) ? number(b.value, o.decimals) + o.value_suffix : "-";
    double top = std::isfinite(b.value) ? b.value : f.y_min;
    if (std::isfinite(b.hi)) top = std::max(top, b.hi);
    const int tx = x - text_width(v, s) / 2, ty = f.y_pixel(top) - pad / 2 - ch;
    for (int yy = ty - s; yy < ty + ch + s; ++yy)
      fill(img, tx - s, yy, tx + text_width(v, s) + s, yy, kWhite);
    draw_text(img, tx, ty, v, s, kBlack);
    draw_text(img, x - text_width(b.label, s) / 2, f.bottom + tick + pad / 2, b.label, s, kBlack);
    if (!b.note.empty())
      draw_text(img, x - text_width(b.note, s) / 2, f.bottom + tick + pad / 2 + ch + pad / 2, b.note, s,
                kRefGrey);
  }
  fill(img, f.left, f.bottom, f.right, f.bottom, kBlack);

  if (std::isfinite(o.reference)) {
    const int y = f.y_pixel(o.reference);
    for (int x = f.left + 1; x <= f.right; x += 7 * s)
      fill(img, x, y - s / 2, std::min(f.right, x + 4 * s), y + (s - 1) / 2, kRefGrey);
    const int tw = text_width(o.reference_label, s);
    const int tx = f.right - pad / 2 - tw,
              ty = y - s - ch - pad / 2 >= f.top ? y - s - ch - pad / 2 : y + s + pad / 2;
    for (int yy = ty - s; yy < ty + ch + s; ++yy) fill(img, tx - s, yy, tx + tw + s, yy, kWhite);
    draw_text(img, tx, ty, o.reference_label, s, kRefGrey);
  }
  return img;
}

void write_bar_chart(const std::string& path, const std::vector<Bar>& bars, const BarChartOptions& options) {
  write_png(path, bar_chart(bars, options));
}

}  // namespace iris::data
