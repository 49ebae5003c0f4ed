#include "framework/optim/clip.h"

#include <algorithm>
#include <cmath>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"

namespace iris::optim {

double grad_norm(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  // One f64 accumulator per device; a single host read per device at the end.
  std::vector<Tensor> totals;
  std::vector<const TensorImpl*> seen;  // a tensor listed twice counts once
  for (const Tensor& p : params) {
    check_defined(p, "grad_norm", "parameter");
    if (std::find(seen.begin(), seen.end(), p.impl()) != seen.end()) continue;
    seen.push_back(p.impl());
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    check_floating(g, "grad_norm");
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
  double sum_sq = 0.0;
  for (const Tensor& t : totals) sum_sq += t.item();
  return std::sqrt(sum_sq);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  IRIS_CHECK(max_norm > 0 && std::isfinite(max_norm), "clip_grad_norm: max_norm must be finite and > 0, got ",
             max_norm);
  const double norm = grad_norm(params);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double scale = max_norm / (norm + 1e-6);
  NoGradGuard no_grad;
  std::vector<const TensorImpl*> seen;
  for (const Tensor& p : params) {
    if (std::find(seen.begin(), seen.end(), p.impl()) != seen.end()) continue;
    seen.push_back(p.impl());
    Tensor g = p.grad();
    if (g.defined()) g.copy_(mul(g, scale));
  }
  return norm;
}

}  // namespace iris::optim
