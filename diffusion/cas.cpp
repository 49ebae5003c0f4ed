#include "diffusion/cas.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>

#include "data/image.h"
#include "data/loader.h"
#include "data/resize.h"
#include "diffusion/classifier.h"
#include "diffusion/frechet.h"
#include "framework/core/philox.h"
#include "framework/iris.h"

namespace iris::diffusion {

namespace {

void check_set(const char* tool, const LabeledImages& s, const char* role) {
  IRIS_CHECK(s.images.defined() && s.images.dim() == 4 && s.images.dtype() == DType::u8, tool, ": the ", role,
             " images of '", s.what, "' must be uint8 [N, H, W, C]",
             s.images.defined()
                 ? ", got " + std::string(dtype_name(s.images.dtype())) + " " + shape_str(s.images.shape())
                 : std::string());
  const Shape& sh = s.images.shape();
  IRIS_CHECK(sh[0] > 0, tool, ": the ", role, " set '", s.what, "' holds no images");
  IRIS_CHECK(sh[3] == 1 || sh[3] == 3, tool, ": the ", role, " images of '", s.what,
             "' must have 1 or 3 channels, got ", sh[3]);
  IRIS_CHECK(sh[1] == sh[2], tool, ": the ", role, " images of '", s.what, "' must be square, got ", sh[1],
             "x", sh[2]);
  IRIS_CHECK(static_cast<int64_t>(s.labels.size()) == sh[0], tool, ": '", s.what, "' has ", sh[0],
             " images but ", s.labels.size(), " labels");
  for (size_t i = 0; i < s.labels.size(); ++i)
    IRIS_CHECK(s.labels[i] >= 0, tool, ": '", s.what, "' has a negative label (", s.labels[i], ") at ", i);
}

// Images at `rows` of u8 [N, H, W, C] as a new u8 tensor, each flipped left-right where `flip` says so.
Tensor gather_rows(const Tensor& images, const std::vector<int64_t>& rows, const std::vector<bool>& flip) {
  const int64_t h = images.size(1), w = images.size(2), c = images.size(3);
  const int64_t row_bytes = w * c, image_bytes = h * row_bytes;
  Tensor out = Tensor::empty({static_cast<int64_t>(rows.size()), h, w, c}, DType::u8);
  const uint8_t* src = images.data<uint8_t>();
  uint8_t* dst = out.data<uint8_t>();
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint8_t* from = src + rows[i] * image_bytes;
    uint8_t* to = dst + static_cast<int64_t>(i) * image_bytes;
    if (flip.empty() || !flip[i]) {
      std::memcpy(to, from, static_cast<size_t>(image_bytes));
      continue;
    }
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        std::memcpy(to + y * row_bytes + x * c, from + y * row_bytes + (w - 1 - x) * c,
                    static_cast<size_t>(c));
  }
  return out;
}

struct Scores {
  double top1 = 0, top5 = 0;
  std::vector<int64_t> class_count, class_correct;
};

// Top-1 / top-5 of `model` on the first `count` images of `set` (images already at the model's size).
Scores score(const Classifier& model, const Tensor& images, const std::vector<int64_t>& labels, int64_t count,
             int64_t classes, const CasOptions& o) {
  NoGradGuard no_grad;
  Scores s;
  s.class_count.assign(static_cast<size_t>(classes), 0);
  s.class_correct.assign(static_cast<size_t>(classes), 0);
  int64_t top1 = 0, top5 = 0;
  for (int64_t start = 0; start < count; start += o.eval_batch) {
    const int64_t n = std::min(o.eval_batch, count - start);
    const Tensor x = data::u8_to_float(images.slice(0, start, start + n).contiguous()).to(o.device);
    const std::vector<float> logits = model.forward(x).to(DType::f32).to_vector<float>();
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * classes;
      const int64_t label = labels[static_cast<size_t>(start + i)];
      // Rank of the true class: how many classes score strictly higher (ties count for the true class).
      int64_t above = 0;
      for (int64_t k = 0; k < classes; ++k) above += row[k] > row[label] ? 1 : 0;
      top1 += above == 0 ? 1 : 0;
      top5 += above < 5 ? 1 : 0;
      ++s.class_count[static_cast<size_t>(label)];
      s.class_correct[static_cast<size_t>(label)] += above == 0 ? 1 : 0;
    }
  }
  s.top1 = static_cast<double>(top1) / static_cast<double>(count);
  s.top5 = static_cast<double>(top5) / static_cast<double>(count);
  return s;
}

// The number of classes the sets share: checks that they name their classes alike and that every label
// has a class; at least 2.
int64_t agreed_classes(const char* tool, const std::vector<const LabeledImages*>& sets) {
  const std::vector<std::string>* names = nullptr;
  for (const LabeledImages* s : sets) {
    if (s->class_names.empty()) continue;
    IRIS_CHECK(names == nullptr || *names == s->class_names, tool, ": '", sets.front()->what, "' and '",
               s->what, "' name their classes differently");
    names = &s->class_names;
  }
  int64_t classes = names ? static_cast<int64_t>(names->size()) : 0;
  for (const LabeledImages* s : sets) {
    const int64_t top = *std::max_element(s->labels.begin(), s->labels.end());
    IRIS_CHECK(!names || top < static_cast<int64_t>(names->size()), tool, ": '", s->what, "' has label ", top,
               " but there are ", names->size(), " named classes");
    classes = std::max(classes, top + 1);
  }
  IRIS_CHECK(classes >= 2, tool, ": the labels name only one class; a classification score needs at least 2");
  return classes;
}

// The set's images at `resolution` (antialiased bicubic on floats, then uint8 again, as generated images are
// stored); `resized` says whether they had to be.
Tensor images_at(const LabeledImages& s, int64_t resolution, bool* resized) {
  *resized = s.images.size(1) != resolution;
  if (!*resized) return s.images;
  return data::float_to_u8(data::resize(data::u8_to_float(s.images), resolution, resolution));
}

void check_options(const char* tool, const CasOptions& o) {
  IRIS_CHECK(o.steps >= 1 && o.batch_size >= 1 && o.eval_batch >= 1 && o.log_every >= 1, tool,
             ": steps, batch size, evaluation batch and logging interval must be positive");
}

// A classifier trained from scratch on `images` (uint8 [N, R, R, C]) with `labels`; `final_loss` gets the
// mean loss of the last logging window.
std::unique_ptr<Classifier> train_classifier(const char* tool, const Tensor& images,
                                             const std::vector<int64_t>& labels_of, int64_t classes,
                                             const CasOptions& o, double* final_loss) {
  ClassifierConfig cc;
  cc.resolution = images.size(1);
  cc.channels = images.size(3);
  cc.num_classes = classes;
  cc.width = o.width;
  cc.blocks = o.blocks;
  Generator init(o.seed, /*stream=*/0xC1A5);
  auto model = std::make_unique<Classifier>(cc, init);
  model->to(o.device);
  model->train();
  optim::AdamW opt(model->named_parameters(), o.lr, {0.9, 0.999}, 1e-8, o.weight_decay);
  optim::LRScheduleOptions so;
  so.base_lr = o.lr;
  so.warmup_steps = std::min(o.warmup_steps, o.steps / 2);  // short runs: at most half of them
  so.decay = optim::LRScheduleOptions::Decay::cosine;
  so.total_steps = o.steps;
  optim::LRSchedule schedule(so);

  // Batches walk a fresh permutation each epoch (data/loader.h's, from the seed); a set smaller than the
  // batch is one batch.
  const int64_t n = images.size(0), batch = std::min(o.batch_size, n);
  const int64_t per_epoch = n / batch;
  std::vector<int64_t> order;
  Tensor loss_sum = Tensor::zeros({1}, DType::f64, o.device);
  int64_t window = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    const int64_t epoch = step / per_epoch, k = step % per_epoch;
    if (k == 0) order = data::epoch_order(n, o.seed, epoch);
    std::vector<int64_t> rows(order.begin() + k * batch, order.begin() + (k + 1) * batch), labels;
    std::vector<bool> flip;
    for (int64_t i : rows) {
      labels.push_back(labels_of[static_cast<size_t>(i)]);
      if (o.hflip)  // one Philox bit per (step, sample): independent of the batch's composition
        flip.push_back(
            philox::block(o.seed, Generator::stream_id(static_cast<uint64_t>(step), i), 0xF11B).v[0] & 1u);
    }
    const Tensor x = data::u8_to_float(gather_rows(images, rows, flip)).to(o.device);
    const Tensor y = Tensor::from_vector<int64_t>(labels, {batch}).to(o.device);
    opt.set_lr(schedule.lr());
    Tensor loss = cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    opt.zero_grad();
    schedule.advance();
    loss_sum = add(loss_sum, loss.detach().to(DType::f64).reshape({1}));
    ++window;
    if ((step + 1) % o.log_every == 0 || step + 1 == o.steps) {
      *final_loss = loss_sum.item() / static_cast<double>(window);
      IRIS_CHECK(std::isfinite(*final_loss), tool, ": the classifier's training diverged by step ", step + 1,
                 " (mean loss ", *final_loss, "); try a lower learning rate");
      if (o.on_log) o.on_log(step + 1, *final_loss);
      loss_sum = Tensor::zeros({1}, DType::f64, o.device);
      window = 0;
    }
  }
  model->eval();
  return model;
}

// The classifier's pooled features of the first `count` images: f64 [count, D] on the CPU.
Tensor features_of(const Classifier& model, const Tensor& images, int64_t count, const CasOptions& o) {
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < count; start += o.eval_batch) {
    const int64_t n = std::min(o.eval_batch, count - start);
    const Tensor x = data::u8_to_float(images.slice(0, start, start + n).contiguous()).to(o.device);
    parts.push_back(model.features(x).to(DType::f64).cpu());
  }
  return cat(parts, 0);
}

}  // namespace

CasResult classification_accuracy_score(const LabeledImages& train, const LabeledImages& real,
                                        const CasOptions& o) {
  check_set("cas", train, "generated");
  check_set("cas", real, "real");
  check_options("cas", o);
  IRIS_CHECK(train.images.size(3) == real.images.size(3), "cas: the generated images of '", train.what,
             "' have ", train.images.size(3), " channel(s) but the real images of '", real.what, "' have ",
             real.images.size(3));
  const int64_t classes = agreed_classes("cas", {&train, &real});

  CasResult r;
  r.classes = classes;
  r.train_count = train.images.size(0);
  r.test_count = real.images.size(0);
  r.resolution = train.images.size(1);
  const Tensor real_images = images_at(real, r.resolution, &r.test_resized);
  const std::unique_ptr<Classifier> model =
      train_classifier("cas", train.images, train.labels, classes, o, &r.final_loss);
  r.parameters = model->num_parameters();

  const Scores test = score(*model, real_images, real.labels, r.test_count, classes, o);
  r.top1 = test.top1;
  r.top5 = test.top5;
  r.class_count = test.class_count;
  for (int64_t c = 0; c < classes; ++c) {
    const auto i = static_cast<size_t>(c);
    r.class_top1.push_back(test.class_count[i] > 0 ? static_cast<double>(test.class_correct[i]) /
                                                         static_cast<double>(test.class_count[i])
                                                   : std::numeric_limits<double>::quiet_NaN());
  }
  r.train_top1 =
      score(*model, train.images, train.labels, std::min<int64_t>(r.train_count, 10000), classes, o).top1;
  return r;
}

FrechetResult classifier_frechet_distance(const Classifier& model, const Tensor& generated,
                                          const LabeledImages& real_test, const LabeledImages* real_train,
                                          const CasOptions& o) {
  check_set("fd", real_test, "real");
  if (real_train) check_set("fd", *real_train, "real training");
  check_options("fd", o);
  const ClassifierConfig& cc = model.config();
  IRIS_CHECK(generated.defined() && generated.dim() == 4 && generated.dtype() == DType::u8 &&
                 generated.size(0) >= 2 && generated.size(1) == generated.size(2),
             "fd: the generated images must be uint8 [N, H, H, C] with N >= 2, got ",
             generated.defined() ? shape_str(generated.shape()) : std::string("none"));
  IRIS_CHECK(generated.size(1) == cc.resolution && generated.size(3) == cc.channels,
             "fd: the classifier takes ", cc.resolution, "x", cc.resolution, "x", cc.channels,
             " images but the generated ones are ", generated.size(1), "x", generated.size(2), "x",
             generated.size(3));
  std::vector<const LabeledImages*> sets{&real_test};
  if (real_train) sets.push_back(real_train);
  for (const LabeledImages* s : sets)
    IRIS_CHECK(s->images.size(3) == cc.channels, "fd: the generated images have ", cc.channels,
               " channel(s) but '", s->what, "' has ", s->images.size(3));
  const int64_t classes = agreed_classes("fd", sets);
  IRIS_CHECK(classes <= cc.num_classes, "fd: the real images have ", classes, " classes but the classifier ",
             cc.num_classes);

  FrechetResult r;
  r.resolution = cc.resolution;
  r.generated_count = generated.size(0);
  r.real_count = real_test.images.size(0);
  const Tensor test_images = images_at(real_test, r.resolution, &r.real_resized);
  r.classifier_top1 = score(model, test_images, real_test.labels, r.real_count, cc.num_classes, o).top1;
  const Gaussian real = fit_gaussian(features_of(model, test_images, r.real_count, o));
  r.fd = frechet_distance(fit_gaussian(features_of(model, generated, r.generated_count, o)), real);
  r.feature_dim = real.dim;
  if (real_train) {
    // The floor: as many real training images as were generated (the estimate's own bias at this count).
    bool resized = false;
    const Tensor train_images = images_at(*real_train, r.resolution, &resized);
    r.real_resized = r.real_resized || resized;
    r.reference_count = std::min(r.generated_count, train_images.size(0));
    r.reference_fd =
        frechet_distance(fit_gaussian(features_of(model, train_images, r.reference_count, o)), real);
    r.has_reference = r.reference_count >= 2;
  }
  return r;
}

FrechetResult classifier_frechet_distance(const LabeledImages& real_train, const Tensor& generated,
                                          const LabeledImages& real_test, const CasOptions& o,
                                          std::unique_ptr<Classifier>* trained) {
  check_set("fd", real_train, "real training");
  check_set("fd", real_test, "real");
  check_options("fd", o);
  IRIS_CHECK(generated.defined() && generated.dim() == 4, "fd: the generated images must be [N, H, H, C]");
  IRIS_CHECK(real_train.images.size(3) == generated.size(3), "fd: the generated images have ",
             generated.size(3), " channel(s) but '", real_train.what, "' has ", real_train.images.size(3));
  // Resized once, here: the classifier trains on these images and the floor is measured on them.
  LabeledImages train_at = real_train;
  bool resized = false;
  train_at.images = images_at(real_train, generated.size(1), &resized);
  double final_loss = 0;
  std::unique_ptr<Classifier> model =
      train_feature_classifier(train_at, real_test, generated.size(1), o, &final_loss);
  FrechetResult r = classifier_frechet_distance(*model, generated, real_test, &train_at, o);
  r.final_loss = final_loss;
  r.real_resized = r.real_resized || resized;
  if (trained) *trained = std::move(model);
  return r;
}

std::unique_ptr<Classifier> train_feature_classifier(const LabeledImages& real_train,
                                                     const LabeledImages& real_test, int64_t resolution,
                                                     const CasOptions& o, double* final_loss) {
  check_set("fd", real_train, "real training");
  check_set("fd", real_test, "real");
  check_options("fd", o);
  const int64_t classes = agreed_classes("fd", {&real_train, &real_test});
  bool resized = false;
  const Tensor images = images_at(real_train, resolution, &resized);
  double loss = 0;
  std::unique_ptr<Classifier> model = train_classifier("fd", images, real_train.labels, classes, o, &loss);
  if (final_loss) *final_loss = loss;
  return model;
}

double frechet_floor(const Classifier& model, const LabeledImages& real_train, int64_t count,
                     const LabeledImages& real_test, const CasOptions& o, int64_t* used) {
  check_set("fd", real_train, "real training");
  check_set("fd", real_test, "real");
  const int64_t r = model.config().resolution;
  bool resized = false;
  const Tensor train = images_at(real_train, r, &resized), test = images_at(real_test, r, &resized);
  const int64_t n = std::min(count, train.size(0));
  IRIS_CHECK(n >= 2, "fd: the floor needs at least 2 real training images, got ", n);
  if (used) *used = n;
  return frechet_distance(fit_gaussian(features_of(model, train, n, o)),
                          fit_gaussian(features_of(model, test, test.size(0), o)));
}

double classifier_accuracy(const Classifier& model, const LabeledImages& s, const CasOptions& o) {
  check_set("accuracy", s, "labelled");
  const ClassifierConfig& cc = model.config();
  IRIS_CHECK(s.images.size(3) == cc.channels, "accuracy: the classifier takes ", cc.channels,
             " channel(s) but the images of '", s.what, "' have ", s.images.size(3));
  for (int64_t l : s.labels)
    IRIS_CHECK(l < cc.num_classes, "accuracy: '", s.what, "' has label ", l, " but the classifier knows ",
               cc.num_classes, " classes");
  bool resized = false;
  const Tensor images = images_at(s, cc.resolution, &resized);
  return score(model, images, s.labels, images.size(0), cc.num_classes, o).top1;
}

}  // namespace iris::diffusion
