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
  // Called after every shard and at the end of each split with (split, samples done, samples in split).
  std::function<void(const std::string&, int64_t, int64_t)> progress;
};

// Writes <out_dir>/train and <out_dir>/test shard folders (28x28x1 images, labels, class names).
void write_fashion_mnist_shards(const std::string& src_dir, const std::string& out_dir,
                                const FashionMnistShardOptions& options = {});

}  // namespace iris::data
