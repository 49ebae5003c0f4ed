// The training data of one stage: its shard set, the loader that hands each rank its slice of the global
// batch, the choice of which stored image is the stage's high-res target and which its low-res input, the
// random flips, and the fixed validation batch of the sample grids.
//
// High-res: the shards' images when they are data.image_size, else the stored low-res copy of that size (a
// cascade's base model works below the shards' size). Low-res (super-resolution stages): the stored copy of
// data.lowres_size: made by resizing (`iris shard images`, `fashion-mnist`) or a real low-res photograph
// (`iris shard pairs`); training cannot tell them apart and needs not.
//
// Patch training (data.crop_size = c > 0): each sample is a c x c crop of its high-res image and the crop
// of its low-res copy that covers the same region, c/f x c/f at (top/f, left/f) with f = image_size /
// lowres_size: the crop's offsets are multiples of f, so the low-res crop is exactly the stored pixels of
// that region (for resized copies: the antialiased downsample of the whole image, cropped; it differs from a
// downsample of the high-res crop alone only within the filter's reach of the crop's border). The shard
// images may be any width >= c (they need not be square). The validation batch takes the centred window
// (offsets rounded down to multiples of f), so that its grids and scores compare across steps.
//
// Flips and crop offsets come from the Philox stream of (seed, epoch, sample index), so they are the same
// whatever the ranks and threads, and a resumed run repeats them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "data/shard.h"
#include "diffusion/stage.h"
#include "diffusion/train_settings.h"

namespace iris::diffusion {

// Where a patch lies in its high-res image: rows [top, top + size), columns [left, left + size).
struct CropWindow {
  int top = 0, left = 0, size = 0;
  bool operator==(const CropWindow&) const = default;
};

// A size x size window placed uniformly among the offsets that are multiples of `align` (which must divide
// height, width and size) in a height x width image: a pure function of (seed, epoch, index).
CropWindow random_crop_window(int height, int width, int size, int align, uint64_t seed, int64_t epoch,
                              int64_t index);
// The centred window, its offsets rounded down to multiples of `align`.
CropWindow center_crop_window(int height, int width, int size, int align);
// The window applied to a sample: its image is cropped to `w`, each low-res copy to the same region in
// its own pixels (w / f for a copy f times smaller, f = image height / copy height, an integer dividing the
// window's offsets and size).
void crop_sample(data::Sample& s, const CropWindow& w);

struct TrainingDataOptions {
  DataSettings data;
  int64_t batch_size = 0;  // global
  int rank = 0, world = 1;
  uint64_t seed = 0;
  bool super_resolution = false;  // load the low-res inputs
  int64_t num_classes = 0;        // > 0: labels are checked against it and handed to the stage
  int64_t validation_count = 0;   // images in the validation batch (train.sample_count)
  bool pin_memory = false;        // page-locked host batches (CUDA training)
};

class TrainingData {
 public:
  // Opens and checks the shards (channels, stored sizes, labels), naming the folder and the key to change.
  explicit TrainingData(const TrainingDataOptions& options);

  // This rank's slice of the next global batch, on `device`: hr, plus lowres and labels where the stage
  // uses them; `indices` receives the global sample index of each row (the noise streams are keyed by it).
  StageBatch next(Device device, std::vector<int64_t>& indices);
  data::LoaderCursor cursor() const { return loader_->cursor(); }
  void restore(const data::LoaderCursor& c) { loader_->restore(c); }

  // The first validation_count samples of data.val_dir, on the CPU (hr undefined when there are none), and
  // a title per image for the grids (its class name, when the set has labels).
  const StageBatch& validation() const { return validation_; }
  const std::vector<std::string>& validation_titles() const { return validation_titles_; }

  // What the data is, recorded in checkpoints: its sample count and the CRC-32C of its index.json.
  int64_t samples() const { return samples_; }
  int64_t index_crc32c() const { return index_crc32c_; }

 private:
  TrainingDataOptions o_;
  std::unique_ptr<data::Loader> loader_;
  StageBatch validation_;
  std::vector<std::string> validation_titles_;
  int64_t samples_ = 0, index_crc32c_ = 0;
};

}  // namespace iris::diffusion
