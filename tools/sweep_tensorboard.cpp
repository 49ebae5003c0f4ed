#include "tools/sweep_tensorboard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "framework/core/error.h"

namespace iris::tools {

namespace fs = std::filesystem;

namespace {

// The value as a whole number >= 0 (all digits), or -1.
int64_t whole_number(const std::string& v) {
  if (v.empty() || v.size() > 15 || v.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(v);
}

std::string cell(double v, const char* format) {
  if (std::isnan(v)) return "-";
  char b[48];
  std::snprintf(b, sizeof(b), format, v);
  return b;
}

}  // namespace

SweepTensorBoard::SweepTensorBoard(const std::string& out, const std::vector<SweepAxis>& axes,
                                   const std::vector<SweepPoint>& points, std::vector<std::string> metrics)
    : axes_(axes),
      metrics_(std::move(metrics)),
      log_((fs::path(out) / "tensorboard").string(),
           [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }, "the sweep") {
  std::vector<nlohmann::json> values;
  for (const SweepPoint& p : points) values.push_back(point_values(axes, p));
  layout_ = sweep_layout(axes, values);
  const SweepAxis& xa = axes[layout_.x_axis];
  bool whole = true;
  for (const std::string& v : xa.values) whole = whole && whole_number(v) >= 0;
  for (size_t i = 0; i < xa.values.size(); ++i)
    x_steps_.push_back(whole ? whole_number(xa.values[i]) : static_cast<int64_t>(i));
  for (const std::string& s : layout_.series) {
    std::string run = s;
    for (char& c : run)
      if (c == '/') c = '_';  // one folder level per series
    runs_.push_back(layout_.series.size() == 1 ? "" : run);
  }

  // The folder is the sweep's own: what an earlier run of the sweep wrote is replaced (not a file in its
  // place, which is then named by the error of the first open below).
  std::error_code ec;
  if (fs::is_directory(log_.dir(), ec)) fs::remove_all(log_.dir(), ec);
  std::string meaning = "x axis: **" + xa.name() + "**. ";
  if (whole) {
    meaning += "The step of each point is its value of " + xa.name() + ".";
  } else {
    meaning += "The step of each point is the position of its value in the --vary list:";
    for (size_t i = 0; i < xa.values.size(); ++i)
      meaning += std::string(i ? "," : "") + " " + std::to_string(i) + " = " + xa.values[i];
    meaning += ".";
  }
  if (layout_.series.size() > 1)
    meaning += " Each run (" + std::to_string(layout_.series.size()) +
               ") is one combination of the other axes' values.";
  // The texts go to OUT/tensorboard itself (a run of their own when the series have subfolders).
  std::vector<std::string> opened = runs_;
  if (runs_.front() != "") opened.insert(opened.begin(), "");
  for (const std::string& run : opened) {
    data::EventWriter& w = log_.open(run);
    w.session_start(0);
    if (run.empty()) w.text("sweep/x_axis", meaning, 0);
    w.flush();
  }
}

void SweepTensorBoard::point(const PointResult& p) {
  IRIS_ASSERT(p.index < layout_.series_of.size());
  const int64_t step = x_steps_[layout_.x_of[p.index]];
  log_.write(runs_[layout_.series_of[p.index]], [&](data::EventWriter& w) {
    for (const std::string& m : metrics_) {
      const auto it = p.scores.find(m);
      if (it != p.scores.end() && !std::isnan(it->second)) w.scalar("sweep/" + m, it->second, step);
    }
  });
}

void SweepTensorBoard::finish(const std::vector<PointResult>& results, const nlohmann::json& references) {
  if (references.is_object()) {
    for (const auto& [metric, key] : {std::pair{"fd", "fd_floor"}, std::pair{"cas", "cas_real"},
                                      std::pair{"accuracy", "classifier_top1_real"}})
      if (std::find(metrics_.begin(), metrics_.end(), metric) != metrics_.end() && references.contains(key)) {
        const double v = references[key].get<double>();
        log_.write("reference", [&](data::EventWriter& w) {
          for (const int64_t step : x_steps_) w.scalar(std::string("sweep/") + metric, v, step);
        });
      }
  }
  // The table, in markdown: a row per point, a column per axis and metric.
  std::string t;
  auto cell_of = [&](const std::string& c) {
    t += ' ';
    t += c;
    t += " |";
  };
  t += "| point |";
  for (const SweepAxis& a : axes_) cell_of(a.name());
  for (const std::string& m : metrics_) cell_of(metric_info(m).title);
  t += "\n|---|";
  for (size_t i = 0; i < axes_.size() + metrics_.size(); ++i) t += "---|";
  for (const PointResult& p : results) {
    t += "\n|";
    cell_of(std::to_string(p.index));
    for (const SweepAxis& a : axes_) cell_of(p.values.at(a.name()).get<std::string>());
    for (const std::string& m : metrics_) {
      const auto it = p.scores.find(m);
      cell_of(cell(it == p.scores.end() ? NAN : it->second, metric_info(m).format));
    }
  }
  log_.write("", [&](data::EventWriter& w) { w.text("sweep/points", t, 0); });
}

}  // namespace iris::tools
