// A small convolutional network learns a fixed synthetic task on the CPU: telling horizontal from vertical
// bars in noisy 8x8 images. Exercises conv2d, group_norm_silu, avg_pool2x, linear, cross_entropy and AdamW
// together; the initial loss (~ln 2) is far above the bound, so the test fails if learning breaks.
#include "framework/nn/conv_layers.h"
#include "tests/common/test_util.h"

using namespace iris;

namespace {
// n images [n, 8, 8, 1]: a bright bar (row or column at a random position) on Gaussian noise; label 0 for
// horizontal, 1 for vertical.
std::pair<Tensor, Tensor> bars(int64_t n, Generator& g) {
  std::vector<float> img(static_cast<size_t>(n * 64));
  std::vector<int64_t> label(static_cast<size_t>(n));
  const auto noise = randn({n * 64}, g, DType::f32).to_vector<float>();
  const auto pick = rand({n, 2}, g, DType::f32).to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    label[i] = pick[2 * i] < 0.5f ? 0 : 1;
    const int pos = static_cast<int>(pick[2 * i + 1] * 8);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const bool on = label[i] == 0 ? y == pos : x == pos;
        img[i * 64 + y * 8 + x] = 0.5f * noise[i * 64 + y * 8 + x] + (on ? 1.5f : 0.0f);
      }
  }
  return {Tensor::from_vector(img, {n, 8, 8, 1}), Tensor::from_vector(label, {n})};
}
}  // namespace

TEST_CASE("a small conv net learns to tell horizontal from vertical bars") {
  Generator init(1);
  nn::Conv2d c1(1, 8, 3, init, 1, 1), c2(8, 16, 3, init, 1, 1);
  nn::GroupNorm n1(4, 8), n2(4, 16);
  nn::Linear head(16 * 4 * 4, 2, init);
  std::vector<Tensor> params;
  for (nn::Module* m : std::initializer_list<nn::Module*>{&c1, &c2, &n1, &n2, &head})
    for (const Tensor& p : m->parameters()) params.push_back(p);
  optim::AdamW opt(params, 3e-3);
  auto forward = [&](const Tensor& x) {
    Tensor h = n1.forward_silu(c1.forward(x));
    h = avg_pool2x(n2.forward_silu(c2.forward(h)));  // [n, 4, 4, 16]
    return head.forward(h.reshape({x.size(0), 16 * 4 * 4}));
  };
  Generator data(2);
  double first = 0, last = 0;
  const int steps = 120;
  for (int s = 0; s < steps; ++s) {
    auto [x, y] = bars(32, data);
    Tensor loss = cross_entropy(forward(x), y);
    loss.backward();
    opt.step();
    opt.zero_grad();
    if (s < 5) first += loss.item() / 5;
    if (s >= steps - 10) last += loss.item() / 10;
  }
  MESSAGE("cross-entropy: first 5 steps ", first, ", last 10 steps ", last);
  CHECK(first > 0.5);
  CHECK(last < 0.1);
  // Held-out accuracy.
  Generator test(3);
  auto [x, y] = bars(256, test);
  NoGradGuard ng;
  const auto logits = forward(x).to_vector<float>();
  const auto labels = y.to_vector<int64_t>();
  int correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) correct += (logits[2 * i + 1] > logits[2 * i]) == (labels[i] == 1);
  CHECK(correct >= 245);
}
