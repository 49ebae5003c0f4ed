// A small residual image classifier, channels-last, for the Classification Accuracy Score (diffusion/cas.h):
// CDM (Ho et al. 2021, after Ravuri & Vinyals 2019) trains a ResNet on generated images only and reports its
// accuracy on real ones. This is the same idea at the scale of the data sets Iris trains on here (Fashion-
// MNIST, CIFAR-like, ImageNet at 32-64 px), not ResNet-50.
//
//   x [N, H, W, C] in [-1, 1]
//   stem: conv3x3 C -> w
//   stage s = 0..S-1 at resolution H / 2^s, width min(w 2^s, 8w): `blocks` residual blocks
//       (x + conv3x3(silu(gn(conv3x3(silu(gn(x))))))), then, except after the last stage, a stride-2 conv3x3
//       to the next width; S is the number of halvings that keep the resolution >= 4, plus one
//   head: silu(gn(x)), mean over H and W, linear -> logits [N, num_classes]
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framework/core/generator.h"
#include "framework/nn/conv_layers.h"
#include "framework/nn/layers.h"
#include "framework/nn/module.h"

namespace iris::diffusion {

struct ClassifierConfig {
  int64_t resolution = 28;  // square inputs
  int64_t channels = 1;     // 1 or 3
  int64_t num_classes = 10;
  int64_t width = 32;     // channels of the first stage (a multiple of 8: GroupNorm uses 8 groups)
  int64_t blocks = 1;     // residual blocks per stage
  void validate() const;  // throws iris::Error naming the bad setting
  // Resolutions of the stages: resolution, resolution / 2, ... while >= 4 (rounded up at odd sizes).
  std::vector<int64_t> stage_resolutions() const;
};

class Classifier : public nn::Module {
 public:
  Classifier(const ClassifierConfig& config, Generator& init);
  Tensor forward(const Tensor& x) const;   // [N, H, W, C] -> logits [N, num_classes]
  Tensor features(const Tensor& x) const;  // the head's input: [N, H, W, C] -> pooled features [N, D]
  int64_t feature_dim() const;             // D: the last stage's width
  const ClassifierConfig& config() const { return config_; }

 private:
  // x + conv2(silu(norm2(conv1(silu(norm1(x)))))), at a constant width.
  class Block : public nn::Module {
   public:
    Block(int64_t channels, Generator& init);
    Tensor forward(const Tensor& x) const;

   private:
    std::shared_ptr<nn::GroupNorm> norm1_, norm2_;
    std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  };
  ClassifierConfig config_;
  std::shared_ptr<nn::Conv2d> stem_;
  std::vector<std::vector<std::shared_ptr<Block>>> stages_;  // stage s, block b: "block_s_b"
  std::vector<std::shared_ptr<nn::Conv2d>> downs_;           // after stages 0..S-2: "down_s"
  std::shared_ptr<nn::GroupNorm> head_norm_;
  std::shared_ptr<nn::Linear> head_;
};

// Saved classifiers: an HDF5 file (format "iris-classifier") with the config as attributes, the class names,
// what it was trained on, and its parameters in group "params" (CRC-checked); written to a temporary name
// and renamed. A feature classifier saved once scores many checkpoints with the same features.
void save_classifier(const std::string& path, const Classifier& model,
                     const std::vector<std::string>& class_names, const std::string& trained_on);
struct LoadedClassifier {
  std::unique_ptr<Classifier> model;  // on the CPU, in eval mode
  std::vector<std::string> class_names;
  std::string trained_on;
};
// Throws iris::Error naming the file when it is not a saved classifier or its parameters do not fit.
LoadedClassifier load_classifier(const std::string& path);

}  // namespace iris::diffusion
