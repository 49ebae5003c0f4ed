// Folders of image files (the ImageNet layout: one subfolder per class) converted to shard folders for
// super-resolution: square crops at the training size, antialiased bicubic low-resolution copies, a
// deterministic train/val split, decoded by parallel worker threads, written in a fixed order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image.h"

namespace iris::data {

// ---- listing ------------------------------------------------------------------------------------------
struct ImageFile {
  std::string path;
  int32_t label = -1;  // index into ImageFolder::class_names; -1 for an unlabelled folder
};

struct ImageFolder {
  std::string root;
  std::vector<std::string> class_names;  // sorted subfolder names; empty for an unlabelled folder
  std::vector<ImageFile> files;          // class by class, paths sorted within a class
  int64_t ignored = 0;                   // files with other extensions (not images by name)
};

// True for names ending in .png, .jpg or .jpeg, in any case.
bool is_image_file_name(const std::string& name);

// Lists `root`: when it has subfolders, each is a class (labels follow the sorted folder names) and its
// image files are found at any depth below it; image files directly in root are then ignored (counted). A
// root without subfolders is one unlabelled set of the images in it. Names starting with '.' are skipped.
// Throws naming the folder when it does not exist or holds no image file.
ImageFolder scan_image_folder(const std::string& root);

// ---- crops --------------------------------------------------------------------------------------------
enum class CropMode {
  center,   // resize (bicubic, antialiased) so that the short side is `size`, then the centred square
  largest,  // the largest centred square, area-resampled to size x size (SR3 on ImageNet)
  // No crop: the whole image resampled to height `size`, its width in proportion (rounded to a multiple of
  // what the low-res sizes need), for scoring super-resolution of photographs at their own aspect. Every
  // image of a set must then come out the same size (shard photographs of other aspects separately).
  none,
};
CropMode crop_mode_from_name(const std::string& name);  // "center", "largest", "none"
const char* crop_mode_name(CropMode mode);

// A size x size square of `img` (any size; smaller images are upsampled). Not for CropMode::none.
Image square_crop(const Image& img, int size, CropMode mode);
// CropMode::none: `img` resampled to height `height` and the width in proportion, rounded to the nearest
// positive multiple of `width_multiple` (area resampling when it shrinks, else bicubic).
Image aspect_resize(const Image& img, int height, int width_multiple);
// The width multiple that makes every low-res copy (height h of `lowres`, width h * W / height) whole pixels.
int lowres_width_multiple(int height, const std::vector<int>& lowres);

// ---- split --------------------------------------------------------------------------------------------
// Indices into folder.files. Per class, a seeded shuffle; the first round(val_fraction * n_class) files go
// to val, the rest to train; each list is then shuffled as a whole, so that shards mix classes. A pure
// function of (file list, fraction, seed), the same on every platform.
struct FolderSplit {
  std::vector<int64_t> train, val;
};
FolderSplit split_image_folder(const ImageFolder& folder, double val_fraction, uint64_t seed);

// ---- conversion ---------------------------------------------------------------------------------------
struct ImageFolderShardOptions {
  int size = 0;                   // output images are size x size (CropMode::none: size high)
  std::vector<int> lowres_sizes;  // low-res copies (antialiased bicubic from the crop)
  CropMode crop = CropMode::center;
  int channels = 3;  // 3: RGB (grey files are replicated), 1: grey (luma)
  double val_fraction = 0.05;
  uint64_t seed = 0;
  int threads = 0;  // decoding threads (0: all cores)
  int64_t samples_per_shard = 1000;
  bool overwrite = false;  // replace existing sets in <out>/train and <out>/val
  bool strict = false;     // an unreadable image is an error (else it is reported and skipped)
  // Files whose header claims more pixels are refused before decoding (a corrupt or hostile header would
  // otherwise allocate gigabytes per decoding thread).
  int64_t max_pixels = kDefaultMaxImagePixels;
  // Called on the calling thread, in file order: after each file (done, total), and for each skipped file.
  std::function<void(int64_t, int64_t)> progress;
  std::function<void(const std::string& path, const std::string& error)> on_skip;
};

struct ImageFolderShardReport {
  std::vector<std::string> class_names;
  int64_t train = 0, val = 0;  // samples written
  int64_t skipped = 0;         // unreadable files
  int64_t upscaled = 0;        // files smaller than the crop, upsampled
  int64_t ignored = 0;         // files that are not images by name
};

// Writes <out_dir>/train (and <out_dir>/val unless it gets no file) with the folder's class names and a
// source naming `src`. Samples appear in the split's shuffled order. Memory: one shard per split plus a
// window of decoded images.
ImageFolderShardReport write_image_folder_shards(const std::string& src, const std::string& out_dir,
                                                 const ImageFolderShardOptions& options);
// The same for a folder already listed by scan_image_folder.
ImageFolderShardReport write_image_folder_shards(const ImageFolder& folder, const std::string& out_dir,
                                                 const ImageFolderShardOptions& options);

}  // namespace iris::data
