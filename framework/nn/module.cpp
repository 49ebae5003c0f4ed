#include "framework/nn/module.h"

#include <algorithm>
#include <set>

#include "framework/autograd/grad_mode.h"
#include "framework/nn/tensor_problems.h"

namespace iris::nn {

void Module::check_new_name(const std::string& name, const char* what) const {
  IRIS_CHECK(!name.empty(), "Module::", what, ": empty name");
  IRIS_CHECK(name.find('.') == std::string::npos, "Module::", what, ": name '", name,
             "' contains '.', which separates the levels of full names");
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  IRIS_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "Module::", what, ": the name '", name,
             "' is already registered in this module");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name, "register_parameter");
  IRIS_CHECK(t.defined(), "Module::register_parameter: '", name, "' is an undefined tensor");
  IRIS_CHECK(is_floating(t.dtype()), "Module::register_parameter: '", name, "' must be floating, got ",
             t.summary());
  IRIS_CHECK(t.is_leaf(), "Module::register_parameter: '", name, "' (", t.summary(),
             ") is the result of an op; detach() it to make a leaf");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "register_buffer");
  IRIS_CHECK(t.defined(), "Module::register_buffer: '", name, "' is an undefined tensor");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_new_name(name, "register_module");
  IRIS_CHECK(child.get() != this, "Module::register_module: '", name, "' is the module itself");
  children_.emplace_back(name, std::move(child));
}

void Module::collect(Kind kind, const std::string& prefix, bool dedup, NamedTensors& out,
                     std::vector<const TensorImpl*>& seen) const {
  for (const auto& [name, t] : kind == Kind::parameter ? params_ : buffers_) {
    if (dedup) {
      if (std::find(seen.begin(), seen.end(), t.impl()) != seen.end()) continue;
      seen.push_back(t.impl());
    }
    out.emplace_back(prefix + name, t);
  }
  for (const auto& [name, child] : children_) child->collect(kind, prefix + name + ".", dedup, out, seen);
}

NamedTensors Module::all(Kind kind, bool dedup) const {
  NamedTensors out;
  std::vector<const TensorImpl*> seen;
  collect(kind, "", dedup, out, seen);
  return out;
}

NamedTensors Module::named_parameters() const {
  return all(Kind::parameter, true);
}
NamedTensors Module::named_buffers() const {
  return all(Kind::buffer, true);
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  auto move = [&](Tensor& t) {
    const Tensor g = t.grad();
    t.set_data(t.to(device));
    if (g.defined()) t.set_grad(g.to(device));
  };
  for (auto& [name, t] : named_parameters()) move(t);
  for (auto& [name, t] : named_buffers()) move(t);
}

void Module::to(DType dtype) {
  IRIS_CHECK(is_floating(dtype), "Module::to: parameters must stay floating, asked for ", dtype_name(dtype));
  NoGradGuard no_grad;
  auto convert = [&](Tensor& t) {
    if (!is_floating(t.dtype())) return;
    const Tensor g = t.grad();
    t.set_data(t.to(dtype));
    if (g.defined()) t.set_grad(g.to(dtype));
  };
  for (auto& [name, t] : named_parameters()) convert(t);
  for (auto& [name, t] : named_buffers()) convert(t);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.set_grad(Tensor());
}

StateDict Module::state_dict() const {
  StateDict out;
  for (const auto& [name, t] : all(Kind::parameter, false)) out[name] = t.detach();
  for (const auto& [name, t] : all(Kind::buffer, false)) out[name] = t.detach();
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  NamedTensors targets = all(Kind::parameter, false);
  for (auto& e : all(Kind::buffer, false)) targets.push_back(std::move(e));

  TensorProblems problems;
  std::set<std::string> expected;
  for (const auto& [name, t] : targets) {
    expected.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      if (strict) problems.missing.push_back(name);
    } else if (!it->second.defined()) {
      problems.misshaped.push_back("'" + name + "' is an undefined tensor");
    } else if (it->second.shape() != t.shape()) {
      problems.misshaped.push_back("'" + name + "': checkpoint " + shape_str(it->second.shape()) +
                                   ", model " + shape_str(t.shape()));
    }
  }
  if (strict)
    for (const auto& [name, t] : state)
      if (!expected.count(name)) problems.unexpected.push_back(name);
  IRIS_CHECK(!problems.any(), "load_state_dict: the state does not fit the module (", targets.size(),
             " keys expected, ", state.size(), " given)", problems.describe());

  NoGradGuard no_grad;
  for (auto& [name, t] : targets) {
    auto it = state.find(name);
    if (it != state.end()) t.copy_(it->second);
  }
}

}  // namespace iris::nn
