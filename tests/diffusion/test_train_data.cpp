// The training data of a stage with patch training (data.crop_size): crop windows drawn per sample from its
// Philox stream (the same for the same seed, epoch and index, whatever the ranks; a restored cursor repeats
// them), aligned to the scale factor so that the low-res crop is the stored low-res pixels of the same
// region, centred windows for the validation batch, and the errors of a crop that cannot be cut.
#include <set>

#include "data/resize.h"
#include "data/shard.h"
#include "diffusion/sampling_inputs.h"
#include "diffusion/stage.h"
#include "diffusion/train_data.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::diffusion;
using iris::test::check_throws_with;
using iris::test::TempDir;

namespace {

// Images whose every pixel is random, so that a crop's content tells where it was cut.
data::Image noise_image(int h, int w, int c, uint64_t seed) {
  data::Image im(h, w, c);
  Generator g(seed);
  const auto v =
      rand({static_cast<int64_t>(im.size())}, g, DType::f32, Device::cpu(), 0.0, 256.0).to_vector<float>();
  for (size_t i = 0; i < im.size(); ++i) im.pixels[i] = static_cast<uint8_t>(std::min(255.0f, v[i]));
  return im;
}

// n samples of h x w (RGB) with one low-res copy of height h / 4 (bicubic, as `iris shard images` makes it).
void write_shards(const std::string& dir, int n, int h, int w) {
  data::ShardSpec spec;
  spec.height = h;
  spec.width = w;
  spec.channels = 3;
  spec.lowres_sizes = {h / 4};
  data::ShardWriter writer(dir, spec, {.samples_per_shard = 16});
  for (int i = 0; i < n; ++i) writer.add(noise_image(h, w, 3, 100 + i));
  writer.finish();
}

TrainingDataOptions crop_options(const std::string& dir, int crop, int64_t batch = 8) {
  DataSettings d;
  d.dir = d.val_dir = dir;
  d.image_size = 32;
  d.lowres_size = 8;
  d.channels = 3;
  d.crop_size = crop;
  d.prefetch = 1;
  return {.data = d, .batch_size = batch, .seed = 5, .super_resolution = true, .validation_count = 3};
}

// The rows of a batch as u8 images.
std::vector<data::Image> rows_of(const Tensor& x) {
  return data::unstack_images(data::float_to_u8(x));
}

bool same_batch(const StageBatch& a, const StageBatch& b) {
  return rows_of(a.hr) == rows_of(b.hr) && rows_of(a.lowres) == rows_of(b.lowres);
}

Config crop_config(int crop, int image = 32, int lowres = 8) {
  Config c;
  for (const std::string s : {"model.task=sr3", "model.in_channels=6", "model.out_channels=3",
                              "model.base_channels=8", "model.channel_mults=1,2", "model.num_res_blocks=1",
                              "model.attention_resolutions=4", "model.norm_groups=4", "data.channels=3"})
    c.set(s);
  c.set("model.resolution=" + std::to_string(crop));
  c.set("data.crop_size=" + std::to_string(crop));
  c.set("data.image_size=" + std::to_string(image));
  c.set("data.lowres_size=" + std::to_string(lowres));
  return c;
}

}  // namespace

TEST_CASE("random_crop_window is a pure function of seed, epoch and index, aligned and uniform") {
  const CropWindow w = random_crop_window(16, 24, 8, 4, 7, 2, 11);
  CHECK(w == random_crop_window(16, 24, 8, 4, 7, 2, 11));
  // Every aligned offset occurs (tops 0, 4, 8; lefts 0, 4, ..., 16), and nothing else.
  std::set<std::pair<int, int>> seen;
  for (int64_t i = 0; i < 600; ++i) {
    const CropWindow r = random_crop_window(16, 24, 8, 4, 7, 0, i);
    REQUIRE(r.size == 8);
    REQUIRE(r.top % 4 == 0);
    REQUIRE(r.left % 4 == 0);
    REQUIRE(r.top + 8 <= 16);
    REQUIRE(r.left + 8 <= 24);
    seen.insert({r.top, r.left});
  }
  CHECK(seen.size() == 15);
  // Another seed or epoch moves the windows.
  int moved_seed = 0, moved_epoch = 0;
  for (int64_t i = 0; i < 50; ++i) {
    moved_seed += !(random_crop_window(16, 24, 8, 4, 8, 0, i) == random_crop_window(16, 24, 8, 4, 7, 0, i));
    moved_epoch += !(random_crop_window(16, 24, 8, 4, 7, 1, i) == random_crop_window(16, 24, 8, 4, 7, 0, i));
  }
  CHECK(moved_seed > 30);
  CHECK(moved_epoch > 30);
  // The whole image is the only window of its own size.
  CHECK(random_crop_window(16, 16, 16, 4, 7, 0, 3) == CropWindow{0, 0, 16});
}

TEST_CASE("center_crop_window rounds the centred offsets down to the alignment, and bad windows throw") {
  CHECK(center_crop_window(32, 24, 8, 4) == CropWindow{12, 8, 8});
  CHECK(center_crop_window(32, 24, 8, 1) == CropWindow{12, 8, 8});
  CHECK(center_crop_window(20, 20, 8, 4) == CropWindow{4, 4, 8});  // (20 - 8) / 2 = 6 -> 4
  CHECK(center_crop_window(20, 20, 8, 2) == CropWindow{6, 6, 8});
  check_throws_with([] { (void)center_crop_window(16, 12, 16, 4); }, {"16x16", "12 image"});
  check_throws_with([] { (void)random_crop_window(16, 16, 6, 4, 0, 0, 0); }, {"6x6 aligned to 4"});
}

TEST_CASE(
    "crop_sample cuts every low-res copy at the same region, which equals the area downsample of the crop") {
  const data::Image hr = noise_image(32, 24, 3, 1);
  data::Sample s;
  s.image = hr;
  // An exact integer-factor downsample (block means): cropping it at aligned offsets and downsampling the
  // high-res crop give the same pixels.
  s.lowres = {data::resize(hr, 8, 6, data::Filter::area), data::resize(hr, 16, 12, data::Filter::area)};
  const CropWindow w{12, 8, 8};
  crop_sample(s, w);
  CHECK(s.image == data::crop(hr, 12, 8, 8, 8));
  CHECK(s.lowres[0] == data::resize(s.image, 2, 2, data::Filter::area));
  CHECK(s.lowres[1] == data::resize(s.image, 4, 4, data::Filter::area));
  CHECK(s.lowres[0] == data::crop(data::resize(hr, 8, 6, data::Filter::area), 3, 2, 2, 2));
  // A window that the factor does not divide cannot be cut exactly.
  data::Sample t;
  t.image = hr;
  t.lowres = {data::resize(hr, 8, 6, data::Filter::area)};
  check_throws_with([&] { crop_sample(t, {2, 0, 8}); }, {"not aligned", "factor 4"});
}

TEST_CASE(
    "patch training: each row is an aligned crop of its image and the low-res crop is the same region") {
  TempDir dir("crop-data");
  write_shards(dir.file("set"), 40, 32, 24);  // not square: crops only need to fit
  const data::ShardSet set = data::ShardSet::open(dir.file("set"));
  TrainingData data(crop_options(dir.file("set"), 8));
  std::set<std::pair<int, int>> windows;
  for (int step = 0; step < 3; ++step) {
    std::vector<int64_t> idx;
    const StageBatch b = data.next(Device::cpu(), idx);
    REQUIRE(b.hr.shape() == Shape{8, 8, 8, 3});
    REQUIRE(b.lowres.shape() == Shape{8, 2, 2, 3});
    const auto hr = rows_of(b.hr), lr = rows_of(b.lowres);
    for (size_t r = 0; r < idx.size(); ++r) {
      const data::Image full = set.image(idx[r]);
      // Where the crop came from, by content (random pixels: one place fits).
      std::vector<std::pair<int, int>> at;
      for (int y = 0; y + 8 <= 32; ++y)
        for (int x = 0; x + 8 <= 24; ++x)
          if (data::crop(full, y, x, 8, 8) == hr[r]) at.push_back({y, x});
      REQUIRE(at.size() == 1);
      const auto [top, left] = at[0];
      CHECK(top % 4 == 0);
      CHECK(left % 4 == 0);
      CHECK(lr[r] == data::crop(set.lowres(idx[r], 8), top / 4, left / 4, 2, 2));
      // The window is the sample's own draw.
      CHECK(random_crop_window(32, 24, 8, 4, 5, 0, idx[r]) == CropWindow{top, left, 8});
      windows.insert(at[0]);
    }
  }
  CHECK(windows.size() > 6);  // the windows move (15 possible)
}

TEST_CASE(
    "patch training: the crops depend on the seed and the sample, not on the ranks, and a cursor repeats "
    "them") {
  TempDir dir("crop-ranks");
  write_shards(dir.file("set"), 40, 32, 32);
  const std::string set = dir.file("set");
  TrainingData one(crop_options(set, 16));
  TrainingData again(crop_options(set, 16));
  TrainingDataOptions r0 = crop_options(set, 16), r1 = crop_options(set, 16);
  r0.world = r1.world = 2;
  r1.rank = 1;
  TrainingData rank0(r0), rank1(r1);
  std::vector<int64_t> idx, i0, i1;
  std::vector<StageBatch> batches;
  data::LoaderCursor after_first;
  for (int step = 0; step < 6; ++step) {  // 5 batches an epoch: crosses into epoch 1
    const StageBatch a = one.next(Device::cpu(), idx);
    if (step == 0) after_first = one.cursor();
    CHECK(same_batch(a, again.next(Device::cpu(), idx)));
    const StageBatch b0 = rank0.next(Device::cpu(), i0), b1 = rank1.next(Device::cpu(), i1);
    StageBatch joined;
    joined.hr = cat({b0.hr, b1.hr}, 0);
    joined.lowres = cat({b0.lowres, b1.lowres}, 0);
    CHECK(same_batch(a, joined));
    batches.push_back(a);
  }
  // A fresh reader restored to the cursor after the first batch continues with the same crops.
  TrainingData resumed(crop_options(set, 16));
  resumed.restore(after_first);
  for (int step = 1; step < 6; ++step) CHECK(same_batch(batches[step], resumed.next(Device::cpu(), idx)));
  // Another seed cuts other crops of the same samples.
  TrainingDataOptions other = crop_options(set, 16);
  other.seed = 6;
  TrainingData reseeded(other);
  const StageBatch c = reseeded.next(Device::cpu(), idx);
  CHECK(!same_batch(batches[0], c));
}

TEST_CASE("patch training: the validation batch holds the centred crops") {
  TempDir dir("crop-val");
  write_shards(dir.file("set"), 10, 32, 24);
  const data::ShardSet set = data::ShardSet::open(dir.file("set"));
  TrainingData data(crop_options(dir.file("set"), 8));
  const StageBatch& v = data.validation();
  REQUIRE(v.hr.shape() == Shape{3, 8, 8, 3});
  REQUIRE(v.lowres.shape() == Shape{3, 2, 2, 3});
  const auto hr = rows_of(v.hr), lr = rows_of(v.lowres);
  for (int i = 0; i < 3; ++i) {
    CHECK(hr[i] == data::crop(set.image(i), 12, 8, 8, 8));  // (32 - 8) / 2 = 12, (24 - 8) / 2 = 8
    CHECK(lr[i] == data::crop(set.lowres(i, 8), 3, 2, 2, 2));
  }
}

TEST_CASE("patch training: crops that cannot be cut are refused naming the key") {
  TempDir dir("crop-errors");
  write_shards(dir.file("set"), 8, 32, 12);
  check_throws_with([&] { TrainingData d(crop_options(dir.file("set"), 16)); },
                    {"data.crop_size 16", "larger than the images", "32x12", dir.file("set")});
  check_throws_with([&] { TrainingData d(crop_options(dir.file("set"), 6)); },
                    {"data.crop_size 6", "not a multiple of the scale factor 4"});
  check_throws_with([&] { TrainingData d(crop_options(dir.file("set"), -2)); }, {"data.crop_size", ">= 0"});
  // The stage's side: the U-Net works on the crops, which must fit the images and the scale factor.
  Generator g(0);
  CHECK_NOTHROW(Stage(crop_config(16), g));
  check_throws_with([&] { Stage s(crop_config(48), g); },
                    {"data.crop_size 48", "larger", "data.image_size 32"});
  check_throws_with([&] { Stage s(crop_config(6), g); },
                    {"data.crop_size 6", "not a multiple of the scale factor 4", "4 or 8 would"});
  check_throws_with([&] { Stage s(crop_config(16, 32, 12), g); }, {"integer scale factor", "32 / 12"});
  Config mismatch = crop_config(16);
  mismatch.set("model.resolution=32");
  check_throws_with([&] { Stage s(mismatch, g); }, {"model.resolution (32) must equal data.crop_size (16)"});
}

TEST_CASE("a stage trained on crops super-resolves by its crops' factor at any input size") {
  Generator g(0);
  const Stage st(crop_config(16), g);  // 32 from 8: x4, so 16x16 crops come from 4x4 ones
  CHECK(st.crop_trained());
  CHECK(st.lowres_resolution() == 4);
  SampleSettings s = st.default_sample_settings();
  s.steps = 2;
  s.sampler = "ddim";
  s.schedule = "cosine";
  Generator noise(1);
  StageBatch fits, larger;
  fits.lowres = Tensor::zeros({1, 4, 4, 3});
  larger.lowres = Tensor::zeros({1, 8, 6, 3});
  CHECK(st.sample(fits, 1, noise, s).shape() == Shape{1, 16, 16, 3});
  // x4 as its crops were (16 from 4), not 16/8 = x2 as data.lowres_size would say: any-size inference.
  CHECK(st.output_size(8, 6) == std::pair<int64_t, int64_t>{32, 24});
  CHECK(st.sample(larger, 1, noise, s).shape() == Shape{1, 32, 24, 3});
  Config whole = crop_config(16);
  whole.set("data.crop_size=0");
  whole.set("data.image_size=16");
  whole.set("data.lowres_size=4");
  const Stage plain(whole, g);
  CHECK(!plain.crop_trained());
  CHECK(plain.lowres_resolution() == 4);
}

TEST_CASE("shard_output_sizes follows the chain's factors, not the crop-trained stages' resolutions") {
  // The truth `iris sample`, `iris cascade` and `iris sweep` ask a shard set for: what the chain makes from
  // its low-res images at the first stage's data.lowres_size. A stage trained on 16x16 crops of 32x32 images
  // (8x8 low-res: x4) makes 32x32 images from the shard's 8x8 ones; its resolution (16) is the wrong size.
  Generator g(0);
  const Stage crop(crop_config(16), g);
  CHECK(crop.resolution() == 16);
  CHECK(shard_output_sizes(std::vector<const Stage*>{&crop}) == std::vector<int64_t>{32});
  CHECK(shard_output_size(std::vector<const Stage*>{&crop}) == 32);
  // Whole-image stage 4 -> 16, then the crop-trained x4 stage: 16 -> 64 (any-size inference in a cascade).
  Config whole = crop_config(16);
  whole.set("data.crop_size=0");
  whole.set("data.image_size=16");
  whole.set("data.lowres_size=4");
  const Stage first(whole, g);
  CHECK(shard_output_sizes(std::vector<const Stage*>{&first, &crop}) == std::vector<int64_t>{16, 64});
  // A base first stage makes its resolution from nothing; the SR stage after it multiplies that.
  Config base = crop_config(16);
  for (const std::string s : {"model.task=base", "model.in_channels=3", "data.crop_size=0", "data.image_size=16",
                              "model.resolution=16", "data.lowres_size=0"})
    base.set(s);
  const Stage b(base, g);
  CHECK(shard_output_sizes(std::vector<const Stage*>{&b, &first}) == std::vector<int64_t>{16, 64});
  CHECK_THROWS_AS(shard_output_sizes(std::vector<const Stage*>{}), Error);
}
