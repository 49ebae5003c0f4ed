#include "diffusion/sampling_run.h"

#include <algorithm>
#include <map>

#include "data/grid.h"
#include "data/resize.h"
#include "diffusion/sampling_record.h"
#include "framework/core/error.h"
#include "framework/dist/communicator.h"

namespace iris::diffusion {

std::vector<Tensor> sample_cascade(const std::vector<CascadeStage>& steps, const Inputs& in,
                                   const SamplingRun& run) {
  IRIS_CHECK(!steps.empty(), "sample_cascade: no stages");
  IRIS_CHECK(run.batch > 0, "sample_cascade: the batch must be positive, got ", run.batch);
  const int64_t N = in.size();
  IRIS_CHECK(N > 0, "nothing to sample: the inputs given select no samples");
  const bool root = !run.comm || run.comm->rank() == 0;

  // The chain, with the observer told which round and stage each sampler step belongs to.
  SamplingTick tick;
  tick.stages = steps.size();
  Cascade cascade;
  std::vector<Shape> row_shapes;  // [H_i, W_i, C] of each stage's output
  // Each stage's output size follows from its input's (any-size inference: a super-resolution stage
  // multiplies it by its factor; R x R for r x r inputs as trained).
  int64_t h = 0, w = 0;
  if (steps.front().stage->super_resolution()) {
    IRIS_CHECK(in.lowres.defined() && in.lowres.dim() == 4,
               "sample_cascade: a super-resolution first stage needs low-res inputs");
    h = in.lowres.size(1);
    w = in.lowres.size(2);
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    CascadeStage step = steps[i];
    if (run.on_step)
      step.settings.on_step = [&tick, &run, i](const SamplerStep& k) {
        SamplingTick t = tick;
        t.stage = i;
        t.step = k.index;
        t.steps = k.count;
        run.on_step(t);
      };
    std::tie(h, w) = step.stage->output_size(h, w);
    row_shapes.push_back({h, w, step.stage->channels()});
    cascade.add(std::move(step));
  }

  // Rank 0 keeps the record: finished samples' PNGs as they come, run.json, and when resuming what is done.
  std::unique_ptr<SampleRecord> record;
  std::vector<int64_t> pending;
  SamplingStart start;
  start.root = root;
  start.total = N;
  if (root && !run.out.empty()) {
    IRIS_CHECK(run.dirs.size() == steps.size(), "sample_cascade: ", run.dirs.size(), " output folders for ",
               steps.size(), " stages");
    record = std::make_unique<SampleRecord>(run.out, run.dirs, row_shapes, in.names, run.identity, run.resume,
                                            run.overwrite);
    pending = record->pending();
    start.done = record->done();
    start.warnings = record->warnings();
  } else if (root) {
    for (int64_t r = 0; r < N; ++r) pending.push_back(r);
  }
  pending = share_rows(run.comm, pending, N);
  SampleSplit split(pending, run.batch, run.comm);
  start.pending = static_cast<int64_t>(pending.size());
  start.rounds = tick.rounds = split.rounds();
  if (run.on_start) run.on_start(start);

  const std::vector<uint64_t> streams = noise_streams(in, N);
  std::vector<Tensor> unrecorded;  // rank 0's outputs without a record; the other ranks gather nothing here
  std::vector<Tensor>& outputs = record ? record->outputs() : unrecorded;
  int64_t sampled = 0;
  for (int64_t r = 0; r < split.rounds(); ++r) {
    tick.round = r;
    const std::vector<int64_t> rows = split.rows(r);
    std::vector<Tensor> mine;
    if (!rows.empty()) {
      Generator gen = batch_generator(run.seed, streams, rows);
      const StageBatch c = condition_rows(in, rows, *steps.front().stage, run.device);
      for (const Tensor& out : cascade.run(c, static_cast<int64_t>(rows.size()), gen))
        mine.push_back(data::float_to_u8(out.cpu()));  // the rows are gathered and written from the CPU
    }
    const std::vector<int64_t> got = split.gather(r, mine, row_shapes, N, outputs);
    if (record) record->write(got);  // finished samples are on disk before the next round starts
    sampled += static_cast<int64_t>(got.size());
    if (run.on_round) run.on_round(sampled);
  }
  if (!root) return {};
  return outputs;
}

namespace {

constexpr size_t kGridMaxRows = 32;     // one row per sample
constexpr size_t kGridMaxCols = 8;      // class rows: samples per class
constexpr size_t kGridMaxClasses = 16;  // class rows: classes
constexpr int kGridMinCell = 48;  // pixels: small models' 4x4 or 16x16 outputs are unreadable as they are
// Large outputs (any-size inference): rows are dropped beyond this many pixels (at least one row is kept).
constexpr int64_t kGridMaxPixels = 16'000'000;

// Enlarges every image of a grid by the same integer factor (nearest neighbour) so that its largest image is
// at least `min_cell` pixels high.
void enlarge_for_grid(std::vector<std::vector<data::Image>>& grid, int min_cell) {
  int largest = 1;
  for (const auto& row : grid)
    for (const auto& img : row) largest = std::max({largest, img.height, img.width});
  const int factor = (min_cell + largest - 1) / largest;
  if (factor <= 1) return;
  for (auto& row : grid)
    for (auto& img : row)
      img = data::resize(img, img.height * factor, img.width * factor, data::Filter::nearest);
}

// One base stage and nothing to compare with: a row per class (in order of first appearance) titled with its
// name; unconditional samples in rows of 8.
void class_rows(const std::vector<data::Image>& samples, const Inputs& in,
                const std::vector<std::string>& class_names, std::vector<std::vector<data::Image>>& grid,
                std::vector<std::string>& row_titles) {
  std::vector<int64_t> order;
  std::map<int64_t, std::vector<data::Image>> by_label;
  for (size_t i = 0; i < samples.size(); ++i) {
    const int64_t key = in.labels.empty() ? static_cast<int64_t>(i / kGridMaxCols) : in.labels[i];
    if (!by_label.count(key)) order.push_back(key);
    if (by_label[key].size() < kGridMaxCols) by_label[key].push_back(samples[i]);
  }
  if (order.size() > kGridMaxClasses) order.resize(kGridMaxClasses);
  size_t width = 0;
  for (int64_t k : order) width = std::max(width, by_label[k].size());
  const data::Image blank(samples[0].height, samples[0].width, samples[0].channels, 255);
  for (int64_t k : order) {
    auto row = by_label[k];
    row.resize(width, blank);
    grid.push_back(row);
    if (!in.labels.empty()) row_titles.push_back(label_name(k, class_names));
  }
}

}  // namespace

void write_samples_grid(const std::string& path, const std::vector<LoadedStage>& stages, const Inputs& in,
                        const std::vector<Tensor>& outputs, const std::vector<std::string>& class_names) {
  IRIS_CHECK(!stages.empty() && outputs.size() == stages.size(), "write_samples_grid: ", outputs.size(),
             " outputs for ", stages.size(), " stages");
  const Stage& first = *stages.front().stage;
  std::vector<std::vector<data::Image>> grid;
  std::vector<std::string> titles, row_titles;
  if (!first.super_resolution() && stages.size() == 1 && !in.truth.defined()) {
    class_rows(data::unstack_images(outputs[0]), in, class_names, grid, row_titles);
  } else {
    // One row's pixels: the low-res input and its bicubic upsampling (as large as the last output), every
    // stage's output and the truth.
    int64_t row_pixels = 0;
    for (const Tensor& out : outputs) row_pixels += out.size(1) * out.size(2);
    if (first.super_resolution())
      row_pixels += in.lowres.size(1) * in.lowres.size(2) + outputs.back().size(1) * outputs.back().size(2);
    if (in.truth.defined()) row_pixels += in.truth.size(1) * in.truth.size(2);
    const size_t n = std::min(
        {static_cast<size_t>(in.size()), kGridMaxRows,
         static_cast<size_t>(std::max<int64_t>(1, kGridMaxPixels / std::max<int64_t>(row_pixels, 1)))});
    auto first_rows = [&](const Tensor& t) {
      return data::unstack_images(t.slice(0, 0, static_cast<int64_t>(n)).contiguous());
    };
    std::vector<std::vector<data::Image>> columns;
    if (first.super_resolution()) {
      // The input, and the baseline the model must beat: it upsampled (antialiased bicubic) to the output.
      const Tensor low = in.lowres.slice(0, 0, static_cast<int64_t>(n)).contiguous();
      const int64_t H = outputs.back().size(1), W = outputs.back().size(2);
      columns.push_back(data::unstack_images(low));
      titles.push_back("low-res");
      columns.push_back(
          data::tensor_to_images(data::resize(data::u8_to_float(low), H, W, data::Filter::bicubic)));
      titles.push_back("bicubic");
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const Stage& st = *stages[i].stage;
      columns.push_back(first_rows(outputs[i]));
      if (stages.size() == 1)
        titles.push_back(!st.super_resolution() ? "sample" : st.iterative() ? "SR3" : "regression");
      else
        titles.push_back(std::to_string(i) + ": " + std::to_string(outputs[i].size(1)) + "x" +
                         std::to_string(outputs[i].size(2)));
    }
    if (in.truth.defined()) {
      // After a base first stage the shard's image is a real example of the class, not a sample's truth.
      columns.push_back(first_rows(in.truth));
      titles.push_back(first.super_resolution() ? "truth" : "real");
    }
    grid.resize(n);
    for (size_t r = 0; r < n; ++r) {
      for (const auto& col : columns) grid[r].push_back(col[r]);
      if (!in.labels.empty()) row_titles.push_back(label_name(in.labels[r], class_names));
    }
  }
  enlarge_for_grid(grid, kGridMinCell);
  data::write_grid(path, grid, titles, row_titles);
}

}  // namespace iris::diffusion
