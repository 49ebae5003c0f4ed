// One reader for the image sets the iris commands take as "PATH[:DATASET]" (sample, eval, cas, fd, sweep):
//
//   an image file (PNG, JPEG)            one image, named by its file name
//   a folder of image files              its .png/.jpg/.jpeg files in sorted name order, named by file name
//   an HDF5 file                         a dataset of images [N, H, W, C] (C = 1 or 3; uint8, or floats in
//                                        [-1, 1] rounded as when saved to PNG): "images" unless PATH:NAME
//                                        names another (samples.h5:lowres, cascade.h5:stage_1); `labels` [N]
//                                        and the attribute class_names beside it when present
//   a shard folder (iris shard)          its images, or PATH:lowres_<h> for its low-res copies; its labels
//                                        and class names
//
// Images are read on demand (image(i), images(start, n)), so a large set costs memory only for what is read.
// Every error is an iris::Error starting with the options' `tool` ("eval: ...") and naming the path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/image.h"
#include "framework/core/tensor.h"

namespace iris::data {

// "PATH:NAME" -> {PATH, NAME} when PATH exists, NAME is not empty and the whole argument is not itself a
// path; else {arg, ""} (so a file whose name holds a ':' is still found).
std::pair<std::string, std::string> split_dataset(const std::string& arg);

// Every member has a default, so a designated initializer may name any of them ({.tool = "cas"}).
struct ImageSetOptions {
  std::string tool = "image set";  // the start of every error message ("eval", "cas", "--input-dir")
  std::string role{};              // "prediction", "reference", "low-res": said in messages when given
  // Without a DATASET, pick the set's low-res images (iris eval --lowres): a shard folder's only low-res
  // size, or an HDF5 file's only "lowres"/"lowres_<h>" dataset (several are an error asking for one).
  bool prefer_lowres = false;
};

class ImageSet {
 public:
  enum class Kind { image_file, image_folder, hdf5, shards };

  // Opens "PATH[:DATASET]" (see the top of this file).
  static ImageSet open(const std::string& spec, const ImageSetOptions& options = {});

  Kind kind() const;
  const std::string& spec() const;  // as given, for messages
  int64_t size() const;
  // Image i as stored (image files keep their own size and channels).
  Image image(int64_t i) const;
  // The name of image i: its file name for image files, "#i" otherwise.
  std::string name(int64_t i) const;
  bool named() const { return kind() == Kind::image_file || kind() == Kind::image_folder; }
  bool indexed() const { return kind() == Kind::hdf5 || kind() == Kind::shards; }
  // Images [start, start + count) as uint8 [count, H, W, C] (image files must share one size).
  Tensor images(int64_t start, int64_t count) const;
  Tensor all_images() const { return images(0, size()); }

  bool has_labels() const;
  std::vector<int64_t> labels() const;  // every label; empty without labels
  const std::vector<std::string>& class_names() const;

  // A folder's files named `names`, in that order (iris eval matches predictions to references by name);
  // throws listing the missing ones, calling the folder the `role` folder.
  ImageSet matching(const std::vector<std::string>& names, const std::string& role) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace iris::data
