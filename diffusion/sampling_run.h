// One function that samples a cascade of any length (a single stage is a cascade of one) over a run's
// inputs: the record (resume), the split over ranks, the rounds, the gather to rank 0 and the PNGs written
// as each round finishes. `iris sample`, `iris cascade` and every point of `iris sweep` go through it.
//
//   record (rank 0) -> pending samples shared with every rank -> split -> per round: sample own rows
//   (Cascade::run with each sample's noise stream) -> gather to rank 0 -> its PNGs written -> ...
//
// Plus the one grid layout of a run's samples (grid.png).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffusion/cascade.h"
#include "diffusion/sampling_inputs.h"
#include "diffusion/sampling_stage.h"

namespace iris::dist {
class Communicator;
}

namespace iris::diffusion {

// What the run's observer is told when the work is known (every rank; after the record is read on rank 0).
struct SamplingStart {
  bool root = true;                   // rank 0 (it writes; the others only sample)
  int64_t total = 0;                  // samples of the run
  int64_t done = 0;                   // finished samples read back (resume; rank 0)
  int64_t pending = 0;                // samples to draw now
  int64_t rounds = 0;                 // rounds of the split
  std::vector<std::string> warnings;  // PNGs found but sampled again (rank 0)
};

// One step of one stage's chain for the current round.
struct SamplingTick {
  int64_t round = 0, rounds = 0;
  size_t stage = 0, stages = 1;
  int64_t step = 0, steps = 0;  // 1-based step of its sampler, of `steps`
};

struct SamplingRun {
  uint64_t seed = 0;
  int64_t batch = 16;  // rows per rank and round; results do not depend on it
  Device device = Device::cpu();
  std::shared_ptr<dist::Communicator> comm;  // null: this process draws every sample
  // The record (rank 0): `out` empty keeps none (nothing is written, every sample is drawn).
  std::string out;
  std::vector<std::string> dirs;  // PNG folder of each stage's output
  nlohmann::json identity;        // what determines the pixels (run.json)
  bool resume = false, overwrite = false;
  // Observers (optional), called on every rank.
  std::function<void(const SamplingStart&)> on_start;
  std::function<void(const SamplingTick&)> on_step;
  std::function<void(int64_t samples_done)> on_round;  // after each round's gather (rank 0 counts)
};

// Samples `steps` (a chain checked by Cascade::add) for every sample of `in`, sample i from the stream
// noise_streams(in)[i] of `run.seed`. Returns, on rank 0, each stage's output u8 [N, H_i, W_i, C] (read back
// or drawn); the other ranks get an empty list.
std::vector<Tensor> sample_cascade(const std::vector<CascadeStage>& steps, const Inputs& in,
                                   const SamplingRun& run);

// The grid of a run's samples (at most 32 rows, one per sample): a "low-res" and a "bicubic" column when the
// first stage super-resolves, a column per stage's output (u8 [N, H_i, W_i, C]; titled "SR3", "regression"
// or "sample" for one stage, "<i>: <R>x<R>" for several) and one for the truth (or, after a base first
// stage, a real image of the class: "real"); rows titled with their class names when labelled. A run with a
// single column (one base stage, nothing to compare with) is laid out instead as one row per class (or rows
// of 8 unconditional samples) of at most 8 samples, at most 16 rows. Small images are enlarged (nearest
// neighbour) to be readable.
void write_samples_grid(const std::string& path, const std::vector<LoadedStage>& stages, const Inputs& in,
                        const std::vector<Tensor>& outputs, const std::vector<std::string>& class_names);

}  // namespace iris::diffusion
