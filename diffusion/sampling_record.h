// The bookkeeping of a sampling run that may be split over the ranks of a launched job and may be killed part
// way (preemption, a job's time limit):
//  - RankSplit / SampleSplit: the samples still to do, split over the ranks in contiguous runs, sampled in
//    rounds of at most `batch` rows per rank and gathered to rank 0 after each round.
//  - SampleRecord (rank 0): the run's output folders, every finished sample's PNGs written (atomically) as
//    soon as its round is gathered, and OUT/run.json saying what the run is (checkpoints, settings, seed, a
//    checksum of the inputs). Resuming reads the finished samples back, and only the others are sampled;
//    the result is the same, bit for bit, as an uninterrupted run's (every sample has its own noise stream).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/image.h"
#include "framework/core/tensor.h"

namespace iris::dist {
class Communicator;
}

namespace iris::diffusion {

// The split of `pending` (sample indices, ascending) over `ranks`: rank q owns the contiguous run
// pending[q * per, min(n, (q + 1) * per)) with per = ceil(n / ranks), and samples it in chunks of
// chunk = min(batch, per) rows, one chunk per round. Every rank runs every round (one with nothing left
// has an empty chunk), so the collectives of a round match. Pure arithmetic: no communication.
class RankSplit {
 public:
  RankSplit(std::vector<int64_t> pending, int64_t batch, int ranks);
  int64_t rounds() const { return rounds_; }
  int ranks() const { return ranks_; }
  int64_t chunk() const { return chunk_; }  // rows of a full round per rank
  // The rows rank `rank` samples in round `round` (ascending; empty when it has none left).
  std::vector<int64_t> rows(int64_t round, int rank) const;

 private:
  std::vector<int64_t> pending_;
  int64_t per_ = 0, chunk_ = 1, rounds_ = 0;
  int ranks_ = 1;
};

// A RankSplit over the ranks of `comm` (one rank without one), with the gather of each round.
class SampleSplit {
 public:
  // `pending`: the rows (sample indices, ascending) still to sample; every rank passes the same list.
  SampleSplit(std::vector<int64_t> pending, int64_t batch, std::shared_ptr<dist::Communicator> comm);
  int64_t rounds() const { return split_.rounds(); }
  int ranks() const { return split_.ranks(); }
  bool is_root() const { return rank_ == 0; }
  // The rows this rank samples in round `round`.
  std::vector<int64_t> rows(int64_t round) const { return split_.rows(round, rank_); }
  // Collects round `round`: `mine` holds this rank's rows of each output (u8 [rows, ...row_shapes[i]]; empty
  // when it had none); rank 0 copies every rank's rows into `outputs[i]` (u8 [total, ...], allocated on first
  // use) and gets the rows it received back (the other ranks get an empty list).
  std::vector<int64_t> gather(int64_t round, const std::vector<Tensor>& mine,
                              const std::vector<Shape>& row_shapes, int64_t total,
                              std::vector<Tensor>& outputs);

 private:
  RankSplit split_;
  int rank_ = 0;
  std::shared_ptr<dist::Communicator> comm_;
};

// Rank 0's `pending` (sample indices in [0, total)) on every rank of `comm` (unchanged without one).
std::vector<int64_t> share_rows(const std::shared_ptr<dist::Communicator>& comm,
                                const std::vector<int64_t>& pending, int64_t total);

// The first setting that differs between two JSON identities of a run, named by its path ("stage.weights",
// "stages[1].steps"), with both values (null: absent); an empty path when they are equal.
struct JsonDifference {
  std::string path;
  nlohmann::json saved, now;
  std::string describe() const;  // "'stages[1].steps' was 50, now 25"
};
JsonDifference first_difference(const nlohmann::json& saved, const nlohmann::json& now,
                                const std::string& at = "");

// The name of a run's record in its folder.
inline constexpr const char* kRunRecordName = "run.json";

class SampleRecord {
 public:
  // `out`: the run folder (gets run.json); `dirs[i]`: where output i's PNGs go; `row_shapes[i]`: [H, W, C] of
  // output i; `names`: the PNG stems, one per sample; `identity`: what determines the pixels.
  //   resume = false: a folder holding another run's run.json is refused unless `overwrite` (then replaced);
  //   resume = true:  run.json must exist with the same identity (the first difference is named); every
  //                   sample whose PNGs all exist and decode to the expected shape is read back (the others,
  //                   damaged or of another shape, are sampled again: see warnings()).
  // Errors are iris::Error naming the folder or file; options are named as on the command line (--resume).
  SampleRecord(std::string out, std::vector<std::string> dirs, std::vector<Shape> row_shapes,
               std::vector<std::string> names, nlohmann::json identity, bool resume, bool overwrite);
  int64_t total() const { return static_cast<int64_t>(names_.size()); }
  int64_t done() const { return done_; }               // samples read back
  std::vector<int64_t> pending() const;                // the others, ascending
  std::vector<Tensor>& outputs() { return outputs_; }  // u8 [N, ...] per output
  // One line per PNG found but not trusted ("... cannot be read (...): sampled again").
  const std::vector<std::string>& warnings() const { return warnings_; }
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
  std::vector<std::string> warnings_;
};

// Writes `img` as `dir`/`stem`.png, atomically (temporary name, then rename): a resumed run trusts every
// <stem>.png it finds.
void write_sample_png(const std::string& dir, const std::string& stem, const data::Image& img);

}  // namespace iris::diffusion
