// Fashion-MNIST (Xiao et al. 2017): 70,000 28x28 grey images of 10 clothing classes, in the IDX format
// (big-endian header, then bytes), gzip-compressed as shipped by the Debian package dataset-fashion-mnist:
//   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz  (60,000)
//   t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz   (10,000)
// and conversion of the two splits into shard folders (shard.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/shard.h"

namespace iris::data {

// The ten class names, in label order 0..9.
const std::vector<std::string>& fashion_mnist_classes();

// $IRIS_FASHION_MNIST_DIR when set, else the Debian package's location, /usr/share/datasets/fashion-mnist.
std::string default_fashion_mnist_dir();

struct IdxImages {
  int64_t count = 0;
  int rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // [count, rows, cols]
};

// IDX readers for gzip-compressed or plain files. They check the magic number (0x00000803 for images,
// 0x00000801 for labels) and that the data length matches the header exactly; errors name the file.
IdxImages read_idx_images(const std::string& path);
std::vector<uint8_t> read_idx_labels(const std::string& path);
// The dimensions in an IDX file's header ({count, rows, cols} for images, {count} for labels), reading only
// the header: cheap even for the 60,000-image file. Checks the magic number's type byte (unsigned bytes).
std::vector<int64_t> read_idx_shape(const std::string& path);

// The files of a split: "<dir>/train-images-idx3-ubyte.gz" etc. (split "test" reads the t10k files).
std::string fashion_mnist_images_file(const std::string& dir, const std::string& split);
std::string fashion_mnist_labels_file(const std::string& dir, const std::string& split);

struct FashionMnistSplit {
  IdxImages images;
  std::vector<uint8_t> labels;  // 0..9, one per image
};
// split: "train" or "test". Checks that the counts of images and labels agree and every label is < 10.
FashionMnistSplit load_fashion_mnist(const std::string& dir, const std::string& split);

struct FashionMnistShardOptions {
  std::vector<int> lowres_sizes;  // e.g. {7, 14}: made with the antialiased bicubic downsampler
  int64_t samples_per_shard = 10000;
  int64_t limit = -1;  // at most this many samples per split (-1: all)
  bool overwrite = false;
  // Called with (split, samples done, samples in split): with 0 once the split's files are read (before
  // anything is written), after every shard, at the end of the split, and also every progress_every
  // samples when that is positive (progress bars).
  std::function<void(const std::string&, int64_t, int64_t)> progress;
  int64_t progress_every = 0;
};

// What the shards of a split written from src_dir with these low-res sizes hold (reads only the IDX header):
// the image size, one channel, labels, the class names and a source naming the split and folder. With
// fashion_mnist_count, what a complete existing set must match to be the same conversion.
ShardSpec fashion_mnist_spec(const std::string& src_dir, const std::string& split,
                             const std::vector<int>& lowres_sizes);
// Samples a split gets with this limit (-1: all): min(limit, images in the file).
int64_t fashion_mnist_count(const std::string& src_dir, const std::string& split, int64_t limit);

// Writes one split ("train" or "test") into the shard folder out_split_dir, shards named "<split>-NNNNN.h5".
void write_fashion_mnist_split(const std::string& src_dir, const std::string& split,
                               const std::string& out_split_dir,
                               const FashionMnistShardOptions& options = {});
// Writes <out_dir>/train and <out_dir>/test shard folders (28x28x1 images, labels, class names).
void write_fashion_mnist_shards(const std::string& src_dir, const std::string& out_dir,
                                const FashionMnistShardOptions& options = {});

}  // namespace iris::data
