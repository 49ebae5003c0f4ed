// The backward engine: collects the nodes reachable from the root, runs them in reverse creation order,
// sums gradients that meet at a node, and hands each leaf its gradient once no more can arrive (firing the
// leaf's "gradient ready" hooks, which data parallelism uses to start all-reducing early).
//
// backward_to_leaves is the same pass in "capture" mode, for nodes whose backward differentiates a graph of
// their own (checkpoint): final leaf gradients are returned instead of written to .grad, no hook fires, and
// the pass refuses to enter a graph recorded before its own (the outer pass owns that). All state lives on
// the stack and the thread-local op name and grad mode are restored by guards, so a pass can run inside a
// node's apply() of another.
#include <algorithm>
#include <atomic>
#include <unordered_map>

#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"
#include "framework/ops/elementwise.h"

namespace iris::autograd {

namespace {
std::atomic<uint64_t> g_next_seq{1};
thread_local const char* t_current_op = nullptr;

// Sets the op name reported by SavedTensor errors while a node's backward runs.
struct CurrentOpScope {
  const char* prev;
  explicit CurrentOpScope(const char* name) : prev(t_current_op) { t_current_op = name; }
  ~CurrentOpScope() { t_current_op = prev; }
};

void accumulate(Tensor& slot, Tensor g) {
  if (!g.defined()) return;
  slot = slot.defined() ? add(slot, g) : std::move(g);
}

// Checks that a backward formula returned a gradient shaped like its input; converts dtype/device if the
// formula produced another (e.g. an f32 gradient for a bf16 input).
Tensor conform(Tensor g, const Edge& e, const char* op, size_t index) {
  if (!g.defined()) return g;
  IRIS_CHECK(g.shape() == e.shape, "internal error: backward of '", op, "' returned a gradient of shape ",
             shape_str(g.shape()), " for input ", index, " of shape ", shape_str(e.shape));
  Tensor out = std::move(g);
  if (out.device() != e.device) out = out.to(e.device);
  if (out.dtype() != e.dtype) out = out.to(e.dtype);
  return out;
}
}  // namespace

Node::Node(const char* name) : name_(name), seq_(g_next_seq.fetch_add(1)) {}

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  value_ = t.detach();
  version_ = t.storage()->version();
}

const Tensor& SavedTensor::get() const {
  if (value_.defined() && value_.storage()->version() != version_) {
    IRIS_THROW("a tensor ", value_.summary(), " saved for the backward of '",
               t_current_op ? t_current_op : "?", "' was modified in place after it was saved (version ",
               version_, " at save time, now ", value_.storage()->version(),
               "); clone it before modifying, or modify it under no_grad before using it");
  }
  return value_;
}

const char* current_backward_op() { return t_current_op; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void attach(Tensor& output, const std::vector<const Tensor*>& inputs, std::shared_ptr<Node> node) {
  auto& edges = node->inputs();
  edges.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor* t = inputs[i];
    if (!t || !t->defined() || !t->requires_grad()) continue;
    Edge& e = edges[i];
    e.shape = t->shape();
    e.dtype = t->dtype();
    e.device = t->device();
    if (t->grad_fn())
      e.node = t->grad_fn();
    else
      e.leaf = t->impl_ptr();
  }
  TensorImpl* impl = output.impl();
  impl->requires_grad = true;
  impl->grad_fn = std::move(node);
}

namespace {

// A nested pass that hands leaf gradients back instead of accumulating them (see backward_to_leaves).
struct Capture {
  std::unordered_map<const TensorImpl*, size_t> slot;  // leaf -> index in `grads`
  std::vector<Tensor> grads;
  uint64_t min_seq = 0;
  const char* caller = "";
};

Tensor make_seed(const Tensor& root, const Tensor& seed_in, const char* op) {
  check_defined(root, op, "root");
  IRIS_CHECK(root.requires_grad(), op, ": the tensor ", root.summary(),
             " does not require grad (no input of the ops that made it requires grad, or it was made under "
             "no_grad)");
  Tensor seed = seed_in;
  if (!seed.defined()) {
    IRIS_CHECK(root.numel() == 1, op, ": a seed gradient is needed for the non-scalar tensor ",
               root.summary());
    seed = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  IRIS_CHECK(seed.shape() == root.shape(), op, ": seed gradient of shape ", shape_str(seed.shape()),
             " does not match the root of shape ", shape_str(root.shape()));
  return seed;
}

// A leaf's gradient for this pass is final: accumulate it into leaf->grad and fire the gradient-ready hooks
// (normal pass), or hand it to the capture (nested pass; .grad and hooks untouched).
void deliver(TensorImpl* leaf, Tensor lg, Capture* cap) {
  if (cap) {
    Tensor& slot = cap->grads[cap->slot.at(leaf)];
    accumulate(slot, std::move(lg));
    return;
  }
  // Own the gradient exclusively (optimizers and reducers write into it in place).
  const bool exclusive =
      lg.impl_ptr().use_count() == 1 && lg.storage().use_count() == 1 && lg.is_contiguous();
  leaf->grad = leaf->grad.defined() ? add(leaf->grad, lg) : (exclusive ? lg : lg.clone());
  for (auto& hook : leaf->grad_ready_hooks) hook(leaf->grad);
}

// Throws unless a nested pass may reach this leaf / node (see backward_to_leaves).
void check_capture_leaf(const Capture* cap, const TensorImpl* leaf) {
  if (!cap || cap->slot.count(leaf)) return;
  IRIS_THROW(cap->caller, ": the recomputed graph reaches a leaf ", dtype_name(leaf->dtype),
             shape_str(leaf->shape),
             " that requires grad but is neither one of its inputs nor one of its listed parameters; pass it "
             "in `inputs` or `params` (otherwise its gradient would be lost)");
}

void run(const Tensor& root, const Tensor& seed, bool retain_graph, Capture* cap) {
  NoGradGuard no_grad;

  // A leaf root: its gradient is the seed.
  if (!root.grad_fn()) {
    check_capture_leaf(cap, root.impl());
    deliver(root.impl(), seed.to(root.device()).to(root.dtype()), cap);
    return;
  }

  // Collect reachable nodes and count how many edges lead to each leaf.
  std::vector<Node*> nodes;
  std::unordered_map<Node*, bool> seen;
  std::unordered_map<TensorImpl*, int> leaf_pending;
  std::vector<Node*> stack{root.grad_fn().get()};
  seen[stack.back()] = true;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    IRIS_CHECK(!cap || n->seq() >= cap->min_seq, cap ? cap->caller : "", ": the recomputed graph reaches '",
               n->name(),
               "', an op recorded before the recomputation: the segment's function uses a tensor "
               "that requires grad and was computed outside it without being passed in `inputs`; pass it in "
               "`inputs`");
    nodes.push_back(n);
    for (Edge& e : n->inputs()) {
      if (e.node && !seen[e.node.get()]) {
        seen[e.node.get()] = true;
        stack.push_back(e.node.get());
      }
      if (e.leaf) {
        check_capture_leaf(cap, e.leaf.get());
        leaf_pending[e.leaf.get()]++;
      }
    }
  }
  std::sort(nodes.begin(), nodes.end(), [](Node* a, Node* b) { return a->seq() > b->seq(); });

  std::unordered_map<Node*, Tensor> grads;
  std::unordered_map<TensorImpl*, Tensor> leaf_grads;
  grads[root.grad_fn().get()] = seed.to(root.device());

  for (Node* n : nodes) {
    IRIS_CHECK(!n->released(), "backward: the graph through '", n->name(),
               "' was already freed by an earlier backward; pass retain_graph=true to the first backward "
               "to run backward twice");
    auto it = grads.find(n);
    Tensor g = it == grads.end() ? Tensor() : it->second;
    if (it != grads.end()) grads.erase(it);
    std::vector<Tensor> in_grads;
    if (g.defined()) {
      CurrentOpScope scope(n->name());
      in_grads = n->apply(g);
      IRIS_CHECK(in_grads.size() == n->inputs().size(), "internal error: backward of '", n->name(),
                 "' returned ", in_grads.size(), " gradients for ", n->inputs().size(), " inputs");
    }
    for (size_t i = 0; i < n->inputs().size(); ++i) {
      Edge& e = n->inputs()[i];
      Tensor gi = i < in_grads.size() && e.active() ? conform(std::move(in_grads[i]), e, n->name(), i)
                                                     : Tensor();
      if (e.node) accumulate(grads[e.node.get()], std::move(gi));
      if (e.leaf) {
        TensorImpl* leaf = e.leaf.get();
        accumulate(leaf_grads[leaf], std::move(gi));
        if (--leaf_pending[leaf] == 0) {
          // No more gradient can reach this leaf in this pass: it is final.
          Tensor& lg = leaf_grads[leaf];
          if (lg.defined()) deliver(leaf, std::move(lg), cap);
          leaf_grads.erase(leaf);
        }
      }
    }
    if (!retain_graph) {
      n->release();
      n->mark_released();
    }
  }
}
}  // namespace

uint64_t next_node_seq() {
  return g_next_seq.load();
}

void run_backward(const Tensor& root, const Tensor& seed_in, bool retain_graph) {
  run(root, make_seed(root, seed_in, "backward"), retain_graph, nullptr);
}

std::vector<Tensor> backward_to_leaves(const Tensor& root, const Tensor& seed, const std::vector<Tensor>& wrt,
                                       uint64_t min_seq, const char* caller) {
  Capture cap;
  cap.min_seq = min_seq;
  cap.caller = caller;
  cap.grads.resize(wrt.size());
  for (size_t i = 0; i < wrt.size(); ++i) {
    IRIS_CHECK(wrt[i].defined() && wrt[i].is_leaf() && wrt[i].requires_grad(), "internal error: ", caller,
               ": backward_to_leaves needs leaves that require grad, got ",
               wrt[i].defined() ? wrt[i].summary() : std::string("an undefined tensor"));
    IRIS_CHECK(cap.slot.emplace(wrt[i].impl(), i).second, "internal error: ", caller,
               ": backward_to_leaves got the same leaf twice");
  }
  run(root, make_seed(root, seed, caller), /*retain_graph=*/false, &cap);
  return std::move(cap.grads);
}

}  // namespace iris::autograd

namespace iris {

// Defined here rather than in core/tensor.cpp: the core holds a tensor's gradient metadata, the engine
// runs it.
void Tensor::backward(const Tensor& seed, bool retain_graph) const {
  autograd::run_backward(*this, seed, retain_graph);
}

}  // namespace iris
