// Activation (gradient) checkpointing: trade compute for memory by not keeping a segment's intermediates.
//
//   Tensor y = checkpoint([&](const std::vector<Tensor>& in) { return block.forward(in[0], in[1], rng); },
//                         {x, emb}, block.parameters(), rng);
//
// Forward: `fn` runs under no_grad, so none of its intermediates is kept; one node ("checkpoint") is
// recorded whose inputs are `inputs` followed by `params`, and which saves only the inputs (SavedTensor:
// an alias, no copy) plus the generator state and the autocast scope.
// Backward (that node's apply): the inputs are re-made as fresh leaves (detached aliases that require grad
// as the originals did), the generator is set back to its state at forward time, `fn` runs again with grad
// mode on under the same autocast scope, and a nested backward pass (autograd::backward_to_leaves) takes
// the incoming gradient through the recomputed graph to the fresh inputs and to the parameters. The
// recomputed graph is freed when the node's backward returns, so at most one segment's intermediates are
// alive at a time during backward.
//
// Parameters and gradient-ready hooks: the nested pass does not write `.grad` nor fire hooks. It returns the
// parameters' gradients (summed over every use inside the segment) as the node's input gradients, and the
// outer pass accumulates them like any other edge into a leaf. The outer pass counts the node's edge to each
// parameter, so a parameter's hook fires once, after its last contribution (inside or outside any segment)
// has arrived, exactly as without checkpointing: the data-parallel reducer sees each parameter once with its
// complete gradient.
//
// What `fn` may use: `inputs` (any tensor; only those that require grad get a gradient) and `params`
// (leaves; parameters of the modules fn calls, e.g. module.parameters()). A tensor that requires grad and
// reaches fn any other way (a captured parameter not listed, a captured activation) is caught in backward:
// iris::Error naming the leaf or op, instead of a silently lost gradient. Everything else fn depends on
// (hyperparameters, the module's training flag, ...) must be the same at backward time.
//
// Randomness: `rng` (may be null) is the generator fn draws from (dropout). Its full state (including the
// per-sample streams) is copied at forward time and restored for the recomputation, so the same masks are
// drawn; afterwards it is put back to its state before the recomputation, so the training stream advances
// exactly as without checkpointing. fn must draw from no other generator.
//
// Errors, as for any op: a second backward through the node without retain_graph=true throws the engine's
// "already freed" error; an input or parameter modified in place between forward and backward throws the
// SavedTensor version error naming 'checkpoint'. fn must be deterministic (given the generator) and return
// a tensor of the same shape and dtype both times (checked).
//
// When grad mode is off or nothing in `inputs` and `params` requires grad, fn is simply called (no node).
#pragma once

#include <functional>
#include <vector>

#include "framework/core/generator.h"
#include "framework/core/tensor.h"

namespace iris {

using SegmentFn = std::function<Tensor(const std::vector<Tensor>& inputs)>;

Tensor checkpoint(SegmentFn fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& params = {},
                  Generator* rng = nullptr);

}  // namespace iris
