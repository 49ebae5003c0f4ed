// Classification Accuracy Score (CAS; Ravuri & Vinyals 2019, reported by CDM): train a classifier from
// scratch on generated, class-conditional images only, then measure its top-1 / top-5 accuracy on real
// images. A model whose samples lack the features of their class scores low even when its samples look sharp
// (FID misses this). The same procedure on real training images gives the "real" reference to read the score
// against.
//
// Scale: both sets are held in memory as uint8 (Fashion-MNIST's 60,000 images: 47 MB; 50,000 RGB 64x64: 614
// MB); the classifier is diffusion/classifier.h, sized for small images, not CDM's ResNet-50 at 128-256 px.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "diffusion/classifier.h"
#include "framework/core/device.h"
#include "framework/core/tensor.h"

namespace iris::diffusion {

// Images with their classes: uint8 [N, H, W, C] on the CPU, labels in [0, classes).
struct LabeledImages {
  Tensor images;
  std::vector<int64_t> labels;
  std::vector<std::string> class_names;  // may be empty
  std::string what;                      // where the set came from, for messages
};

struct CasOptions {
  int64_t steps = 2000;  // training steps (batches)
  int64_t batch_size = 128;
  double lr = 2e-3;  // AdamW, linear warm-up over warmup_steps, then cosine decay to 0
  int64_t warmup_steps = 100;
  double weight_decay = 0.05;
  int64_t width = 32;  // diffusion/classifier.h
  int64_t blocks = 1;
  bool hflip = false;  // random horizontal flips of training images (for classes that are mirror-symmetric)
  uint64_t seed = 0;   // initial weights, batch order and flips
  Device device = Device::cpu();
  int64_t eval_batch = 500;
  int64_t log_every = 100;
  // Called every log_every steps and after the last: (step, mean loss since the last call).
  std::function<void(int64_t, double)> on_log;
};

struct CasResult {
  int64_t classes = 0, train_count = 0, test_count = 0, resolution = 0, parameters = 0;
  bool test_resized = false;  // the real images were resized to the generated ones' resolution
  double top1 = 0, top5 = 0;  // on the real (test) images, fractions in [0, 1]; top5 = 1 with < 6 classes
  double train_top1 = 0;      // on (up to 10,000 of) the training images: how well the classifier fit them
  std::vector<int64_t> class_count;  // real images per class
  std::vector<double> class_top1;    // top-1 per class (NaN where the class has no real image)
  double final_loss = 0;             // mean training loss of the last logging window
};

// The Classification Accuracy Score of `train` (generated) on `real`. Checks that the sets agree (channels,
// class names; every label < the number of classes), resizes the real images to the training images' size
// when they differ (antialiased bicubic), trains, and scores. Throws iris::Error naming the set at fault.
CasResult classification_accuracy_score(const LabeledImages& train, const LabeledImages& real,
                                        const CasOptions& options);

// The Fréchet distance in a classifier's features: FID's statistic (diffusion/frechet.h), with a classifier
// trained on the real training images standing in for Inception (which Iris does not ship). Smaller is
// better; it sees diversity and per-class fidelity, but its values are comparable only between runs with the
// same real sets and classifier options, never with published FIDs.
struct FrechetResult {
  int64_t resolution = 0, generated_count = 0, real_count = 0, reference_count = 0, feature_dim = 0;
  bool real_resized = false;   // the real images were resized to the generated ones' resolution
  double fd = 0;               // generated vs real (held-out) images
  bool has_reference = false;  // reference_fd was measured (real training images were given)
  double reference_fd = 0;     // reference_count real training images vs the same real images: the floor
  double classifier_top1 = 0;  // the feature classifier's top-1 on the real held-out images (a sanity check)
  double final_loss = 0;
};

// Trains the feature classifier on `real_train` (at the generated images' resolution), then compares the
// feature statistics of `generated` (uint8 [N, H, H, C], N >= 2; labels not needed) with those of
// `real_test`.
FrechetResult classifier_frechet_distance(const LabeledImages& real_train, const Tensor& generated,
                                          const LabeledImages& real_test, const CasOptions& options,
                                          std::unique_ptr<Classifier>* trained = nullptr);
// The feature classifier of classifier_frechet_distance, trained alone on `real_train` (resized to
// `resolution` when it differs, antialiased bicubic); its classes are those `real_train` and `real_test`
// agree on. `final_loss` (optional) gets the mean loss of the last logging window. Train it once and score
// many sample sets with it.
std::unique_ptr<Classifier> train_feature_classifier(const LabeledImages& real_train,
                                                     const LabeledImages& real_test, int64_t resolution,
                                                     const CasOptions& options, double* final_loss = nullptr);
// The floor of classifier_frechet_distance on its own: the distance of the first `count` real training
// images (at the classifier's resolution) to `real_test` in `model`'s features; `count` is capped at the
// training set's size (the count used goes to *used).
double frechet_floor(const Classifier& model, const LabeledImages& real_train, int64_t count,
                     const LabeledImages& real_test, const CasOptions& options, int64_t* used = nullptr);
// Top-1 accuracy (in [0, 1]) of `model` on labelled images, resized to its resolution when they differ: a
// classifier trained on real images run on generated ones says whether they keep their class (SR3, Table 3).
double classifier_accuracy(const Classifier& model, const LabeledImages& images, const CasOptions& options);
// The same with a classifier trained before (load_classifier): `real_train`, when given, only gives the
// floor. The generated images must be at the classifier's resolution.
FrechetResult classifier_frechet_distance(const Classifier& model, const Tensor& generated,
                                          const LabeledImages& real_test, const LabeledImages* real_train,
                                          const CasOptions& options);

}  // namespace iris::diffusion
