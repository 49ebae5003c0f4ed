// The device-side forms a training step uses without host reads (diffusion/step_guard.h): the global
// gradient norm and clipping as tensors (the same bits as the host forms), and AdamW/EMA updates made
// conditional on an apply flag (a 0 flag changes nothing, step counts included).
#include <cmath>
#include <cstring>
#include <limits>

#include "framework/optim/device_step.h"
#include "tests/common/flagged_updates.h"
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
  check_flagged_updates_match_kept_steps(Device::cpu());
  nn::Sequential m;
  Generator g(7);
  m.push_back(std::make_shared<nn::Linear>(4, 3, g));
  AdamW opt(m.named_parameters(), 1e-2);
  check_throws_with([&] { step_if(opt, Tensor::zeros({2})); }, {"step_if", "one-element"});
}
