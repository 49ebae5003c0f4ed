// Creating a study from the image sets Iris wrote: the methods' outputs and the truth they are compared
// with, checked to belong together, cached as PNGs in the study folder.
//
// A method is "NAME=PATH[:DATASET]" (or PATH[:DATASET], named after PATH's folder), PATH one of
//   samples.h5 (`iris sample`)    its `images`; the truth is its `truth`, the input its `lowres`
//   cascade.h5 (`iris cascade`)   its last stage, `stage_<k>` (PATH:stage_<i> for another); truth, lowres as above
//   another HDF5 file             its `images` (e.g. `iris eval --save-bicubic`'s), or PATH:DATASET
//   a shard folder                its `images`, or PATH:lowres_<h>
// The truth is --truth (an HDF5 file: its `truth` or `images`, or PATH:DATASET; a shard folder, whose rows
// are the methods' `indices` when they carry them), else the `truth` of the first method that has one. Every
// method whose file carries a truth must carry the same images (byte for byte): two methods sampled from
// different inputs cannot share a study, and the error names the file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image.h"
#include "tools/rate/study.h"

namespace iris::rate {

struct CreateOptions {
  std::vector<std::string> methods;  // "NAME=PATH[:DATASET]" or "PATH[:DATASET]"
  std::string truth;                 // empty: the methods' own truth
  int64_t count = -1;                // the first `count` images; -1: all (the methods must agree on how many)
  int64_t images_per_method = -1;    // trials per method per rater; -1: every image
  uint64_t seed = 0;
  int view_ms = 3000;
  int display_px = 0;  // 0: chosen from the image size (see auto_display_px)
  bool show_input = false;
  std::string token_hash;  // token.h; empty: none
};

// "NAME=PATH[:DATASET]" -> {NAME, PATH[:DATASET]}; without "NAME=", the name is PATH's parent folder's name
// (out/sr3/samples.h5 -> "sr3") or, for a shard folder, its own name. Checks the name (study.h).
std::pair<std::string, std::string> parse_method_arg(const std::string& arg);

// Writes a PNG to `path` (creating its folder) through a temporary file and a rename: a killed writer leaves
// the old file or none, never half a picture.
void write_png_atomic(const std::string& path, const data::Image& img);

// The longer side on the page: small images are enlarged by a whole factor to at least 256 CSS pixels (each
// source pixel a sharp square), large ones shown at up to 512.
int auto_display_px(int height, int width);

// Reads and checks every set, writes DIR/images/... and then DIR/study.json (last: a folder without it is not
// a study, so an interrupted creation is simply redone). Refuses a folder that already holds a study.
StudyConfig create_study(const std::string& dir, const CreateOptions& o,
                         const std::function<void(const std::string&)>& say);

}  // namespace iris::rate
