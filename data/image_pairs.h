// Real low-/high-resolution image pairs (two folders of photographs of the same scenes, the low-res ones taken
// or degraded by whatever made them) converted to a shard set whose stored low-res copies are those images
// rather than resizes of the high-res ones. Training reads them as it reads any stored low-res copy
// (diffusion/train_data.h), patch training included.
//
// Pairing: a file of the high-res folder and a file of the low-res folder whose names agree without their
// extensions (and without a given suffix of the low-res name: DIV2K's "0001x4.png" pairs with "0001.png" under
// --lr-suffix x4). Every pair must have the same integer scale factor f >= 2 in both axes (high-res height and
// width = f x the low-res ones). A file without partner, two files with one name, a pair of another ratio,
// an unreadable file or one of another size are errors naming the file(s): a training set with a few silently
// dropped or misaligned pairs would be worse than none.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image.h"

namespace iris::data {

struct ImagePair {
  std::string name;    // the shared stem
  std::string hr, lr;  // paths
};

// The pairs of image files (.png, .jpg, .jpeg directly in each folder; hidden files skipped), in name order.
// Throws naming every file without partner (the first few of them and how many there are), and any two files
// of one folder that share a name.
std::vector<ImagePair> match_image_pairs(const std::string& hr_dir, const std::string& lr_dir,
                                         const std::string& lr_suffix = "");

struct PairShardOptions {
  // 0: every high-res image must have the same size, which the shards keep. S > 0: the centred S x S window
  // of each high-res image (offsets rounded down to multiples of f) and the same region of its low-res
  // partner, S / f square; S must be a multiple of f and fit every image.
  int size = 0;
  int channels = 3;  // 3: RGB (grey files are replicated), 1: grey (luma)
  std::string lr_suffix;
  int threads = 0;  // decoding threads (0: all cores)
  int64_t samples_per_shard = 1000;
  bool overwrite = false;  // replace a shard set already in the folder
  int64_t max_pixels = kDefaultMaxImagePixels;
  std::function<void(int64_t done, int64_t total)> progress;  // on the calling thread, in order
};

struct PairShardReport {
  int64_t pairs = 0;
  int factor = 0;             // high-res / low-res
  int height = 0, width = 0;  // of the stored high-res images
};

// Writes the pairs of hr_dir and lr_dir as one shard set in out_dir: `images` the high-res images and
// `lowres_<h>` their partners (h = height / factor), no labels, the source naming both folders. Nothing is
// written when a pair is wrong (every pair is checked first; memory: one image of each folder at a time for
// that pass, then one shard).
PairShardReport write_pair_shards(const std::string& hr_dir, const std::string& lr_dir,
                                  const std::string& out_dir, const PairShardOptions& options);

}  // namespace iris::data
