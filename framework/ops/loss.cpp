// Losses composed from existing differentiable ops (each a few passes over the data, no saved copies beyond
// what those ops keep). Reduced-precision inputs are promoted to f32 first: losses are summed in f32.
#include "framework/ops/loss.h"

#include "framework/ops/elementwise.h"
#include "framework/ops/embedding.h"
#include "framework/ops/reduce.h"

namespace iris {

namespace {

// The dtype a loss computes in: the common floating dtype, but never narrower than f32.
DType loss_dtype(DType a, DType b) {
  const DType dt = promote_floating(a, b);
  return dt == DType::bf16 ? DType::f32 : dt;
}

// Checks pred/target and converts both to the loss dtype (differentiably).
std::pair<Tensor, Tensor> prepare_pair(const char* op, const Tensor& pred, const Tensor& target) {
  check_defined(pred, op, "pred");
  check_defined(target, op, "target");
  check_same_device(op, {&pred, &target});
  check_floating(pred, op);
  check_floating(target, op);
  IRIS_CHECK(pred.shape() == target.shape(), op, ": pred ", pred.summary(), " and target ", target.summary(),
             " must have the same shape");
  IRIS_CHECK(pred.numel() > 0, op, ": empty input ", pred.summary());
  const DType dt = loss_dtype(pred.dtype(), target.dtype());
  return {pred.to(dt), target.to(dt)};
}

}  // namespace

Tensor mse_loss(const Tensor& pred, const Tensor& target) {
  auto [p, t] = prepare_pair("mse_loss", pred, target);
  return mean(square(sub(p, t)));
}

Tensor l1_loss(const Tensor& pred, const Tensor& target, const Tensor& sample_weights) {
  const char* op = "l1_loss";
  auto [p, t] = prepare_pair(op, pred, target);
  const Tensor err = abs(sub(p, t));
  if (!sample_weights.defined()) return mean(err);

  check_floating(sample_weights, op);
  check_same_device(op, {&p, &sample_weights});
  IRIS_CHECK(p.dim() >= 1 && sample_weights.dim() == 1 && sample_weights.size(0) == p.size(0), op,
             ": sample_weights must be [N] = [", (p.dim() >= 1 ? p.size(0) : 0), "] for pred ",
             pred.summary(), ", got ", sample_weights.summary());
  // Per-sample mean over the non-batch axes (none for 1-D pred), then the weighted mean over the batch.
  std::vector<int64_t> axes;
  for (int64_t a = 1; a < p.dim(); ++a) axes.push_back(a);
  const Tensor per_sample = axes.empty() ? err : mean(err, axes);
  return mean(mul(per_sample, sample_weights.to(p.dtype())));
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  const char* op = "cross_entropy";
  check_defined(logits, op, "logits");
  check_defined(labels, op, "labels");
  check_floating(logits, op);
  IRIS_CHECK(logits.dim() == 2, op, ": logits must be [N, C], got ", logits.summary());
  IRIS_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0), op, ": labels must be [N] = [",
             logits.size(0), "] for logits ", logits.summary(), ", got ", labels.summary());
  IRIS_CHECK(logits.size(0) > 0 && logits.size(1) > 0, op, ": empty logits ", logits.summary());
  const DType dt = loss_dtype(logits.dtype(), logits.dtype());
  const Tensor logp = log_softmax(logits.to(dt));
  return neg(mean(detail::gather_last(logp, labels, op, "C (classes)")));
}

}  // namespace iris
