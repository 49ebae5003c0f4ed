// GroupNorm and fused GroupNorm+SiLU: checks, dtype handling, dispatch and backward.
#include "framework/ops/norm.h"

#include <cmath>

#include "framework/kernels/norm.h"
#include "framework/autograd/node.h"
#include "framework/ops/dispatch.h"

namespace iris {

using autograd::NeedGrad;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// Checks an affine parameter (gamma or beta) and converts it to the statistics dtype, differentiably.
Tensor prepare_param(const Tensor& p, const char* op, const char* what, const Tensor& x, DType stat_dtype) {
  if (!p.defined()) return p;
  IRIS_CHECK(is_floating(p.dtype()), op, ": ", what, " must be floating, got ", p.summary());
  IRIS_CHECK(p.dim() == 1 && p.size(0) == x.size(-1), op, ": ", what, " must be [C] = [", x.size(-1),
             "] for input ", x.summary(), ", got ", p.summary());
  check_same_device(op, {&x, &p});
  return p.to(stat_dtype).contiguous();
}

Tensor group_norm_impl(const char* op, const Tensor& x_in, int64_t groups, const Tensor& gamma_in,
                       const Tensor& beta_in, double eps, bool fuse_silu) {
  check_defined(x_in, op);
  check_floating(x_in, op);
  IRIS_CHECK(x_in.dim() >= 2, op, ": expected channels-last [N, ..., C] with at least 2 axes, got ",
             x_in.summary());
  const int64_t C = x_in.size(-1);
  IRIS_CHECK(C > 0, op, ": input ", x_in.summary(), " has no channels");
  IRIS_CHECK(groups > 0 && C % groups == 0, op, ": groups = ", groups, " must divide the C = ", C,
             " channels of input ", x_in.summary());
  IRIS_CHECK(eps >= 0 && std::isfinite(eps), op, ": eps must be finite and >= 0, got ", eps);
  // Statistics (and the affine parameters) in f32, or f64 for f64 input: bf16 is a storage type only.
  const DType stat_dtype = x_in.dtype() == DType::f64 ? DType::f64 : DType::f32;
  const Tensor gamma = prepare_param(gamma_in, op, "gamma", x_in, stat_dtype);
  const Tensor beta = prepare_param(beta_in, op, "beta", x_in, stat_dtype);
  const Tensor x = x_in.contiguous();

  const int64_t N = x.size(0);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({N, groups}, stat_dtype, x.device());
  Tensor rstd = Tensor::empty({N, groups}, stat_dtype, x.device());
  if (x.numel() > 0)
    IRIS_DISPATCH_DEVICE(x.device(), group_norm_forward, x, gamma, beta, y, mean, rstd, groups, eps,
                         fuse_silu);

  if (autograd::any_requires_grad({&x, &gamma, &beta})) {
    // Only x and the statistics are kept (plus the parameters, which the caller holds anyway); the
    // normalised value and the output are recomputed / not needed.
    SavedTensor sx(x), sgamma(gamma), sbeta(fuse_silu ? beta : Tensor()), smean(mean), srstd(rstd);
    autograd::record(
        op, y, {&x, &gamma, &beta},
        [sx, sgamma, sbeta, smean, srstd, groups, fuse_silu](const Tensor& g, NeedGrad need) -> Grads {
          const Tensor& xv = sx.get();
          const Tensor gy = g.to(xv.dtype()).contiguous();
          const Tensor& gam = sgamma.get();
          const int64_t C = xv.size(-1);
          Tensor dx, dgamma, dbeta;
          if (need[0]) dx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
          if (need[1]) dgamma = Tensor::empty({C}, gam.dtype(), xv.device());
          if (need[2]) dbeta = Tensor::empty({C}, smean.get().dtype(), xv.device());
          if (xv.numel() > 0) {
            IRIS_DISPATCH_DEVICE(xv.device(), group_norm_backward, gy, xv, gam, sbeta.get(), smean.get(),
                                 srstd.get(), dx, dgamma, dbeta, groups, fuse_silu);
          } else {
            if (dgamma.defined()) dgamma.zero_();
            if (dbeta.defined()) dbeta.zero_();
          }
          return {dx, dgamma, dbeta};
        });
  }
  return y;
}

}  // namespace

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, double eps) {
  return group_norm_impl("group_norm", x, groups, gamma, beta, eps, false);
}

Tensor group_norm_silu(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, double eps) {
  return group_norm_impl("group_norm_silu", x, groups, gamma, beta, eps, true);
}

}  // namespace iris
