// `iris sweep`'s TensorBoard events (rank 0 writes), in OUT/tensorboard, laid out as the plots
// OUT/<metric>.png are (tools/sweep_report.h's SweepLayout):
//   - every metric as the scalar sweep/<metric> of each point, at a step on the plots' x axis: the swept
//     value itself when every value of that axis is a whole number (steps=25,50,100; truncated=0,1), else
//     the value's position in its --vary list (aug_level=0,0.1,0.2 -> steps 0, 1, 2);
//   - one TensorBoard run per series: OUT/tensorboard itself when there is one, else a subfolder per series
//     named by its settings ("sampler=ddim"), which TensorBoard draws as one curve each in the metric's
//     chart;
//   - the run "reference": the real-data references at every step of the x axis (fd_floor as sweep/fd,
//     cas_real as sweep/cas, classifier_top1_real as sweep/accuracy), the plots' dashed line;
//   - text, in OUT/tensorboard itself: sweep/x_axis (what the steps mean; written first) and sweep/points
//     (the table; at the end).
// Points are written as they finish, so a long sweep can be watched. Every run of the sweep command writes
// the folder afresh (finished points again, from their records): each point appears once. A write that fails
// mid-sweep is said once and TensorBoard is dropped; the sweep goes on.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tensorboard.h"
#include "tools/sweep_grid.h"
#include "tools/sweep_report.h"

namespace iris::tools {

class SweepTensorBoard {
 public:
  // Replaces OUT/tensorboard (a folder of a previous run of the sweep) and opens every run in it, each
  // starting with a restart marker at step 0 (a TensorBoard that watches the folder drops what it showed).
  // Throws naming the folder or file when it cannot write: call it before the sampling.
  SweepTensorBoard(const std::string& out, const std::vector<SweepAxis>& axes,
                   const std::vector<SweepPoint>& points, std::vector<std::string> metrics);
  const std::string& dir() const { return log_.dir(); }
  // A finished point's scores (NaN ones left out), in its series' run at its x step.
  void point(const PointResult& p);
  // The references' run and the table, once every point is in.
  void finish(const std::vector<PointResult>& results, const nlohmann::json& references);

 private:
  std::vector<SweepAxis> axes_;
  std::vector<std::string> metrics_;
  SweepLayout layout_;             // of every point of the grid, by index
  std::vector<int64_t> x_steps_;   // the step of each value of the x axis
  std::vector<std::string> runs_;  // of each series: its subfolder ("" for OUT/tensorboard itself)
  data::EventLog log_;
};

}  // namespace iris::tools
