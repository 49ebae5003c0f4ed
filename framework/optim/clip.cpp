#include "framework/optim/clip.h"

#include <algorithm>
#include <cmath>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "framework/optim/device_step.h"

namespace iris::optim {

namespace {

// Each distinct parameter's defined gradient, once (a tensor listed twice counts once).
std::vector<Tensor> distinct_grads(const std::vector<Tensor>& params, const char* where) {
  std::vector<Tensor> grads;
  std::vector<const TensorImpl*> seen;
  for (const Tensor& p : params) {
    check_defined(p, where, "parameter");
    if (std::find(seen.begin(), seen.end(), p.impl()) != seen.end()) continue;
    seen.push_back(p.impl());
    Tensor g = p.grad();
    if (!g.defined()) continue;
    check_floating(g, where);
    grads.push_back(g);
  }
  return grads;
}

// Per device, the f64 sum of squares of its gradients: one accumulator per device, tensors summed in the
// order given (the order grad_norm has always used, so the bits do not change).
std::vector<Tensor> sums_of_squares(const std::vector<Tensor>& grads) {
  std::vector<Tensor> totals;
  for (const Tensor& g : grads) {
    const Tensor gc = g.dtype() == DType::f64 ? g : g.to(DType::f32);
    const Tensor sq = sum(square(gc)).to(DType::f64);
    Tensor* total = nullptr;
    for (Tensor& t : totals)
      if (t.device() == g.device()) total = &t;
    if (total)
      *total = add(*total, sq);
    else
      totals.push_back(sq);
  }
  return totals;
}

}  // namespace

double grad_norm(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  // A single host read per device at the end.
  double sum_sq = 0.0;
  for (const Tensor& t : sums_of_squares(distinct_grads(params, "grad_norm"))) sum_sq += t.item();
  return std::sqrt(sum_sq);
}

Tensor grad_norm_tensor(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  const std::vector<Tensor> totals = sums_of_squares(distinct_grads(params, "grad_norm_tensor"));
  if (totals.empty()) return Tensor::zeros({1}, DType::f64, Device::cpu());
  // grad_norm adds the devices' sums to 0.0 in this order; 0.0 + x == x, so the first needs no add.
  Tensor sum_sq = totals.front().reshape({1});
  for (size_t i = 1; i < totals.size(); ++i) sum_sq = add(sum_sq, totals[i].to(sum_sq.device()).reshape({1}));
  return sqrt(sum_sq);  // correctly rounded, as std::sqrt
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  IRIS_CHECK(max_norm > 0 && std::isfinite(max_norm), "clip_grad_norm: max_norm must be finite and > 0, got ",
             max_norm);
  const double norm = grad_norm(params);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double scale = max_norm / (norm + 1e-6);
  NoGradGuard no_grad;
  for (Tensor& g : distinct_grads(params, "clip_grad_norm")) g.copy_(mul(g, scale));
  return norm;
}

Tensor finite_flag(const Tensor& x) {
  NoGradGuard no_grad;
  return eq(sub(x, x), Tensor::zeros_like(x)).to(DType::f64);
}

Tensor clip_grad_norm_tensor(const std::vector<Tensor>& params, double max_norm) {
  IRIS_CHECK(max_norm > 0 && std::isfinite(max_norm),
             "clip_grad_norm_tensor: max_norm must be finite and > 0, got ", max_norm);
  const Tensor norm = grad_norm_tensor(params);
  NoGradGuard no_grad;
  // clip = isfinite(norm) && norm > max_norm
  const Tensor clip = mul(finite_flag(norm), gt(norm, max_norm).to(DType::f64));
  // max_norm / (norm + 1e-6) in f64, as clip_grad_norm's host arithmetic; 1 where not clipping.
  const Tensor scale = where(clip.to(DType::u8), rdiv(max_norm, add(norm, 1e-6)),
                             Tensor::full({1}, 1.0, DType::f64, norm.device()));
  const Tensor scale32 = scale.to(DType::f32);  // for f32 (and bf16) gradients, rounded once
  for (Tensor& g : distinct_grads(params, "clip_grad_norm_tensor"))
    g.copy_(mul(g, (g.dtype() == DType::f64 ? scale : scale32).to(g.device())));
  return norm;
}

namespace {
bool flag_is_set(const Tensor& apply, const char* where) {
  IRIS_CHECK(apply.defined() && apply.numel() == 1, where,
             ": the apply flag must be a one-element tensor, got ",
             apply.defined() ? apply.summary() : std::string("an undefined tensor"));
  return apply.item() != 0.0;
}
}  // namespace

void step_if(AdamW& opt, const Tensor& apply) {
  if (flag_is_set(apply, "step_if")) opt.step();
}

void update_if(EMA& ema, const Tensor& apply) {
  if (flag_is_set(apply, "update_if")) ema.update();
}

}  // namespace iris::optim
