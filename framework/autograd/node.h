// Autograd graph nodes and how ops record them.
//
// Every differentiable op that runs with grad mode on and an input that requires grad records one Node for
// its (single) output. The node keeps edges to the nodes that produced its inputs (or to the leaf tensors
// themselves) and whatever its backward needs, saved as SavedTensor (a detached alias plus the storage
// version at save time, so an in-place change before backward is caught and named).
//
// Nodes are numbered in creation order; the engine (engine.cpp) runs them in reverse creation order, which
// is a topological order because an op's inputs always exist before it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::autograd {

class Node;

// Where the gradient for one input goes: to the node that produced it, or to a leaf, or nowhere.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;  // the input's shape and dtype, to check the gradient a backward formula returns
  DType dtype = DType::f32;
  Device device;
  bool active() const { return node || leaf; }
};

class Node {
 public:
  explicit Node(const char* name);
  virtual ~Node() = default;

  // Gradients for each input (same order as inputs()), given the gradient of the output. An undefined
  // tensor means "no gradient" (input not needing one).
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Drops saved tensors after a backward pass without retain_graph.
  virtual void release() = 0;

  const char* name() const { return name_; }
  uint64_t seq() const { return seq_; }
  std::vector<Edge>& inputs() { return inputs_; }
  bool needs_grad(size_t i) const { return i < inputs_.size() && inputs_[i].active(); }
  bool released() const { return released_; }
  void mark_released() { released_ = true; }

 private:
  const char* name_;
  uint64_t seq_;
  std::vector<Edge> inputs_;
  bool released_ = false;
};

// Which inputs need a gradient; passed to backward formulas so they skip the work for the rest.
class NeedGrad {
 public:
  explicit NeedGrad(const Node* n) : node_(n) {}
  bool operator[](size_t i) const { return node_->needs_grad(i); }

 private:
  const Node* node_;
};

// A tensor kept for backward: a detached alias and the version of its storage when saved.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  // The saved value; throws iris::Error naming the op whose backward is running if it was modified in place.
  const Tensor& get() const;
  bool defined() const { return value_.defined(); }

 private:
  Tensor value_;
  uint64_t version_ = 0;
};

// A node whose backward is a callable: fn(grad_output, NeedGrad) -> one gradient per input.
template <class F>
class LambdaNode final : public Node {
 public:
  LambdaNode(const char* name, F fn) : Node(name), fn_(std::make_unique<F>(std::move(fn))) {}
  std::vector<Tensor> apply(const Tensor& g) override { return (*fn_)(g, NeedGrad(this)); }
  // unique_ptr so that release() frees the captured SavedTensors whatever F is.
  void release() override { fn_.reset(); }

 private:
  std::unique_ptr<F> fn_;
};

// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `output` with edges to `inputs`. Call only when any_requires_grad(inputs).
void attach(Tensor& output, const std::vector<const Tensor*>& inputs, std::shared_ptr<Node> node);

// Records an op: `backward` is fn(const Tensor& grad_out, NeedGrad need) -> std::vector<Tensor> (one per
// input, undefined where not needed). Does nothing when no input requires grad or grad mode is off.
template <class F>
void record(const char* name, Tensor& output, std::initializer_list<const Tensor*> inputs, F backward) {
  if (!any_requires_grad(inputs)) return;
  auto node = std::make_shared<LambdaNode<F>>(name, std::move(backward));
  attach(output, std::vector<const Tensor*>(inputs), node);
}
template <class F>
void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, F backward) {
  if (!any_requires_grad(inputs)) return;
  auto node = std::make_shared<LambdaNode<F>>(name, std::move(backward));
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : inputs) ptrs.push_back(&t);
  attach(output, ptrs, node);
}

// Runs backward from `root` with gradient `seed` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& seed, bool retain_graph);

// The sequence number the next recorded node will get (nodes made from now on have seq >= this).
uint64_t next_node_seq();

// A nested backward pass, for a node whose own backward builds and differentiates a graph (checkpoint):
// runs backward from `root` with gradient `seed` (undefined: 1 for a one-element root) and returns the
// gradient reaching each tensor of `wrt` (leaves that require grad; undefined where none arrived). Unlike
// run_backward it neither touches `.grad` nor fires gradient-ready hooks: the caller returns the gradients
// to the outer pass, which accumulates them and decides when a leaf is final. The graph is freed.
// Reentrant: it keeps its state on the stack, so it can run inside a node's apply() of an outer pass.
// Throws iris::Error (naming `caller`) if the graph reaches a leaf that requires grad and is not in `wrt`,
// or a node recorded before `min_seq` (an outer graph, which this pass must neither run nor free).
std::vector<Tensor> backward_to_leaves(const Tensor& root, const Tensor& seed, const std::vector<Tensor>& wrt,
                                       uint64_t min_seq, const char* caller);

}  // namespace iris::autograd
