#include "framework/kernels/random.h"

#include "framework/core/philox.h"
#include "framework/cpu/parallel.h"
#include "framework/kernels/dispatch.h"

namespace iris::cpu {

void philox_fill(Tensor& out, Distribution dist, uint64_t seed, const uint64_t* streams, int64_t N,
                 uint64_t offset, double a, double b) {
  const int64_t M = N ? out.numel() / N : 0;
  const int64_t blocks = (M + 3) / 4;
  dispatch_floating(out.dtype(), "philox_fill", [&](auto tag) {
    using T = decltype(tag);
    T* p = out.data<T>();
    parallel_for(0, N * blocks, 1024, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const int64_t n = i / blocks, blk = i % blocks;
        const philox::Block bl = philox::block(seed, streams[n], offset + static_cast<uint64_t>(blk));
        for (int lane = 0; lane < 4; ++lane) {
          const int64_t j = blk * 4 + lane;
          if (j >= M) break;
          double v;
          if (dist == Distribution::uniform)
            v = a + (b - a) * static_cast<double>(philox::uniform01(bl.v[lane]));
          else
            v = a + b * philox::normal_from_block(bl, lane);
          store_as(p + n * M + j, v);
        }
      }
    });
  });
}

}  // namespace iris::cpu
