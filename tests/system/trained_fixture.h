// A folder with tiny trained checkpoints for the system tests of `iris sample`, `iris cascade` and
// `iris ckpt`: the synthetic 16x16 shard set (labels a, b, c; 4x4 low-res copies) and the stages asked for,
// each trained for two steps with `iris train`: an SR3 stage 4x4 -> 16x16, the same trained with noise
// conditioning augmentation, a class-conditional base stage at 4x4 (3 classes), an unconditional one, and
// a regression stage 4x4 -> 16x16 (model.task = regression, the SR3 config's U-Net).
#pragma once

#include <string>

#include "framework/core/tensor.h"

namespace iris::test {

struct TrainedStages {
  bool sr3 = false, sr3_aug = false, base = false, base_uncond = false, regression = false;
};

struct TrainedFixture {
  std::string root, data, sr3_ckpt, sr3_aug_ckpt, base_ckpt, base_uncond_ckpt, regression_ckpt;
  // Writes the shards and trains the stages asked for (each takes well under a second).
  TrainedFixture(const std::string& tag, TrainedStages stages);
  ~TrainedFixture();
  std::string path(const std::string& name) const;  // root/name
};

// A dataset of an HDF5 file, read whole.
Tensor read_h5(const std::string& file, const std::string& dataset);
// True when both tensors have the same shape, dtype and bytes.
bool same_bytes(const Tensor& a, const Tensor& b);
// PNG files in a folder (not counting grid.png).
int count_pngs(const std::string& dir);

}  // namespace iris::test
