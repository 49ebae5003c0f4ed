#include "diffusion/train_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/image.h"
#include "data/resize.h"
#include "framework/core/generator.h"
#include "framework/core/philox.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

namespace {

// Philox block of a sample's stream (seed, stream_id(epoch, index)) that each draw of the data pipeline
// reads: distinct, so that the flip and the crop are independent.
constexpr uint64_t kFlipBlock = 0x5eed;
constexpr uint64_t kCropBlock = 0xc409;

// Multiply-shift maps a 32-bit word onto [0, n) (bias below 2^-20 for image-sized n).
int pick(uint32_t r, int n) {
  return static_cast<int>((static_cast<uint64_t>(r) * static_cast<uint64_t>(n)) >> 32);
}

void check_window_geometry(int height, int width, int size, int align) {
  IRIS_CHECK(size > 0 && align > 0 && size <= height && size <= width && height % align == 0 &&
                 width % align == 0 && size % align == 0,
             "crop window: ", size, "x", size, " aligned to ", align, " does not fit a ", height, "x", width,
             " image");
}

// Centre crops (the patch-training validation batch) of u8 [n, H, W, C].
Tensor center_crops(const Tensor& u8, const CropWindow& w) {
  std::vector<data::Image> images = data::unstack_images(u8);
  for (auto& im : images) im = data::crop(im, w.top, w.left, w.size, w.size);
  return data::stack_images(images);
}

}  // namespace

CropWindow random_crop_window(int height, int width, int size, int align, uint64_t seed, int64_t epoch,
                              int64_t index) {
  check_window_geometry(height, width, size, align);
  const philox::Block b = philox::block(
      seed, Generator::stream_id(static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)), kCropBlock);
  return {align * pick(b.v[0], (height - size) / align + 1), align * pick(b.v[1], (width - size) / align + 1),
          size};
}

CropWindow center_crop_window(int height, int width, int size, int align) {
  check_window_geometry(height, width, size, align);
  return {align * ((height - size) / align / 2), align * ((width - size) / align / 2), size};
}

void crop_sample(data::Sample& s, const CropWindow& w) {
  const int H = s.image.height;
  for (auto& l : s.lowres) {
    IRIS_CHECK(l.height > 0 && H % l.height == 0, "crop_sample: a ", l.str(), " low-res copy of a ",
               s.image.str(), " image is not an integer factor smaller");
    const int f = H / l.height;
    IRIS_CHECK(w.top % f == 0 && w.left % f == 0 && w.size % f == 0, "crop_sample: the window ", w.size, "x",
               w.size, " at (", w.top, ", ", w.left, ") is not aligned to the low-res copy's factor ", f);
    l = data::crop(l, w.top / f, w.left / f, w.size / f, w.size / f);
  }
  s.image = data::crop(s.image, w.top, w.left, w.size, w.size);
}

TrainingData::TrainingData(const TrainingDataOptions& options) : o_(options) {
  const DataSettings& d = o_.data;
  IRIS_CHECK(o_.batch_size % o_.world == 0, "train.batch_size ", o_.batch_size,
             " does not divide evenly over ", o_.world, " ranks");
  data::ShardSet set = data::ShardSet::open(d.dir, {.verify_on_first_read = true});
  samples_ = set.size();
  {
    // What the data is, for checkpoints: a resume on other data is worth a warning.
    std::ifstream f((fs::path(d.dir) / "index.json").string(), std::ios::binary);
    const std::string index((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    index_crc32c_ = h5::crc32c(index.data(), index.size());
  }
  const data::ShardSpec& spec = set.spec();
  IRIS_CHECK(spec.channels == d.channels, "data.channels is ", d.channels, " but the shards in '", d.dir,
             "' have ", spec.channels, " channels");
  auto has_lowres = [&](int h) {
    return std::find(spec.lowres_sizes.begin(), spec.lowres_sizes.end(), h) != spec.lowres_sizes.end();
  };
  IRIS_CHECK(spec.height == d.image_size || has_lowres(d.image_size), "data.image_size ", d.image_size,
             " matches neither the shards' images (", spec.height, ") nor a stored low-res size in '", d.dir,
             "'; re-shard with --lowres ", d.image_size);
  const bool hr_from_lowres = spec.height != d.image_size;
  std::vector<int> lowres_sizes;
  if (hr_from_lowres) lowres_sizes.push_back(d.image_size);
  if (o_.super_resolution) {
    IRIS_CHECK(has_lowres(d.lowres_size), "data.lowres_size ", d.lowres_size,
               " is not stored in the shards of '", d.dir, "' (they have ", spec.lowres_sizes.size(),
               " low-res sizes); re-shard with --lowres ", d.lowres_size);
    if (!hr_from_lowres || d.lowres_size != d.image_size) lowres_sizes.push_back(d.lowres_size);
  }
  // Patch training: the crops' size and alignment, checked against the images they are cut from.
  const int crop = d.crop_size;
  int align = 1;
  IRIS_CHECK(crop >= 0, "data.crop_size must be >= 0 (0: whole images), got ", crop);
  if (crop > 0) {
    const int width = hr_from_lowres ? spec.lowres_width(d.image_size) : spec.width;
    IRIS_CHECK(crop <= d.image_size && crop <= width, "data.crop_size ", crop,
               " is larger than the images it is cut from: ", d.image_size, "x", width, " in '", d.dir, "'",
               hr_from_lowres ? " (their stored low-res copy of data.image_size)" : "");
    if (o_.super_resolution) {
      IRIS_CHECK(d.image_size % d.lowres_size == 0,
                 "data.crop_size needs an integer scale factor between the images and their low-res copies, "
                 "but data.image_size / data.lowres_size is ",
                 d.image_size, " / ", d.lowres_size);
      align = d.image_size / d.lowres_size;
      IRIS_CHECK(crop % align == 0, "data.crop_size ", crop, " is not a multiple of the scale factor ", align,
                 " (data.image_size ", d.image_size, " / data.lowres_size ", d.lowres_size,
                 "): its low-res crop would not cover the same region");
      IRIS_CHECK(width % align == 0, "the images in '", d.dir, "' are ", width,
                 " pixels wide, not a multiple of the scale factor ", align);
    }
  }
  data::LoaderOptions lo;
  lo.batch_size = o_.batch_size;
  lo.rank = o_.rank;
  lo.world_size = o_.world;
  lo.seed = o_.seed;
  lo.lowres_sizes = lowres_sizes;
  lo.prefetch = d.prefetch;
  lo.pin_memory = o_.pin_memory;
  const bool hflip = d.hflip;
  lo.augment = [hr_from_lowres, hflip, crop, align](data::Sample& s, const data::AugmentContext& ctx) {
    if (hr_from_lowres) s.image = s.lowres.front();
    if (crop > 0)
      crop_sample(
          s, random_crop_window(s.image.height, s.image.width, crop, align, ctx.seed, ctx.epoch, ctx.index));
    if (hflip &&
        (philox::block(ctx.seed, Generator::stream_id(ctx.epoch, ctx.index), kFlipBlock).v[0] & 1u)) {
      s.image = data::hflip(s.image);
      for (auto& l : s.lowres) l = data::hflip(l);
    }
  };
  loader_ = std::make_unique<data::Loader>(set, lo);

  // The fixed validation batch: the first validation_count samples of the validation set.
  data::ShardSet vset =
      d.val_dir == d.dir ? set : data::ShardSet::open(d.val_dir, {.verify_on_first_read = true});
  if (o_.num_classes > 0) {  // a bad label would index past the class embedding, or hit its null class
    try {
      for (const data::ShardSet* s : {&set, &vset})
        if (s->spec().has_labels) s->check_labels(o_.num_classes);
    } catch (const Error& e) {
      IRIS_THROW(e.message(), " (model.num_classes is ", o_.num_classes, ")");
    }
  }
  const int64_t nval = std::min<int64_t>(o_.validation_count, vset.size());
  if (nval > 0) {
    Tensor hr = hr_from_lowres ? vset.lowres(d.image_size, 0, nval) : vset.images(0, nval);
    Tensor lowres = o_.super_resolution ? vset.lowres(d.lowres_size, 0, nval) : Tensor();
    if (crop > 0) {  // the centred window of each, the same region in the low-res copy
      const auto H = static_cast<int>(hr.size(1)), W = static_cast<int>(hr.size(2));
      IRIS_CHECK(crop <= H && crop <= W && W % align == 0, "data.crop_size ", crop, " does not fit the ", H,
                 "x", W, " validation images in '", d.val_dir, "'");
      const CropWindow w = center_crop_window(H, W, crop, align);
      hr = center_crops(hr, w);
      if (lowres.defined()) lowres = center_crops(lowres, {w.top / align, w.left / align, w.size / align});
    }
    validation_.hr = data::u8_to_float(hr);
    if (lowres.defined()) validation_.lowres = data::u8_to_float(lowres);
    if (vset.spec().has_labels) {
      validation_.labels = vset.labels(0, nval).to(DType::i64);
      for (int64_t l : validation_.labels.to_vector<int64_t>())
        validation_titles_.push_back(static_cast<size_t>(l) < vset.spec().class_names.size()
                                         ? vset.spec().class_names[l]
                                         : std::to_string(l));
    }
  }
}

StageBatch TrainingData::next(Device device, std::vector<int64_t>& indices) {
  data::Batch b = loader_->next();
  StageBatch out;
  out.hr = b.hr.to(device);
  if (o_.super_resolution)
    for (size_t i = 0; i < b.lowres_sizes.size(); ++i)
      if (b.lowres_sizes[i] == o_.data.lowres_size) out.lowres = b.lowres[i].to(device);
  if (b.labels.defined() && o_.num_classes > 0) out.labels = b.labels.to(DType::i64).to(device);
  indices = std::move(b.indices);
  return out;
}

}  // namespace iris::diffusion
