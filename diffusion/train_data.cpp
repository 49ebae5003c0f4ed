#include "diffusion/train_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/image.h"
#include "data/resize.h"
#include "framework/core/philox.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

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
  data::LoaderOptions lo;
  lo.batch_size = o_.batch_size;
  lo.rank = o_.rank;
  lo.world_size = o_.world;
  lo.seed = o_.seed;
  lo.lowres_sizes = lowres_sizes;
  lo.prefetch = d.prefetch;
  lo.pin_memory = o_.pin_memory;
  const bool hflip = d.hflip;
  lo.augment = [hr_from_lowres, hflip](data::Sample& s, const data::AugmentContext& ctx) {
    if (hr_from_lowres) s.image = s.lowres.front();
    if (hflip && (philox::block(ctx.seed, Generator::stream_id(ctx.epoch, ctx.index), 0x5eed).v[0] & 1u)) {
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
    validation_.hr =
        data::u8_to_float(hr_from_lowres ? vset.lowres(d.image_size, 0, nval) : vset.images(0, nval));
    if (o_.super_resolution) validation_.lowres = data::u8_to_float(vset.lowres(d.lowres_size, 0, nval));
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
