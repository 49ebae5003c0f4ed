// What `iris sweep` reports: the metrics it knows (and which direction is better), the best point of each,
// the table on stdout, OUT/sweep.json and one plot per metric, OUT/<metric>.png.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/sweep_grid.h"

namespace iris::tools {

struct MetricInfo {
  std::string name;    // "psnr"
  std::string title;   // "PSNR (dB)"
  bool higher_better;  // which direction is better
  const char* format;  // printf format of a value in the table
};
// psnr, ssim, consistency, fd, cas, ms and accuracy (added by the sweep itself when it can measure it).
const MetricInfo& metric_info(const std::string& name);
// --metrics items: known names, each once, in the order given. Throws naming an unknown one.
std::vector<std::string> parse_metrics(const std::vector<std::string>& items);

// One scored point of the grid.
struct PointResult {
  size_t index = 0;                      // its number in grid_points order
  nlohmann::json values;                 // its value of each axis, by axis name
  nlohmann::json stages;                 // every stage's settings (choice_json)
  std::map<std::string, double> scores;  // by metric name; NaN when not measurable
  double wall_s = 0, ms_per_image = 0;   // of sampling the point's images
  nlohmann::json to_json() const;
  static PointResult from_json(const nlohmann::json& j);  // throws on a malformed record
};

// The index (into `points`) of the best finite score of `metric`; npos when none is finite.
size_t best_point(const std::vector<PointResult>& points, const std::string& metric);

// The table: one row per point, one column per axis and metric, the best value of each metric marked '*',
// and a line saying which direction is better.
void print_table(const std::vector<SweepAxis>& axes, const std::vector<PointResult>& points,
                 const std::vector<std::string>& metrics);

// How the points are drawn against one axis (the plots, TensorBoard): x is the axis with the most values (the
// first of them on a tie); a series is one combination of the other axes' values, named like
// "sampler=ddim, 1:aug_level=0.1" (axes of one value left out; "" when there is a single series).
struct SweepLayout {
  size_t x_axis = 0;
  std::vector<std::string> series;      // in order of first appearance
  std::vector<size_t> series_of, x_of;  // per point: its series, and its value's index on the x axis
};
// `values[k]`: point k's values by axis name (PointResult::values, point_values).
SweepLayout sweep_layout(const std::vector<SweepAxis>& axes, const std::vector<nlohmann::json>& values);

// OUT/<metric>.png for each metric: the score against the layout's x axis, one line per series, the best
// point ringed, and the real-data reference of fd (fd_floor), cas (cas_real) and accuracy
// (classifier_top1_real) as a dashed line when `references` has it. Returns the paths.
std::vector<std::string> write_plots(const std::string& out, const std::vector<SweepAxis>& axes,
                                     const std::vector<PointResult>& points,
                                     const std::vector<std::string>& metrics,
                                     const nlohmann::json& references);

// JSON numbers for scores: NaN -> null, +-inf -> "inf" / "-inf" (JSON has neither).
nlohmann::json score_json(double v);
double score_from_json(const nlohmann::json& j);

}  // namespace iris::tools
