// Small layers: Linear, Dropout, activations, and a Sequential chain of tensor -> tensor modules.
//
// Layers with a plain `Tensor forward(const Tensor&)` derive from UnaryModule so that Sequential can chain
// them; layers that need more (Dropout's generator, a conditioning input) have their own typed forward.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "framework/core/generator.h"
#include "framework/nn/module.h"

namespace iris::nn {

// A module that maps one tensor to one tensor.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// y = x @ weight^T + bias. weight: [out, in], bias: [out]; x: [..., in] -> [..., out]. Initialised as
// PyTorch's nn.Linear: weight ~ kaiming_uniform(a = sqrt(5)) = U(+-1/sqrt(in)), bias ~ U(+-1/sqrt(in)).
// Parameters are created as f32 on the CPU; Module::to moves them.
class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined without bias

 private:
  int64_t in_, out_;
};

// Inverted dropout with probability p while training (see iris::dropout); the identity in eval mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p);
  Tensor forward(const Tensor& x, Generator& gen);
  double p() const { return p_; }

 private:
  double p_;
};

class Identity : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

class SiLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override;
};

class Tanh : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override;
};

// Applies its children in order; child i is registered under the name "i".
class Sequential : public UnaryModule {
 public:
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<UnaryModule, M>, "Sequential holds tensor -> tensor modules only");
    auto typed = register_module(std::to_string(layers_.size()), std::move(module));
    layers_.push_back(typed);
    return typed;
  }
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;

 private:
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

// An indexed list of child modules of any type, registered under the names "0", "1", ...: how a model
// keeps a variable number of blocks ("down.3.conv1.weight").
class ModuleList : public Module {
 public:
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    return register_module(std::to_string(count_++), std::move(module));
  }
  size_t size() const { return count_; }

 private:
  size_t count_ = 0;
};

}  // namespace iris::nn
