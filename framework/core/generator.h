// Generator: the state of a Philox stream (seed, stream id, offset in blocks), saved and restored exactly.
//
// A generator can also be "per sample": a draw of shape [N, ...] then gives sample n the numbers of stream
// streams[n] (same seed, same offset). Training uses this so that every random draw of a sample (noise
// level, noise, augmentation, dropout) depends on (seed, step, global sample index) only, not on how the
// batch is split over ranks or threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace iris {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}
  static Generator per_sample(uint64_t seed, std::vector<uint64_t> streams, uint64_t offset = 0);

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  bool is_per_sample() const { return !streams_.empty(); }
  const std::vector<uint64_t>& streams() const { return streams_; }

  // Reserves `blocks` blocks per stream and returns the offset where they start.
  uint64_t advance(uint64_t blocks) {
    const uint64_t start = offset_;
    offset_ += blocks;
    return start;
  }

  // A stream id mixing two numbers (e.g. training step and global sample index) without collisions for
  // step < 2^40 and index < 2^24.
  static uint64_t stream_id(uint64_t a, uint64_t b) { return (a << 24) ^ b; }

  struct State {
    uint64_t seed = 0, stream = 0, offset = 0;
    bool operator==(const State&) const = default;
  };
  State state() const { return {seed_, stream_, offset_}; }
  void set_state(const State& s) {
    seed_ = s.seed;
    stream_ = s.stream;
    offset_ = s.offset;
    streams_.clear();
  }

 private:
  uint64_t seed_ = 0, stream_ = 0, offset_ = 0;
  std::vector<uint64_t> streams_;
};

}  // namespace iris
