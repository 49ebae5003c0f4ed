// `iris cas` run as the built program: generated samples in an HDF5 file (as iris sample writes them) scored
// on a shard folder of real images, with class names, the JSON record and file; bad inputs named.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/resize.h"
#include "data/shard.h"
#include "diffusion/cas.h"
#include "framework/io/hdf5.h"
#include "framework/iris.h"
#include "tests/data/data_test_util.h"
#include "tests/diffusion/cas_test_util.h"
#include "tests/tools/tool_test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

const std::vector<std::string> kNames = {"top", "middle", "bottom"};

// A samples.h5 as `iris sample` writes it for a class-conditional model: images, labels, class names.
void write_samples_h5(const std::string& path, const diffusion::LabeledImages& s, bool with_labels = true) {
  h5::AtomicWriter w(path);
  {
    h5::Group root = w.root();
    root.set_string_attr("format", "iris-samples");
    root.set_strings_attr("class_names", kNames);
    root.write_tensor("images", s.images);
    if (with_labels) {
      std::vector<int32_t> l(s.labels.begin(), s.labels.end());
      root.write_tensor("labels", Tensor::from_vector<int32_t>(l, {static_cast<int64_t>(l.size())}));
    }
  }
  w.commit();
}

void write_real_shards(const std::string& dir, const diffusion::LabeledImages& s) {
  data::ShardSpec spec;
  spec.height = spec.width = static_cast<int>(s.images.size(1));
  spec.channels = 1;
  spec.lowres_sizes = {4};
  spec.has_labels = true;
  spec.class_names = kNames;
  data::ShardWriter w(dir, spec);
  const std::vector<data::Image> images = data::unstack_images(s.images);
  for (size_t i = 0; i < images.size(); ++i) w.add(images[i], static_cast<int32_t>(s.labels[i]));
  w.finish();
}

}  // namespace

TEST_CASE("iris cas scores samples.h5 against a shard folder and writes the per-class JSON") {
  TempDir dir("cas");
  const std::string gen = dir.file("samples.h5"), real = dir.file("real"), json = dir.file("cas.json");
  write_samples_h5(gen, band_images(150, 8, 3, 1));
  write_real_shards(real, band_images(60, 8, 3, 2));
  const std::string args = "cas --generated " + gen + " --real " + real +
                           " --steps 60 --batch 32 --width 8 --device cpu --threads 1 --json " + json;
  const IrisRun r = run_iris(args);
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("step 60/60  loss "));
  CHECK(r.has("middle"));
  CHECK(r.has("CAS top-1  "));
  const nlohmann::json j = nlohmann::json::parse(r.out.substr(r.out.rfind("\n{") + 1));
  CHECK(j["classes"] == 3);
  CHECK(j["generated_count"] == 150);
  CHECK(j["real_count"] == 60);
  CHECK(j["top1"].get<double>() >= 0.9);
  CHECK(j["top5"].get<double>() == 1.0);
  std::ifstream f(json);
  REQUIRE(f.good());
  const nlohmann::json full = nlohmann::json::parse(f);
  CHECK(full["top1"] == j["top1"]);
  REQUIRE(full["per_class"].size() == 3);
  CHECK(full["per_class"][1]["class"] == "middle");
  CHECK(full["per_class"][1]["count"] == 20);
  // A shard folder's low-res copies (the real reference of a 4x4 stage).
  const IrisRun low =
      run_iris("cas --generated " + real + ":lowres_4 --real " + real +
               ":lowres_4 --steps 4 --batch 16 --width 8 --device cpu --threads 1 --limit 30");
  INFO(low.out);
  CHECK(low.code == 0);
  CHECK(low.has(real + ":lowres_4: 60 images 4x4"));
  CHECK(low.has("\"generated_count\":30"));
  // The same run again: the same score (a seeded, reproducible measurement).
  const IrisRun again = run_iris(args);
  REQUIRE(again.code == 0);
  CHECK(nlohmann::json::parse(again.out.substr(again.out.rfind("\n{") + 1))["top1"] == j["top1"]);
}

TEST_CASE("iris cas names the file at fault") {
  TempDir dir("cas-errors");
  const std::string unlabeled = dir.file("unlabeled.h5"), real = dir.file("real");
  write_samples_h5(unlabeled, band_images(12, 8, 3, 1), false);
  write_real_shards(real, band_images(12, 8, 3, 2));
  IrisRun r = run_iris("cas --generated " + unlabeled + " --real " + real + " --steps 2 --device cpu");
  CHECK(r.code == 1);
  CHECK(r.has("'" + unlabeled + "' has no 'labels' dataset"));
  r = run_iris("cas --generated " + unlabeled + ":stage_1 --real " + real + " --steps 2 --device cpu");
  CHECK(r.code == 1);
  CHECK(r.has("'" + unlabeled + "' has no dataset 'stage_1'"));
  r = run_iris("cas --generated " + real + ":lowres_5 --real " + real + " --steps 2 --device cpu");
  CHECK(r.code == 1);
  CHECK(r.has("'" + real + "' has no 'lowres_5' (it has: images, lowres_4)"));
  r = run_iris("cas --generated " + dir.file("nowhere.h5") + " --real " + real + " --steps 2 --device cpu");
  CHECK(r.code == 1);
  CHECK(r.has("nowhere.h5' does not exist"));
  CHECK_FALSE(r.has("step "));
}

TEST_CASE("iris fd ranks faithful samples closer to the real images than collapsed ones") {
  TempDir dir("fd");
  const std::string train = dir.file("train"), real = dir.file("real"), good = dir.file("good.h5"),
                    bad = dir.file("bad.h5"), json = dir.file("fd.json");
  write_real_shards(train, band_images(150, 8, 3, 1));
  write_real_shards(real, band_images(90, 8, 3, 2));
  write_samples_h5(good, band_images(90, 8, 3, 3), /*with_labels=*/false);  // fd needs no labels
  diffusion::LabeledImages one = band_images(90, 8, 3, 4);
  for (auto& l : one.labels) l = 0;
  one.images = band_images(270, 8, 3, 4).images.slice(0, 0, 270, 3).contiguous();  // every image of class 0
  write_samples_h5(bad, one);
  const std::string opts = " --real " + real + " --steps 60 --batch 32 --width 8 --device cpu --threads 1";
  const std::string clf = dir.file("features.h5");
  const IrisRun g = run_iris("fd --train " + train + " --generated " + good + opts + " --json " + json +
                             " --save-classifier " + clf);
  INFO(g.out);
  REQUIRE(g.code == 0);
  CHECK(g.has("floor: 90 real training images vs the same real images"));
  const nlohmann::json jg = nlohmann::json::parse(g.out.substr(g.out.rfind("\n{") + 1));
  const IrisRun b = run_iris("fd --train " + train + " --generated " + bad + opts);
  INFO(b.out);
  REQUIRE(b.code == 0);
  const nlohmann::json jb = nlohmann::json::parse(b.out.substr(b.out.rfind("\n{") + 1));
  CHECK(jg["generated_count"] == 90);
  CHECK(jg["classifier_top1"].get<double>() >= 0.9);
  CHECK(jb["fd"].get<double>() > 5 * jg["fd"].get<double>());
  CHECK(jb["reference_fd"] == jg["reference_fd"]);  // the same classifier and real sets: the same floor
  // Labelled samples also get the real-trained classifier's accuracy on them (class-0 images labelled 0).
  CHECK_FALSE(jg.contains("generated_top1"));
  CHECK(jb["generated_top1"].get<double>() >= 0.9);
  CHECK(b.has("the feature classifier's top-1 on the generated images"));
  std::ifstream f(json);
  REQUIRE(f.good());
  CHECK(nlohmann::json::parse(f)["fd"] == jg["fd"]);
  // The saved classifier scores again without training (no --train: no floor), with the same result.
  const IrisRun again = run_iris("fd --classifier " + clf + " --generated " + good + opts);
  INFO(again.out);
  REQUIRE(again.code == 0);
  CHECK_FALSE(again.has("step "));
  CHECK_FALSE(again.has("floor"));
  const nlohmann::json ja = nlohmann::json::parse(again.out.substr(again.out.rfind("\n{") + 1));
  CHECK(ja["fd"] == jg["fd"]);
  CHECK(ja["train"] == train);
  CHECK_FALSE(ja.contains("reference_fd"));
  CHECK(run_iris("fd --classifier " + good + " --generated " + good + opts)
            .has("'" + good + "' is not a saved classifier"));
  CHECK(run_iris("fd --generated " + good + opts).has("give --train"));
  // The real training set must have labels (the classifier learns from them).
  const IrisRun e = run_iris("fd --train " + good + " --generated " + good + opts);
  CHECK(e.code == 1);
  CHECK(e.has("'" + good + "' has no 'labels' dataset"));
}

TEST_CASE("iris fd scores its real-trained classifier on labelled generated images (SR3 Table 3)") {
  TempDir dir("fd_top1");
  const std::string train = dir.file("train"), real = dir.file("real"), right = dir.file("right.h5"),
                    wrong = dir.file("wrong.h5"), clf = dir.file("features.h5");
  write_real_shards(train, band_images(150, 8, 3, 1));
  write_real_shards(real, band_images(90, 8, 3, 2));
  diffusion::LabeledImages gen = band_images(90, 8, 3, 3);
  write_samples_h5(right, gen);
  for (auto& l : gen.labels) l = (l + 1) % 3;  // every image labelled with another class
  write_samples_h5(wrong, gen);
  const std::string opts = " --real " + real + " --steps 60 --batch 32 --width 8 --device cpu --threads 1";
  const IrisRun r = run_iris("fd --train " + train + " --generated " + right + opts + " --save-classifier " + clf);
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.has("the feature classifier's top-1 on the generated images"));
  const nlohmann::json jr = nlohmann::json::parse(r.out.substr(r.out.rfind("\n{") + 1));
  CHECK(jr["generated_top1"].get<double>() >= 0.9);
  const IrisRun w = run_iris("fd --classifier " + clf + " --generated " + wrong + opts);
  INFO(w.out);
  REQUIRE(w.code == 0);
  const nlohmann::json jw = nlohmann::json::parse(w.out.substr(w.out.rfind("\n{") + 1));
  CHECK(jw["generated_top1"].get<double>() <= 0.1);
  CHECK(jw["fd"] == jr["fd"]);  // the FD does not look at labels
  // Without labels there is no accuracy to report.
  diffusion::LabeledImages plain = band_images(90, 8, 3, 3);
  write_samples_h5(dir.file("plain.h5"), plain, /*with_labels=*/false);
  const IrisRun p = run_iris("fd --classifier " + clf + " --generated " + dir.file("plain.h5") + opts);
  REQUIRE(p.code == 0);
  CHECK_FALSE(p.has("generated_top1"));
}

TEST_CASE("iris eval --save-bicubic writes the bicubic baseline with the predictions' labels") {
  TempDir dir("bicubic");
  const std::string samples = dir.file("samples.h5"), out = dir.file("bicubic.h5");
  const diffusion::LabeledImages truth = band_images(6, 16, 3, 1);
  const Tensor low = data::float_to_u8(data::resize(data::u8_to_float(truth.images), 4, 4));
  {
    h5::AtomicWriter w(samples);
    h5::Group root = w.root();
    root.write_tensor("images", truth.images);
    root.write_tensor("truth", truth.images);
    root.write_tensor("lowres", low);
    std::vector<int32_t> l(truth.labels.begin(), truth.labels.end());
    root.write_tensor("labels", Tensor::from_vector<int32_t>(l, {6}));
    w.commit();
  }
  const IrisRun r = run_iris("eval --pred " + samples + " --truth " + samples + ":truth --lowres " + samples +
                             ":lowres -q --save-bicubic " + out);
  INFO(r.out);
  REQUIRE(r.code == 0);
  const h5::File f = h5::File::open(out);
  const Tensor saved = f.root().read_tensor("images");
  std::vector<data::Image> upsampled;  // as eval computes its bicubic column
  for (const data::Image& l : data::unstack_images(low))
    upsampled.push_back(data::resize(l, 16, 16, data::Filter::bicubic));
  const Tensor expected = data::stack_images(upsampled);
  REQUIRE(saved.shape() == expected.shape());
  CHECK(max(abs(sub(saved.to(DType::f32), expected.to(DType::f32)))).item() == 0.0);
  CHECK(f.root().read_tensor("labels").to_vector<int64_t>() == std::vector<int64_t>(truth.labels.begin(),
                                                                                     truth.labels.end()));
  CHECK(run_iris("eval --pred " + samples + " --truth " + samples + ":truth --save-bicubic " + out)
            .has("--save-bicubic needs --lowres"));
}
