// Labelled images a classifier can tell apart: class k of K is a bright horizontal band over rows
// [k H / K, (k + 1) H / K) on a noisy grey background (Philox noise from the seed, so sets are reproducible).
#pragma once

#include <vector>

#include "data/image.h"
#include "diffusion/cas.h"
#include "framework/core/philox.h"

namespace iris::test {

inline diffusion::LabeledImages band_images(int64_t n, int size, int classes, uint64_t seed,
                                            int channels = 1) {
  diffusion::LabeledImages s;
  std::vector<data::Image> images;
  for (int64_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(i % classes);
    data::Image img(size, size, channels);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        for (int c = 0; c < channels; ++c) {
          const uint32_t r =
              philox::block(seed, static_cast<uint64_t>(i), static_cast<uint64_t>(y * size + x)).v[c];
          const bool band = y * classes / size == k;
          img.at(y, x, c) = static_cast<uint8_t>((band ? 170 : 60) + r % 64);
        }
    images.push_back(img);
    s.labels.push_back(k);
  }
  s.images = data::stack_images(images);
  s.what = "bands(seed " + std::to_string(seed) + ")";
  return s;
}

}  // namespace iris::test
