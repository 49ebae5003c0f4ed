// The device-side forms a training step uses without host reads (diffusion/step_guard.h): the global
// gradient norm and clipping as tensors (the same bits as the host forms), and AdamW/EMA updates made
// conditional on an apply flag (a 0 flag changes nothing, step counts included).
#include <cmath>
#include <cstring>
#include <limits>

#include "framework/optim/device_step.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::optim;

namespace {
// Bitwise equality of two tensors' values (NaN payloads included).
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.cpu().contiguous(), cb = b.cpu().contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

// f32 parameters with gradients of odd sizes and magnitudes (a mix of sums that round differently).
std::vector<Tensor> params_with_grads(uint64_t seed, double grad_scale) {
  std::vector<Tensor> params;
  for (int64_t i = 0; i < 4; ++i) {
    Tensor p = randn({5 + 3 * i, 7}, seed + i, DType::f32).set_requires_grad();
    p.set_grad(randn({5 + 3 * i, 7}, seed + 10 + i, DType::f32, grad_scale * static_cast<double>(1 + i)));
    params.push_back(p);
  }
  return params;
}

std::vector<Tensor> grads_of(const std::vector<Tensor>& params) {
  std::vector<Tensor> g;
  for (const Tensor& p : params) g.push_back(p.grad().clone());
  return g;
}
}  // namespace

TEST_CASE("grad_norm_tensor and clip_grad_norm_tensor give the host forms' bits") {
  for (const double max_norm : {1e-3, 0.7, 1e6}) {  // clipping hard, some, and not at all
    CAPTURE(max_norm);
    const std::vector<Tensor> host = params_with_grads(3, 0.37), dev = params_with_grads(3, 0.37);
    const double host_norm = grad_norm(host);
    const Tensor dev_norm = grad_norm_tensor(dev);
    CHECK(dev_norm.dtype() == DType::f64);
    CHECK(dev_norm.item() == host_norm);
    CHECK(clip_grad_norm_tensor(dev, max_norm).item() == clip_grad_norm(host, max_norm));
    for (size_t i = 0; i < host.size(); ++i) CHECK(same_bits(host[i].grad(), dev[i].grad()));
    // ... and clipped when the norm is above the bound, untouched when not.
    CHECK(same_bits(host[0].grad(), params_with_grads(3, 0.37)[0].grad()) == (max_norm >= host_norm));
  }
  // Non-finite norms: reported, gradients left as they were.
  for (const double bad : {std::numeric_limits<double>::infinity(), std::nan("")}) {
    std::vector<Tensor> dev = params_with_grads(5, 1.0);
    Tensor g = dev[1].grad();
    g.fill_(bad);
    const std::vector<Tensor> before = grads_of(dev);
    const double norm = clip_grad_norm_tensor(dev, 0.5).item();
    CHECK(!std::isfinite(norm));
    for (size_t i = 0; i < dev.size(); ++i)
      if (i != 1) CHECK(same_bits(before[i], dev[i].grad()));
  }
  // No gradient at all: 0, as grad_norm.
  Tensor lone = Tensor::zeros({3}).set_requires_grad();
  CHECK(grad_norm_tensor({lone}).item() == 0.0);
  check_throws_with([&] { clip_grad_norm_tensor({lone}, 0.0); }, {"clip_grad_norm_tensor", "max_norm"});
}

TEST_CASE("AdamW step and EMA update with an apply flag of 0 change nothing, with 1 update as before") {
  nn::Sequential a, b;
  Generator ga(7), gb(7);
  a.push_back(std::make_shared<nn::Linear>(4, 3, ga));
  b.push_back(std::make_shared<nn::Linear>(4, 3, gb));
  AdamW opt_a(a.named_parameters(), 1e-2, {0.9, 0.999}, 1e-8, 0.01);
  AdamW opt_b(b.named_parameters(), 1e-2, {0.9, 0.999}, 1e-8, 0.01);
  EMA ema_a(a, 0.99), ema_b(b, 0.99);
  const Tensor x = randn({6, 4}, 11, DType::f32);
  const Tensor one = Tensor::full({1}, 1.0, DType::f64), zero = Tensor::zeros({1}, DType::f64);
  // `a` steps unconditionally on steps 0, 2, 3; `b` sees the same gradients on steps 0-3 with step 1 flagged
  // off: afterwards both must hold the same bits (weights, moments, counts, averages).
  for (int step = 0; step < 4; ++step) {
    for (nn::Sequential* m : {&a, &b}) {
      m->zero_grad();
      mean(square((*m)(x))).backward();
    }
    const bool apply = step != 1;
    if (apply) {
      opt_a.step();
      ema_a.update();
    }
    step_if(opt_b, apply ? one : zero);
    update_if(ema_b, apply ? one : zero);
  }
  CHECK(opt_b.step_count(0) == 3);
  CHECK(ema_b.num_updates() == 3);
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(same_bits(pa[i].second, pb[i].second));
  const State sa = opt_a.state(), sb = opt_b.state();
  for (const auto& [name, t] : sa.tensors) CHECK(same_bits(t, sb.tensors.at(name)));
  CHECK(sa.ints == sb.ints);
  const auto ea = ema_a.averaged(), eb = ema_b.averaged();
  for (size_t i = 0; i < ea.size(); ++i) CHECK(same_bits(ea[i].second, eb[i].second));
  check_throws_with([&] { step_if(opt_b, Tensor::zeros({2})); }, {"step_if", "one-element"});
}
