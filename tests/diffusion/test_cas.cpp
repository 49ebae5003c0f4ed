// The classifier behind the Classification Accuracy Score and the score itself: a classifier trained on
// images that carry their class scores high on fresh ones, one trained on shuffled labels scores near chance
// (the score can fail), runs are reproducible, and sets that disagree are named in the error.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "data/image.h"

#include "diffusion/cas.h"
#include "diffusion/classifier.h"
#include "diffusion/stage.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "tests/common/test_util.h"
#include "tests/diffusion/cas_test_util.h"

using namespace iris;
using namespace iris::diffusion;
using namespace iris::test;

namespace {

CasOptions quick() {
  CasOptions o;
  o.steps = 80;
  o.batch_size = 32;
  o.width = 8;
  o.warmup_steps = 10;
  o.log_every = 20;
  return o;
}

}  // namespace

TEST_CASE("classifier: stages halve the resolution down to 4 and the logits have one column per class") {
  ClassifierConfig c;
  c.resolution = 28;
  CHECK(c.stage_resolutions() == std::vector<int64_t>{28, 14, 7, 4});
  c.resolution = 8;
  CHECK(c.stage_resolutions() == std::vector<int64_t>{8, 4});
  c.resolution = 7;
  CHECK(c.stage_resolutions() == std::vector<int64_t>{7, 4});
  c.resolution = 28;
  c.channels = 3;
  c.num_classes = 7;
  c.width = 8;
  Generator init(3);
  Classifier m(c, init);
  const Tensor logits = m.forward(uniform({5, 28, 28, 3}, 4, -1, 1, DType::f32));
  CHECK(logits.shape() == Shape{5, 7});
  // stem + per stage (2 GN + 2 conv) + 3 downsampling convs (8 -> 16 -> 32 -> 64) + head GN + linear.
  const int64_t conv = 9;
  int64_t expect = (3 * conv + 1) * 8;
  for (int64_t w : {8, 16, 32, 64}) expect += 2 * (w * w * conv + w) + 2 * 2 * w;
  expect += (8 * 16 * conv + 16) + (16 * 32 * conv + 32) + (32 * 64 * conv + 64);
  expect += 2 * 64 + (64 * 7 + 7);
  CHECK(m.num_parameters() == expect);
  check_throws_with(
      [&] {
        (void)m.forward(uniform({1, 14, 14, 3}, 5, -1, 1, DType::f32));
      },
      {"classifier", "[N, 28, 28, 3]", "[1, 14, 14, 3]"});
  c.width = 12;
  check_throws_with([&] { Classifier bad(c, init); }, {"multiple of 8", "12"});
}

TEST_CASE(
    "cas: a classifier trained on images that show their class scores high, and near chance on shuffled "
    "labels") {
  const LabeledImages train = band_images(256, 8, 4, 1), real = band_images(200, 8, 4, 2);
  int64_t logs = 0;
  CasOptions o = quick();
  o.on_log = [&](int64_t step, double loss) {
    ++logs;
    CHECK(step % 20 == 0);
    CHECK(std::isfinite(loss));
  };
  const CasResult good = classification_accuracy_score(train, real, o);
  CHECK(logs == 4);
  CHECK(good.classes == 4);
  CHECK(good.train_count == 256);
  CHECK(good.test_count == 200);
  CHECK_FALSE(good.test_resized);
  CHECK(good.top1 >= 0.95);
  CHECK(good.train_top1 >= 0.95);
  CHECK(good.top5 == 1.0);  // fewer than 6 classes: the true class is always in the top 5
  REQUIRE(good.class_count == std::vector<int64_t>{50, 50, 50, 50});
  for (double a : good.class_top1) CHECK(a >= 0.8);

  // The same images with labels that say nothing about them: what the classifier learns does not transfer.
  LabeledImages noise = train;
  for (size_t i = 0; i < noise.labels.size(); ++i)
    noise.labels[i] = static_cast<int64_t>(philox::block(9, i, 0).v[0] % 4);
  o.on_log = nullptr;
  const CasResult bad = classification_accuracy_score(noise, real, o);
  MESSAGE("bands: top-1 " << good.top1 << "; shuffled labels: top-1 " << bad.top1);
  CHECK(bad.top1 < 0.45);
}

TEST_CASE("cas: reproducible from the seed, and real images of another size are resized") {
  const LabeledImages train = band_images(96, 8, 3, 1), real = band_images(60, 8, 3, 2);
  CasOptions o = quick();
  o.steps = 20;
  o.hflip = true;
  const CasResult a = classification_accuracy_score(train, real, o);
  const CasResult b = classification_accuracy_score(train, real, o);
  CHECK(a.final_loss == b.final_loss);
  CHECK(a.top1 == b.top1);
  o.seed = 1;
  CHECK(classification_accuracy_score(train, real, o).final_loss != a.final_loss);

  o = quick();
  const CasResult big = classification_accuracy_score(train, band_images(60, 16, 3, 2), o);
  CHECK(big.test_resized);
  CHECK(big.resolution == 8);
  CHECK(big.top1 >= 0.9);
}

TEST_CASE("cas: sets that disagree are named in the error") {
  const LabeledImages train = band_images(16, 8, 2, 1), real = band_images(8, 8, 2, 2);
  const CasOptions o = quick();
  LabeledImages rgb = band_images(8, 8, 2, 2, 3);
  rgb.what = "rgb.h5";
  check_throws_with([&] { (void)classification_accuracy_score(train, rgb, o); },
                    {"1 channel(s)", "rgb.h5", "3"});
  LabeledImages named = train, other = real;
  named.class_names = {"cat", "dog"};
  other.class_names = {"dog", "cat"};
  other.what = "real.h5";
  check_throws_with([&] { (void)classification_accuracy_score(named, other, o); },
                    {"name their classes differently", "real.h5"});
  LabeledImages beyond = real;
  beyond.labels[0] = 2;
  beyond.what = "beyond";
  check_throws_with([&] { (void)classification_accuracy_score(named, beyond, o); },
                    {"'beyond' has label 2", "2 named classes"});
  LabeledImages short_labels = train;
  short_labels.labels.pop_back();
  short_labels.what = "short";
  check_throws_with([&] { (void)classification_accuracy_score(short_labels, real, o); },
                    {"'short' has 16 images but 15 labels"});
  LabeledImages one = train;
  for (auto& l : one.labels) l = 0;
  LabeledImages one_real = real;
  for (auto& l : one_real.labels) l = 0;
  check_throws_with([&] { (void)classification_accuracy_score(one, one_real, o); }, {"only one class"});
}

TEST_CASE("a class-conditional base stage learns its classes: CAS of its samples is far above chance") {
  // The base stage of tests/diffusion/test_stage.cpp, trained on band images whose class is the band's place.
  Config c;
  for (const char* s :
       {"model.task=base", "model.resolution=8", "model.in_channels=1", "model.out_channels=1",
        "model.base_channels=16", "model.channel_mults=1,2", "model.num_res_blocks=1",
        "model.attention_resolutions=", "model.norm_groups=4", "model.num_classes=3", "data.image_size=8",
        "data.lowres_size=8", "data.channels=1", "diffusion.timesteps=100", "diffusion.schedule=cosine",
        "diffusion.sampler=dpmpp2m", "diffusion.sample_steps=10", "diffusion.sample_schedule=respaced",
        "diffusion.guidance_scale=2.0"})
    c.set(s);
  Generator init(0);
  Stage base(c, init);
  optim::AdamW opt(base.net().named_parameters(), 2e-3);
  const int64_t batch = 24;
  for (int step = 0; step < 300; ++step) {
    const LabeledImages d = band_images(batch, 8, 3, 1000 + static_cast<uint64_t>(step));
    StageBatch b;
    b.hr = data::u8_to_float(d.images);
    b.labels = Tensor::from_vector(d.labels, {batch});
    std::vector<uint64_t> streams;
    for (int64_t i = 0; i < batch; ++i)
      streams.push_back(Generator::stream_id(static_cast<uint64_t>(step), i));
    Generator g = Generator::per_sample(2, streams);
    base.loss(b, g).backward();
    opt.step();
    opt.zero_grad();
  }
  base.net().eval();
  LabeledImages samples;
  for (int64_t i = 0; i < 60; ++i) samples.labels.push_back(i % 3);
  StageBatch want;
  want.labels = Tensor::from_vector(samples.labels, {60});
  Generator sg(5);
  samples.images = data::float_to_u8(base.sample(want, 0, sg, base.default_sample_settings()));
  samples.what = "samples";
  const LabeledImages real = band_images(150, 8, 3, 7);
  const CasResult r = classification_accuracy_score(samples, real, quick());
  // The same samples under the wrong labels (class k called k + 1): the classifier then learns a wrong
  // mapping and the score collapses (a model that ignored its labels would score about chance above).
  LabeledImages wrong = samples;
  for (auto& l : wrong.labels) l = (l + 1) % 3;
  const CasResult w = classification_accuracy_score(wrong, real, quick());
  MESSAGE("CAS of 60 samples: top-1 " << r.top1 << " (with permuted labels " << w.top1 << ", chance 0.33)");
  CHECK(r.top1 >= 0.8);
  CHECK(w.top1 <= 0.4);
}

TEST_CASE("a saved classifier loads with the same outputs, and a file of something else is named") {
  ClassifierConfig c;
  c.resolution = 8;
  c.channels = 3;
  c.num_classes = 4;
  c.width = 8;
  c.blocks = 2;
  Generator init(7);
  Classifier m(c, init);
  const std::string path = (std::filesystem::temp_directory_path() / "iris-test-classifier.h5").string();
  save_classifier(path, m, {"a", "b", "c", "d"}, "somewhere");
  const LoadedClassifier l = load_classifier(path);
  CHECK(l.class_names == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(l.trained_on == "somewhere");
  CHECK(l.model->config().blocks == 2);
  m.eval();
  const Tensor x = uniform({3, 8, 8, 3}, 8, -1, 1, DType::f32);
  CHECK(max_abs_diff(m.forward(x), l.model->forward(x)) == 0.0);
  CHECK(max_abs_diff(m.features(x), l.model->features(x)) == 0.0);
  const std::string other = (std::filesystem::temp_directory_path() / "iris-test-not-classifier.h5").string();
  {
    h5::AtomicWriter w(other);
    w.root().set_string_attr("format", "iris-samples");
    w.commit();
  }
  check_throws_with([&] { (void)load_classifier(other); }, {other, "is not a saved classifier"});
  std::filesystem::remove(path);
  std::filesystem::remove(other);
}
