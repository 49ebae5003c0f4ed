// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
// generator. The numbers are a pure function of (key, counter), so any element of a draw can be computed
// independently, in any order, by any thread, on the CPU or the GPU, with the same result.
//
// Iris's layout: key = the 64-bit seed; counter = (64-bit block index, 64-bit stream id). One block gives
// four 32-bit words. Element j of a draw that starts at block `offset` uses block offset + j/4, word j%4.
#pragma once

#include <cmath>
#include <cstdint>

#include "framework/core/dtype.h"

namespace iris::philox {

struct Block {
  uint32_t v[4];
};

IRIS_HD void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// The raw generator on a 128-bit counter (c0 least significant) and a 64-bit key.
IRIS_HD Block philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += W0;
      k1 += W1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(M0, c0, hi0, lo0);
    mulhilo(M1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return Block{{c0, c1, c2, c3}};
}

// Block `block` of stream `stream` under `seed`.
IRIS_HD Block block(uint64_t seed, uint64_t stream, uint64_t block_index) {
  return philox4x32_10(static_cast<uint32_t>(block_index), static_cast<uint32_t>(block_index >> 32),
                       static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// A uniform float in [0, 1) from the top 24 bits (exact in float: identical on every device).
IRIS_HD float uniform01(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
// A uniform double in (0, 1] from the top 24 bits, for the Box-Muller logarithm.
IRIS_HD double uniform01_open(uint32_t x) { return (static_cast<double>(x >> 8) + 1.0) * (1.0 / 16777216.0); }

// Element j of a normal draw: words (2p, 2p+1) of its block (p = (j%4)/2) give a Box-Muller pair; even j take
// the cosine, odd j the sine. Computed in double and rounded once, so the CPU and GPU agree to the last bit in
// all but vanishingly rare cases (their libm's differ by an ulp of a double at most).
IRIS_HD double normal_from_block(const Block& b, int lane) {
  const int pair = lane >> 1;
  const double u1 = uniform01_open(b.v[2 * pair]);
  const double u2 = static_cast<double>(uniform01(b.v[2 * pair + 1]));
  const double r = ::sqrt(-2.0 * ::log(u1));
  const double theta = 6.283185307179586476925 * u2;
  return (lane & 1) ? r * ::sin(theta) : r * ::cos(theta);
}

}  // namespace iris::philox
