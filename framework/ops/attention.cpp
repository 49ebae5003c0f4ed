// Attention: O = softmax(Q Kᵀ · scale) V with a dedicated backward.
//
// Everything runs on [B*heads, T, d] batches of matrices through the device-neutral kernels cpu::bmm /
// cpu::softmax / cpu::softmax_backward (or their CUDA twins), so the op works on any device that has them.
// Dtypes: the GEMMs run in the inputs' dtype T (bf16 under autocast on CUDA); the scores are converted to
// the softmax dtype Ts (f32 for bf16, else T) before the softmax, and the probabilities P are kept in Ts.
//
// Backward, with S = scale · Q Kᵀ and P = softmax(S):
//   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = scale · dS K,  dK = scale · dSᵀ Q.
#include "framework/ops/attention.h"

#include <cmath>

#include "framework/kernels/matmul.h"
#include "framework/kernels/softmax.h"
#include "framework/autograd/node.h"
#include "framework/ops/autocast.h"
#include "framework/ops/dispatch.h"

namespace iris {

using autograd::NeedGrad;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

struct AttnDims {
  int64_t B, H, Tq, Tk, d, dv;
  int64_t BH() const { return B * H; }
};

// out[b] = alpha · a[b] @ b_[b] over [BH, ., .] batches, allocated here.
Tensor bmm_new(const Tensor& a, const Tensor& b, double alpha) {
  Tensor out = Tensor::empty({a.size(0), a.size(1), b.size(2)}, a.dtype(), a.device());
  IRIS_DISPATCH_DEVICE(a.device(), bmm, a, b, out, alpha, 0.0);
  return out;
}

}  // namespace

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale) {
  const char* op = "attention";
  check_defined(q_in, op, "q");
  check_defined(k_in, op, "k");
  check_defined(v_in, op, "v");
  check_same_device(op, {&q_in, &k_in, &v_in});
  check_floating(q_in, op);
  check_floating(k_in, op);
  check_floating(v_in, op);
  IRIS_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4, op,
             ": expected q [B, heads, Tq, d], k [B, heads, Tk, d], v [B, heads, Tk, dv], got q ",
             shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()), ", v ", shape_str(v_in.shape()));
  const AttnDims dm{q_in.size(0), q_in.size(1), q_in.size(2), k_in.size(2), q_in.size(3), v_in.size(3)};
  IRIS_CHECK(k_in.size(0) == dm.B && v_in.size(0) == dm.B && k_in.size(1) == dm.H && v_in.size(1) == dm.H, op,
             ": batch and head axes differ: q ", shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()),
             ", v ", shape_str(v_in.shape()));
  IRIS_CHECK(k_in.size(3) == dm.d, op, ": q and k head dims differ: q ", shape_str(q_in.shape()), ", k ",
             shape_str(k_in.shape()));
  IRIS_CHECK(v_in.size(2) == dm.Tk, op, ": k and v have different numbers of keys: k ",
             shape_str(k_in.shape()), ", v ", shape_str(v_in.shape()));
  IRIS_CHECK(dm.Tk > 0 && dm.d > 0 && dm.dv > 0, op,
             ": needs at least one key and non-empty head dims, got q ", shape_str(q_in.shape()), ", k ",
             shape_str(k_in.shape()), ", v ", shape_str(v_in.shape()));
  IRIS_CHECK(std::isfinite(scale), op, ": scale must be finite, got ", scale);

  // Autocast, then one common dtype; contiguous so that every [BH, T, d] view (and its transpose) has a unit
  // stride along one axis, as the GEMM kernels require.
  Tensor q = autocast_input(q_in), k = autocast_input(k_in), v = autocast_input(v_in);
  const DType dt = promote_floating(promote_floating(q.dtype(), k.dtype()), v.dtype());
  q = q.to(dt).contiguous();
  k = k.to(dt).contiguous();
  v = v.to(dt).contiguous();
  const DType soft_dt = dt == DType::bf16 ? DType::f32 : dt;
  const Device dev = q.device();

  Tensor out = Tensor::empty({dm.B, dm.H, dm.Tq, dm.dv}, dt, dev);
  if (out.numel() == 0) return out;
  const int64_t BH = dm.BH();
  const Tensor q3 = q.detach().view({BH, dm.Tq, dm.d});
  const Tensor k3 = k.detach().view({BH, dm.Tk, dm.d});
  const Tensor v3 = v.detach().view({BH, dm.Tk, dm.dv});

  // S = scale · Q Kᵀ [BH, Tq, Tk] in T; P = softmax(S) in Ts; O = P V in T.
  const Tensor s = bmm_new(q3, k3.transpose(1, 2), scale).to(soft_dt);
  Tensor p = Tensor::empty(s.shape(), soft_dt, dev);
  IRIS_DISPATCH_DEVICE(dev, softmax, s, p, false);
  Tensor o3 = out.view({BH, dm.Tq, dm.dv});
  IRIS_DISPATCH_DEVICE(dev, bmm, p.to(dt), v3, o3, 1.0, 0.0);

  if (autograd::any_requires_grad({&q, &k, &v})) {
    SavedTensor sq(q3), sk(k3), sv(v3), sp(p);
    autograd::record(op, out, {&q, &k, &v},
                     [sq, sk, sv, sp, dm, scale, dt](const Tensor& g, NeedGrad need) -> Grads {
                       const int64_t BH = dm.BH();
                       const Tensor& pv = sp.get();  // [BH, Tq, Tk] in Ts
                       const Tensor go = g.to(dt).contiguous().view({BH, dm.Tq, dm.dv});
                       Tensor dq, dk, dv;
                       if (need[2])
                         dv = bmm_new(pv.to(dt).transpose(1, 2), go, 1.0).view({dm.B, dm.H, dm.Tk, dm.dv});
                       if (need[0] || need[1]) {
                         const Tensor dp = bmm_new(go, sv.get().transpose(1, 2), 1.0).to(pv.dtype());
                         Tensor ds = Tensor::empty(pv.shape(), pv.dtype(), pv.device());
                         IRIS_DISPATCH_DEVICE(pv.device(), softmax_backward, pv, dp, ds, false);
                         const Tensor dsc = ds.to(dt);
                         if (need[0]) dq = bmm_new(dsc, sk.get(), scale).view({dm.B, dm.H, dm.Tq, dm.d});
                         if (need[1])
                           dk = bmm_new(dsc.transpose(1, 2), sq.get(), scale).view({dm.B, dm.H, dm.Tk, dm.d});
                       }
                       return {dq, dk, dv};
                     });
  }
  return out;
}

}  // namespace iris
