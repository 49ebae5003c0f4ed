// Activation checkpointing (see checkpoint.h for the contract): the forward call and the node that
// recomputes and differentiates the segment in backward.
#include "framework/autograd/checkpoint.h"

#include <unordered_set>

#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"

namespace iris {

namespace {

using autograd::SavedTensor;

// Puts a generator back to the state it had when the scope began (also when the segment throws).
class GeneratorRestore {
 public:
  explicit GeneratorRestore(Generator* gen) : gen_(gen) {
    if (gen_) saved_ = *gen_;
  }
  ~GeneratorRestore() {
    if (gen_) *gen_ = saved_;
  }
  GeneratorRestore(const GeneratorRestore&) = delete;
  GeneratorRestore& operator=(const GeneratorRestore&) = delete;

 private:
  Generator* gen_;
  Generator saved_;
};

// Edges: [inputs..., params...]. Saves the inputs (aliases) and what the recomputation must reproduce.
class CheckpointNode final : public autograd::Node {
 public:
  CheckpointNode(SegmentFn fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& params,
                 Generator* rng, const Tensor& out)
      : Node("checkpoint"),
        fn_(std::move(fn)),
        params_(params),
        rng_(rng),
        autocast_(autocast_enabled()),
        autocast_dtype_(autocast_dtype()),
        out_shape_(out.shape()),
        out_dtype_(out.dtype()) {
    for (const Tensor& t : inputs) {
      saved_inputs_.emplace_back(t);
      input_requires_grad_.push_back(t.defined() && t.requires_grad());
    }
    // Only for the version check: a parameter changed in place before backward would be recomputed with
    // its new value, which the un-checkpointed graph would also have refused (its ops saved the weights).
    for (const Tensor& p : params) saved_params_.emplace_back(p);
  }

  // The generator's state before fn ran at forward time; set by checkpoint() (fn advances it).
  void set_rng_at_forward(const Generator& g) { rng_at_forward_ = g; }

  std::vector<Tensor> apply(const Tensor& grad_output) override {
    const size_t ni = saved_inputs_.size(), np = params_.size();
    // Fresh leaves over the saved inputs: the recomputed graph ends at them, not at the outer graph.
    std::vector<Tensor> leaves(ni);
    for (size_t i = 0; i < ni; ++i) {
      const Tensor& v = saved_inputs_[i].get();  // throws if modified in place since forward
      if (!v.defined()) continue;
      leaves[i] = v.detach();
      if (input_requires_grad_[i]) leaves[i].set_requires_grad(true);
    }
    for (const SavedTensor& p : saved_params_) (void)p.get();

    const uint64_t first_seq = autograd::next_node_seq();
    Tensor out;
    {
      GradModeGuard grad_on(true);
      AutocastGuard autocast(autocast_, autocast_dtype_);
      GeneratorRestore restore(rng_);  // the stream continues from where backward found it
      if (rng_) *rng_ = rng_at_forward_;
      out = fn_(leaves);
    }
    IRIS_CHECK(out.defined() && out.shape() == out_shape_ && out.dtype() == out_dtype_,
               "checkpoint: the segment's recomputation returned ", out.defined() ? out.summary() : "nothing",
               " but its forward returned ", dtype_name(out_dtype_), shape_str(out_shape_),
               "; the segment must be deterministic");

    std::vector<Tensor> grads(ni + np);
    if (!out.requires_grad()) return grads;  // nothing that needs a gradient reaches the output
    // Every leaf of the recomputed graph that requires grad: the fresh inputs and the parameters.
    std::vector<Tensor> wrt;
    std::vector<size_t> slot;
    for (size_t i = 0; i < ni; ++i)
      if (leaves[i].defined() && leaves[i].requires_grad()) {
        wrt.push_back(leaves[i]);
        slot.push_back(i);
      }
    for (size_t p = 0; p < np; ++p)
      if (params_[p].requires_grad()) {
        wrt.push_back(params_[p]);
        slot.push_back(ni + p);
      }
    std::vector<Tensor> got = autograd::backward_to_leaves(out, grad_output, wrt, first_seq, "checkpoint");
    for (size_t k = 0; k < got.size(); ++k)
      if (needs_grad(slot[k])) grads[slot[k]] = std::move(got[k]);
    return grads;
  }

  void release() override {
    fn_ = nullptr;  // may capture large things (modules, tensors)
    saved_inputs_.clear();
    saved_params_.clear();
    params_.clear();
  }

 private:
  SegmentFn fn_;
  std::vector<SavedTensor> saved_inputs_;
  std::vector<bool> input_requires_grad_;
  std::vector<Tensor> params_;  // the live parameters fn uses; their gradients are this node's to return
  std::vector<SavedTensor> saved_params_;
  Generator* rng_;
  Generator rng_at_forward_;
  bool autocast_;
  DType autocast_dtype_;
  Shape out_shape_;
  DType out_dtype_;
};

}  // namespace

Tensor checkpoint(SegmentFn fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& params,
                  Generator* rng) {
  IRIS_CHECK(fn != nullptr, "checkpoint: no segment function given");
  // Parameters: defined leaves, each once (a tied weight listed twice must get its gradient once).
  std::vector<Tensor> unique_params;
  std::unordered_set<const TensorImpl*> seen;
  for (const Tensor& p : params) {
    if (!p.defined()) continue;
    IRIS_CHECK(p.is_leaf(), "checkpoint: params must be leaves (module parameters), got ", p.summary(),
               " made by '", p.grad_fn()->name(), "'; pass computed tensors in `inputs`");
    if (seen.insert(p.impl()).second) unique_params.push_back(p);
  }
  std::vector<Tensor> all = inputs;
  all.insert(all.end(), unique_params.begin(), unique_params.end());
  if (!autograd::any_requires_grad(all)) return fn(inputs);  // no history to record: a plain call

  const Generator rng_before = rng ? *rng : Generator();
  Tensor out;
  {
    NoGradGuard no_grad;  // nothing inside the segment is recorded, so its intermediates die as it runs
    out = fn(inputs);
  }
  IRIS_CHECK(out.defined() && is_floating(out.dtype()),
             "checkpoint: the segment must return a floating tensor, got ",
             out.defined() ? out.summary() : "an undefined tensor");
  // A fresh handle: fn may return one of its inputs (or a view sharing its handle), whose autograd identity
  // must not change when the node is attached.
  out = out.detach();
  auto node = std::make_shared<CheckpointNode>(std::move(fn), inputs, unique_params, rng, out);
  node->set_rng_at_forward(rng_before);
  std::vector<const Tensor*> edges;
  for (const Tensor& t : all) edges.push_back(&t);
  autograd::attach(out, edges, node);
  return out;
}

}  // namespace iris
