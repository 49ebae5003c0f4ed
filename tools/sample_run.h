// The bookkeeping of a sampling run (`iris sample`, `iris cascade`) that may be split over the ranks of a
// launched job and may be killed part way (preemption, a job's time limit):
//  - SampleRecord (rank 0): the run's output folders, every finished sample's PNGs written as soon as its
//  round
//    is gathered (atomically), and OUT/run.json saying what the run is (checkpoints, settings, seed, a
//    checksum of the inputs). With --resume the finished samples are read back and only the others are
//    sampled; the result is the same, bit for bit, as an uninterrupted run's (every sample has its own noise
//    stream).
//  - SampleSplit: the samples still to do, split over the ranks in contiguous runs, sampled in rounds of at
//    most `batch` rows and gathered to rank 0 after each round.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/core/tensor.h"
#include "tools/sampling.h"

namespace iris::dist {
class Communicator;
}

namespace iris::tools {

// The options `iris sample` and `iris cascade` share: where the run goes and how it is run.
struct SamplingRunOptions {
  std::string out, device = "auto";
  uint64_t seed = 0;
  int64_t batch = 16;
  int threads = 0;
  bool resume = false, overwrite = false;
};
// Registers --seed, --batch, --device, --threads, --out, --resume and --overwrite on `cmd`.
void add_sampling_run_options(CLI::App& cmd, SamplingRunOptions& o);

// The stages of a run of one or more stages (iris cascade, iris sweep) and what its first stage is
// conditioned on, as its command line gives them.
struct StageInputOptions {
  std::vector<std::string> stages;  // checkpoints, in cascade order
  bool raw = false;                 // their raw weights instead of the EMA
  ConditionOptions cond;
  CLI::Option *per_class_opt = nullptr, *count_opt = nullptr;
  // The conditions, checked: a stage given, --per-class positive when given; whether --count was given.
  ConditionOptions conditions() const;
};
// Registers --stage (required), --raw, --labels, --per-class, --count, --shard, --start, --input and
// --input-dir on `cmd`.
void add_stage_input_options(CLI::App& cmd, StageInputOptions& o);
// Every --stage checkpoint loaded (load_stage) on `device`, in order.
std::vector<LoadedStage> load_stages(const StageInputOptions& o, Device device);

class SampleSplit {
 public:
  // `pending`: the rows (sample indices, ascending) still to sample; every rank passes the same list.
  SampleSplit(std::vector<int64_t> pending, int64_t batch, std::shared_ptr<dist::Communicator> comm);
  int64_t rounds() const { return rounds_; }
  int ranks() const { return ranks_; }
  bool is_root() const { return rank_ == 0; }
  // The rows rank `rank` (default: this one) samples in round `round`; empty when it has none left. Every
  // rank runs every round (one with nothing left contributes padding), so the collectives match.
  std::vector<int64_t> rows(int64_t round, int rank = -1) const;
  // Collects round `round`: `mine` holds this rank's rows of each output (u8 [rows, ...row_shapes[i]]; empty
  // when it had none); rank 0 copies every rank's rows into `outputs[i]` (u8 [total, ...], allocated on first
  // use) and gets the rows it received back (the other ranks get an empty list).
  std::vector<int64_t> gather(int64_t round, const std::vector<Tensor>& mine,
                              const std::vector<Shape>& row_shapes, int64_t total,
                              std::vector<Tensor>& outputs);

 private:
  std::vector<int64_t> pending_;
  int64_t per_ = 0, chunk_ = 1, rounds_ = 0;
  int rank_ = 0, ranks_ = 1;
  std::shared_ptr<dist::Communicator> comm_;
};

class SampleRecord {
 public:
  // `out`: the run folder (gets run.json); `dirs[i]`: where output i's PNGs go; `row_shapes[i]`: [H, W, C] of
  // output i; `names`: the PNG stems, one per sample; `identity`: what determines the pixels.
  //   resume = false: a folder holding another run's run.json is refused unless `overwrite` (then replaced);
  //   resume = true:  run.json must exist with the same identity (the first difference is named); every
  //                   sample whose PNGs all exist and decode to the expected shape is read back.
  SampleRecord(std::string out, std::vector<std::string> dirs, std::vector<Shape> row_shapes,
               std::vector<std::string> names, nlohmann::json identity, bool resume, bool overwrite);
  int64_t total() const { return static_cast<int64_t>(names_.size()); }
  int64_t done() const { return done_; }               // samples read back
  std::vector<int64_t> pending() const;                // the others, ascending
  std::vector<Tensor>& outputs() { return outputs_; }  // u8 [N, ...] per output
  // Writes the PNGs of `rows` (already in outputs()).
  void write(const std::vector<int64_t>& rows);

 private:
  std::string out_;
  std::vector<std::string> dirs_;
  std::vector<Shape> row_shapes_;
  std::vector<std::string> names_;
  std::vector<uint8_t> have_;  // 1: sample read back
  int64_t done_ = 0;
  std::vector<Tensor> outputs_;
};

// Ends the header line of a sampling run (", split over N ranks (...)" under a launcher) and says, with
// --resume, how many samples `record` found finished in `out`.
void print_run_status(const dist::Communicator* comm, const SampleRecord& record, bool resume,
                      const std::string& out);

// Rank 0's `pending` (sample indices in [0, total)) on every rank of `comm` (unchanged without one).
std::vector<int64_t> share_rows(const std::shared_ptr<dist::Communicator>& comm,
                                const std::vector<int64_t>& pending, int64_t total);

// What makes a stage's samples what they are: its checkpoint (absolute path, step, EMA or raw), a checksum of
// its resolved config (with --set overrides) and its sampler settings.
nlohmann::json stage_identity(const LoadedStage& stage, const diffusion::SampleSettings& settings);

// The first setting that differs between two JSON identities of a run, named by its path ("stage.weights",
// "stages[1].steps"), with both values (null: absent); an empty path when they are equal.
struct JsonDifference {
  std::string path;
  nlohmann::json saved, now;
  std::string describe() const;  // "'stages[1].steps' was 50, now 25"
};
JsonDifference first_difference(const nlohmann::json& saved, const nlohmann::json& now,
                                const std::string& at = "");

// CRC-32C of the sample names, low-res inputs and labels: part of a run's identity (the inputs must not
// change under a resumed run).
uint32_t inputs_checksum(const std::vector<std::string>& names, const Tensor& lowres,
                         const std::vector<int64_t>& labels);

}  // namespace iris::tools
