#include "diffusion/classifier.h"

#include <algorithm>
#include <string>

#include "framework/core/error.h"
#include "framework/io/hdf5.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"

namespace iris::diffusion {

void ClassifierConfig::validate() const {
  IRIS_CHECK(resolution >= 4, "classifier: images must be at least 4x4, got ", resolution, "x", resolution);
  IRIS_CHECK(channels == 1 || channels == 3, "classifier: images must have 1 or 3 channels, got ", channels);
  IRIS_CHECK(num_classes >= 2, "classifier: at least 2 classes are needed, got ", num_classes);
  IRIS_CHECK(width >= 8 && width % 8 == 0, "classifier: the width must be a positive multiple of 8, got ",
             width);
  IRIS_CHECK(blocks >= 1, "classifier: at least 1 block per stage, got ", blocks);
}

std::vector<int64_t> ClassifierConfig::stage_resolutions() const {
  std::vector<int64_t> r{resolution};
  while ((r.back() + 1) / 2 >= 4) r.push_back((r.back() + 1) / 2);  // a stride-2, pad-1 3x3 conv: ceil(h / 2)
  return r;
}

namespace {
constexpr int64_t kGroups = 8;  // GroupNorm groups (widths are multiples of 8)
}

Classifier::Block::Block(int64_t channels, Generator& init) {
  norm1_ = register_module("norm1", std::make_shared<nn::GroupNorm>(kGroups, channels));
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(channels, channels, 3, init, 1, 1));
  norm2_ = register_module("norm2", std::make_shared<nn::GroupNorm>(kGroups, channels));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(channels, channels, 3, init, 1, 1));
}

Tensor Classifier::Block::forward(const Tensor& x) const {
  const Tensor r = conv1_->forward(norm1_->forward_silu(x));
  return add(x, conv2_->forward(norm2_->forward_silu(r)));
}

Classifier::Classifier(const ClassifierConfig& config, Generator& init) : config_(config) {
  config_.validate();
  stem_ =
      register_module("stem", std::make_shared<nn::Conv2d>(config_.channels, config_.width, 3, init, 1, 1));
  const size_t n_stages = config_.stage_resolutions().size();
  int64_t ch = config_.width;
  for (size_t s = 0; s < n_stages; ++s) {
    std::vector<std::shared_ptr<Block>> blocks;
    for (int64_t b = 0; b < config_.blocks; ++b)
      blocks.push_back(register_module("block_" + std::to_string(s) + "_" + std::to_string(b),
                                       std::make_shared<Block>(ch, init)));
    stages_.push_back(std::move(blocks));
    if (s + 1 < n_stages) {
      const int64_t next = std::min(ch * 2, config_.width * 8);
      downs_.push_back(register_module("down_" + std::to_string(s),
                                       std::make_shared<nn::Conv2d>(ch, next, 3, init, 2, 1)));
      ch = next;
    }
  }
  head_norm_ = register_module("head_norm", std::make_shared<nn::GroupNorm>(kGroups, ch));
  head_ = register_module("head", std::make_shared<nn::Linear>(ch, config_.num_classes, init));
}

Tensor Classifier::features(const Tensor& x) const {
  IRIS_CHECK(x.dim() == 4 && x.size(1) == config_.resolution && x.size(2) == config_.resolution &&
                 x.size(3) == config_.channels,
             "classifier: input must be [N, ", config_.resolution, ", ", config_.resolution, ", ",
             config_.channels, "], got ", shape_str(x.shape()));
  Tensor h = stem_->forward(x);
  for (size_t s = 0; s < stages_.size(); ++s) {
    for (const auto& b : stages_[s]) h = b->forward(h);
    if (s < downs_.size()) h = downs_[s]->forward(h);
  }
  return mean(head_norm_->forward_silu(h), {1, 2});  // [N, D]
}

Tensor Classifier::forward(const Tensor& x) const {
  return head_->forward(features(x));
}

int64_t Classifier::feature_dim() const {
  return head_norm_->weight.size(0);
}

void save_classifier(const std::string& path, const Classifier& model,
                     const std::vector<std::string>& class_names, const std::string& trained_on) {
  h5::AtomicWriter w(path);
  {
    h5::Group root = w.root();
    const ClassifierConfig& c = model.config();
    root.set_string_attr("format", "iris-classifier");
    root.set_int_attr("resolution", c.resolution);
    root.set_int_attr("channels", c.channels);
    root.set_int_attr("num_classes", c.num_classes);
    root.set_int_attr("width", c.width);
    root.set_int_attr("blocks", c.blocks);
    root.set_string_attr("trained_on", trained_on);
    if (!class_names.empty()) root.set_strings_attr("class_names", class_names);
    h5::Group params = root.create_group("params");
    for (const auto& [name, t] : model.state_dict()) params.write_tensor(name, t.cpu(), /*checksum=*/true);
  }
  w.commit();
}

LoadedClassifier load_classifier(const std::string& path) {
  const h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  IRIS_CHECK(root.has_attr("format") && root.string_attr("format") == "iris-classifier", "'", path,
             "' is not a saved classifier (iris fd --save-classifier writes them)");
  ClassifierConfig c;
  c.resolution = root.int_attr("resolution");
  c.channels = root.int_attr("channels");
  c.num_classes = root.int_attr("num_classes");
  c.width = root.int_attr("width");
  c.blocks = root.int_attr("blocks");
  LoadedClassifier out;
  Generator init(0);
  out.model = std::make_unique<Classifier>(c, init);
  nn::StateDict state;
  const h5::Group params = root.open_group("params");
  for (const auto& name : params.children()) state[name] = params.read_tensor(name);
  try {
    out.model->load_state_dict(state);
  } catch (const Error& e) {
    IRIS_THROW("'", path, "': its parameters do not fit the classifier it describes: ", e.what());
  }
  out.model->eval();
  if (root.has_attr("class_names")) out.class_names = root.strings_attr("class_names");
  out.trained_on = root.string_attr("trained_on");
  return out;
}

}  // namespace iris::diffusion
