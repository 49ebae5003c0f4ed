#include "tools/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <tuple>

#include "data/grid.h"
#include "data/plot.h"
#include "framework/core/error.h"

namespace iris::tools {

namespace fs = std::filesystem;

namespace {

const std::vector<MetricInfo>& metrics_known() {
  static const std::vector<MetricInfo> known = {
      {"psnr", "PSNR (dB)", true, "%.3f"},
      {"ssim", "SSIM", true, "%.4f"},
      {"consistency", "consistency (MSE)", false, "%.3e"},
      {"fd", "FD", false, "%.4g"},
      {"cas", "CAS top-1", true, "%.4f"},
      {"accuracy", "classifier accuracy", true, "%.4f"},
      {"ms", "ms per image", false, "%.1f"},
  };
  return known;
}

std::string cell(double v, const char* format) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[48];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

double score_of(const PointResult& p, const std::string& metric) {
  const auto it = p.scores.find(metric);
  return it == p.scores.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

}  // namespace

const MetricInfo& metric_info(const std::string& name) {
  for (const MetricInfo& m : metrics_known())
    if (m.name == name) return m;
  IRIS_THROW("--metrics: unknown metric '", name, "'; the metrics are psnr, ssim, consistency, fd, cas, ms");
}

std::vector<std::string> parse_metrics(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& m : items) {
    IRIS_CHECK(m != "accuracy",
               "--metrics: accuracy is recorded by itself when the samples carry labels and "
               "a feature classifier is there (--fd-train or --classifier)");
    metric_info(m);
    IRIS_CHECK(std::find(out.begin(), out.end(), m) == out.end(), "--metrics: '", m, "' is given twice");
    out.push_back(m);
  }
  IRIS_CHECK(!out.empty(), "--metrics: give at least one of psnr, ssim, consistency, fd, cas, ms");
  return out;
}

nlohmann::json score_json(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

double score_from_json(const nlohmann::json& j) {
  if (j.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (j.is_string()) {
    IRIS_CHECK(j == "inf" || j == "-inf", "a score must be a number, null, \"inf\" or \"-inf\", got ",
               j.dump());
    return j == "inf" ? INFINITY : -INFINITY;
  }
  return j.get<double>();
}

nlohmann::json PointResult::to_json() const {
  nlohmann::json s = nlohmann::json::object();
  for (const auto& [k, v] : scores) s[k] = score_json(v);
  return {{"index", index}, {"values", values}, {"stages", stages},
          {"scores", s},    {"wall_s", wall_s}, {"ms_per_image", ms_per_image}};
}

PointResult PointResult::from_json(const nlohmann::json& j) {
  PointResult p;
  try {
    p.index = j.at("index").get<size_t>();
    p.values = j.at("values");
    p.stages = j.at("stages");
    for (const auto& [k, v] : j.at("scores").items()) p.scores[k] = score_from_json(v);
    p.wall_s = j.at("wall_s").get<double>();
    p.ms_per_image = j.at("ms_per_image").get<double>();
  } catch (const nlohmann::json::exception& e) {
    IRIS_THROW("a malformed point record: ", e.what());
  }
  return p;
}

size_t best_point(const std::vector<PointResult>& points, const std::string& metric) {
  const bool higher = metric_info(metric).higher_better;
  size_t best = std::string::npos;
  for (size_t k = 0; k < points.size(); ++k) {
    const double v = score_of(points[k], metric);
    if (std::isnan(v)) continue;
    const double b = best == std::string::npos ? 0 : score_of(points[best], metric);
    if (best == std::string::npos || (higher ? v > b : v < b)) best = k;  // ties: the first point
  }
  return best;
}

void print_table(const std::vector<SweepAxis>& axes, const std::vector<PointResult>& points,
                 const std::vector<std::string>& metrics) {
  std::vector<std::string> header{"#"};
  for (const SweepAxis& a : axes) header.push_back(a.name());
  for (const std::string& m : metrics) header.push_back(m);
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> best;
  for (const std::string& m : metrics) best.push_back(best_point(points, m));
  for (size_t k = 0; k < points.size(); ++k) {
    std::vector<std::string> row{std::to_string(points[k].index)};
    for (const SweepAxis& a : axes) row.push_back(points[k].values.at(a.name()).get<std::string>());
    for (size_t m = 0; m < metrics.size(); ++m)
      row.push_back(cell(score_of(points[k], metrics[m]), metric_info(metrics[m]).format) +
                    (best[m] == k ? "*" : " "));
    rows.push_back(std::move(row));
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& r) {
    for (size_t c = 0; c < r.size(); ++c)
      std::printf("%s%*s", c ? "  " : "", static_cast<int>(width[c]), r[c].c_str());
    std::printf("\n");
  };
  print_row(header);
  for (const auto& r : rows) print_row(r);
  std::string higher, lower;
  for (const std::string& m : metrics) {
    std::string& list = metric_info(m).higher_better ? higher : lower;
    list += (list.empty() ? "" : ", ") + m;
  }
  std::printf("* the best value of each metric.%s%s%s%s\n",
              higher.empty() ? "" : " Higher is better: ", higher.c_str(),
              lower.empty() ? "" : (higher.empty() ? " Lower is better: " : "; lower is better: "),
              lower.c_str());
}

SweepLayout sweep_layout(const std::vector<SweepAxis>& axes, const std::vector<nlohmann::json>& values) {
  SweepLayout l;
  for (size_t a = 1; a < axes.size(); ++a)
    if (axes[a].values.size() > axes[l.x_axis].values.size()) l.x_axis = a;
  const SweepAxis& xa = axes[l.x_axis];
  for (const nlohmann::json& v : values) {
    std::string label;
    for (size_t a = 0; a < axes.size(); ++a)
      if (a != l.x_axis && axes[a].values.size() > 1)
        label += (label.empty() ? "" : ", ") + axes[a].name() + "=" + v.at(axes[a].name()).get<std::string>();
    auto it = std::find(l.series.begin(), l.series.end(), label);
    l.series_of.push_back(static_cast<size_t>(it - l.series.begin()));
    if (it == l.series.end()) l.series.push_back(label);
    const std::string x = v.at(xa.name()).get<std::string>();
    l.x_of.push_back(
        static_cast<size_t>(std::find(xa.values.begin(), xa.values.end(), x) - xa.values.begin()));
    IRIS_ASSERT(l.x_of.back() < xa.values.size());
  }
  return l;
}

std::vector<std::string> write_plots(const std::string& out, const std::vector<SweepAxis>& axes,
                                     const std::vector<PointResult>& points,
                                     const std::vector<std::string>& metrics,
                                     const nlohmann::json& references) {
  std::vector<nlohmann::json> values;
  for (const PointResult& p : points) values.push_back(p.values);
  const SweepLayout layout = sweep_layout(axes, values);
  const SweepAxis& xa = axes[layout.x_axis];
  std::vector<std::string> paths;
  for (const std::string& m : metrics) {
    const MetricInfo& info = metric_info(m);
    std::vector<data::PlotSeries> series;
    for (const std::string& name : layout.series)
      series.push_back({name.empty() ? info.name : name,
                        std::vector<double>(xa.values.size(), std::numeric_limits<double>::quiet_NaN())});
    for (size_t k = 0; k < points.size(); ++k) {
      const double v = score_of(points[k], m);
      series[layout.series_of[k]].y[layout.x_of[k]] =
          std::isfinite(v) ? v : std::numeric_limits<double>::quiet_NaN();
    }
    data::PlotOptions o;
    o.title = info.title + (info.higher_better ? ": higher is better" : ": lower is better");
    o.y_label = info.title;
    o.x_label = xa.name();
    o.x_ticks = xa.values;
    // Room for the legend beside a plot area of about 560 pixels, however long the series' names are.
    int legend = 0;
    for (const auto& e : series) legend = std::max(legend, data::text_width(e.label, o.text_scale) + 120);
    o.width = 600 + (series.size() > 1 ? legend : 0);
    if (const size_t b = best_point(points, m);
        b != std::string::npos && std::isfinite(score_of(points[b], m))) {
      o.best_series = static_cast<int>(layout.series_of[b]);
      o.best_x = static_cast<int>(layout.x_of[b]);
    }
    for (const auto& [metric, key, label] : {std::tuple{"fd", "fd_floor", "real data (floor)"},
                                             std::tuple{"cas", "cas_real", "real training data"},
                                             std::tuple{"accuracy", "classifier_top1_real", "real data"}})
      if (m == metric && references.is_object() && references.contains(key)) {
        o.reference = references[key].get<double>();
        o.reference_label = label;
      }
    const std::string path = (fs::path(out) / (m + ".png")).string();
    data::write_line_plot(path, series, o);
    paths.push_back(path);
  }
  return paths;
}

}  // namespace iris::tools
