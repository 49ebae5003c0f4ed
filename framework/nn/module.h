// Module: a named tree of parameters, buffers and child modules.
//
// A module owns Tensor handles. Parameters are leaves that require grad (the optimizer updates them);
// buffers are state that is saved with the model but not trained. Children are held by std::shared_ptr, so a
// layer keeps a typed pointer to each child it registered and calls its typed forward directly: Module
// imposes no virtual forward signature.
//
// Names: every parameter, buffer and child has a local name (no '.', unique within its module); the full
// name is the dotted path from the root ("down.0.conv1.weight"). Those full names are the checkpoint keys.
// Order: a module's own parameters (or buffers) in registration order, then each child's, children in
// registration order (PyTorch's convention). A tensor or child registered twice (weight tying) is listed
// once, under its first name, by named_parameters()/parameters(); state_dict() lists every name.
//
// Moving: to(Device) / to(DType) replace the data of every parameter and buffer *in place* with
// Tensor::set_data, so a handle held elsewhere (an optimizer, an EMA, a gradient reducer) stays valid.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::nn {

// name -> tensor: what state_dict() returns and load_state_dict() takes.
using StateDict = std::map<std::string, Tensor>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration (from a layer's constructor) -------------------------------------------------------
  // Registers a trainable tensor (a floating leaf; marked requires_grad) and returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor t);
  // Registers saved, untrained state (not marked requires_grad) and returns the same handle.
  Tensor register_buffer(const std::string& name, Tensor t);
  // Registers a child module and returns it with its own type.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    IRIS_CHECK(module != nullptr, "Module::register_module: '", name, "' is a null module");
    add_child(name, std::static_pointer_cast<Module>(module));
    return module;
  }

  // ---- traversal ----------------------------------------------------------------------------------------
  NamedTensors named_parameters() const;  // full dotted names, each tensor once
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }
  int64_t num_parameters() const;  // total elements over parameters()

  // ---- mode -----------------------------------------------------------------------------------------------
  void train(bool on = true);  // this module and all descendants
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // ---- placement (in place; handles stay valid) ----------------------------------------------------------
  // Moves every parameter, buffer and existing gradient to `device`.
  void to(Device device);
  // Converts every floating parameter, floating buffer and existing gradient to `dtype` (a floating dtype);
  // integer buffers are left as they are.
  void to(DType dtype);

  // Drops every parameter's gradient (the next backward pass starts from nothing).
  void zero_grad();

  // ---- checkpoints ----------------------------------------------------------------------------------------
  // Parameters and buffers by full name. The tensors alias the live ones (detached): copy them before
  // changing the module if you keep them.
  StateDict state_dict() const;
  // Copies values into the parameters and buffers (converting dtype and device; shapes must match).
  // Throws one iris::Error that lists every missing key, every unexpected key and every shape mismatch.
  // With strict = false, missing and unexpected keys are allowed (shape mismatches never are). Nothing is
  // copied unless all checks pass.
  void load_state_dict(const StateDict& state, bool strict = true);

 private:
  enum class Kind { parameter, buffer };
  void check_new_name(const std::string& name, const char* what) const;
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  // Every (full name, tensor) of `kind` under this module, with duplicates if `dedup` is false.
  void collect(Kind kind, const std::string& prefix, bool dedup, NamedTensors& out,
               std::vector<const TensorImpl*>& seen) const;
  NamedTensors all(Kind kind, bool dedup) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace iris::nn
