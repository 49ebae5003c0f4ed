#include "diffusion/cas.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "data/image.h"
#include "data/loader.h"
#include "data/resize.h"
#include "diffusion/classifier.h"
#include "framework/core/philox.h"
#include "framework/iris.h"

namespace iris::diffusion {

namespace {

void check_set(const LabeledImages& s, const char* role) {
  IRIS_CHECK(s.images.defined() && s.images.dim() == 4 && s.images.dtype() == DType::u8, "cas: the ", role,
             " images of '", s.what, "' must be uint8 [N, H, W, C]",
             s.images.defined()
                 ? ", got " + std::string(dtype_name(s.images.dtype())) + " " + shape_str(s.images.shape())
                 : std::string());
  const Shape& sh = s.images.shape();
  IRIS_CHECK(sh[0] > 0, "cas: the ", role, " set '", s.what, "' holds no images");
  IRIS_CHECK(sh[3] == 1 || sh[3] == 3, "cas: the ", role, " images of '", s.what,
             "' must have 1 or 3 channels, got ", sh[3]);
  IRIS_CHECK(sh[1] == sh[2], "cas: the ", role, " images of '", s.what, "' must be square, got ", sh[1], "x",
             sh[2]);
  IRIS_CHECK(static_cast<int64_t>(s.labels.size()) == sh[0], "cas: '", s.what, "' has ", sh[0],
             " images but ", s.labels.size(), " labels");
  for (size_t i = 0; i < s.labels.size(); ++i)
    IRIS_CHECK(s.labels[i] >= 0, "cas: '", s.what, "' has a negative label (", s.labels[i], ") at ", i);
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

}  // namespace

CasResult classification_accuracy_score(const LabeledImages& train, const LabeledImages& real,
                                        const CasOptions& o) {
  check_set(train, "generated");
  check_set(real, "real");
  IRIS_CHECK(o.steps >= 1 && o.batch_size >= 1 && o.eval_batch >= 1 && o.log_every >= 1,
             "cas: steps, batch size, evaluation batch and logging interval must be positive");
  IRIS_CHECK(train.images.size(3) == real.images.size(3), "cas: the generated images of '", train.what,
             "' have ", train.images.size(3), " channel(s) but the real images of '", real.what, "' have ",
             real.images.size(3));
  IRIS_CHECK(train.class_names.empty() || real.class_names.empty() || train.class_names == real.class_names,
             "cas: '", train.what, "' and '", real.what, "' name their classes differently");
  const std::vector<std::string>& names = train.class_names.empty() ? real.class_names : train.class_names;
  int64_t classes = static_cast<int64_t>(names.size());
  for (const LabeledImages* s : {&train, &real}) {
    const int64_t top = *std::max_element(s->labels.begin(), s->labels.end());
    IRIS_CHECK(names.empty() || top < static_cast<int64_t>(names.size()), "cas: '", s->what, "' has label ",
               top, " but there are ", names.size(), " named classes");
    classes = std::max(classes, top + 1);
  }
  IRIS_CHECK(classes >= 2, "cas: the labels name only one class; a classification score needs at least 2");

  CasResult r;
  r.classes = classes;
  r.train_count = train.images.size(0);
  r.test_count = real.images.size(0);
  r.resolution = train.images.size(1);
  Tensor real_images = real.images;
  if (real_images.size(1) != r.resolution) {
    // Antialiased bicubic on floats, then back to uint8 exactly as the generated images were stored.
    real_images = data::float_to_u8(data::resize(data::u8_to_float(real_images), r.resolution, r.resolution));
    r.test_resized = true;
  }

  ClassifierConfig cc;
  cc.resolution = r.resolution;
  cc.channels = train.images.size(3);
  cc.num_classes = classes;
  cc.width = o.width;
  cc.blocks = o.blocks;
  Generator init(o.seed, /*stream=*/0xC1A5);
  Classifier model(cc, init);
  model.to(o.device);
  model.train();
  r.parameters = model.num_parameters();
  optim::AdamW opt(model.named_parameters(), o.lr, {0.9, 0.999}, 1e-8, o.weight_decay);
  optim::LRScheduleOptions so;
  so.base_lr = o.lr;
  so.warmup_steps = std::min(o.warmup_steps, o.steps / 2);  // short runs: at most half of them
  so.decay = optim::LRScheduleOptions::Decay::cosine;
  so.total_steps = o.steps;
  optim::LRSchedule schedule(so);

  // Batches walk a fresh permutation each epoch (data/loader.h's, from the seed); a set smaller than the
  // batch is one batch.
  const int64_t n = r.train_count, batch = std::min(o.batch_size, n);
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
      labels.push_back(train.labels[static_cast<size_t>(i)]);
      if (o.hflip)  // one Philox bit per (step, sample): independent of the batch's composition
        flip.push_back(
            philox::block(o.seed, Generator::stream_id(static_cast<uint64_t>(step), i), 0xF11B).v[0] & 1u);
    }
    const Tensor x = data::u8_to_float(gather_rows(train.images, rows, flip)).to(o.device);
    const Tensor y = Tensor::from_vector<int64_t>(labels, {batch}).to(o.device);
    opt.set_lr(schedule.lr());
    Tensor loss = cross_entropy(model.forward(x), y);
    loss.backward();
    opt.step();
    opt.zero_grad();
    schedule.advance();
    loss_sum = add(loss_sum, loss.detach().to(DType::f64).reshape({1}));
    ++window;
    if ((step + 1) % o.log_every == 0 || step + 1 == o.steps) {
      r.final_loss = loss_sum.item() / static_cast<double>(window);
      IRIS_CHECK(std::isfinite(r.final_loss), "cas: the classifier's training diverged by step ", step + 1,
                 " (mean loss ", r.final_loss, "); try a lower learning rate");
      if (o.on_log) o.on_log(step + 1, r.final_loss);
      loss_sum = Tensor::zeros({1}, DType::f64, o.device);
      window = 0;
    }
  }

  model.eval();
  const Scores test = score(model, real_images, real.labels, r.test_count, classes, o);
  r.top1 = test.top1;
  r.top5 = test.top5;
  r.class_count = test.class_count;
  for (int64_t c = 0; c < classes; ++c) {
    const auto i = static_cast<size_t>(c);
    r.class_top1.push_back(test.class_count[i] > 0 ? static_cast<double>(test.class_correct[i]) /
                                                         static_cast<double>(test.class_count[i])
                                                   : std::numeric_limits<double>::quiet_NaN());
  }
  r.train_top1 = score(model, train.images, train.labels, std::min<int64_t>(n, 10000), classes, o).top1;
  return r;
}

}  // namespace iris::diffusion
