#include "framework/optim/adamw.h"

#include <cmath>
#include <set>
#include <sstream>

#include "framework/kernels/optim.h"
#include "framework/autograd/grad_mode.h"
#include "framework/ops/dispatch.h"

namespace iris::optim {

namespace {
nn::NamedTensors number(const std::vector<Tensor>& params) {
  nn::NamedTensors named;
  for (size_t i = 0; i < params.size(); ++i) named.emplace_back(std::to_string(i), params[i]);
  return named;
}

DType moment_dtype(DType param) {
  return param == DType::f64 ? DType::f64 : DType::f32;
}

void check_param(const std::string& name, const Tensor& p, const char* where) {
  IRIS_CHECK(p.defined(), where, ": parameter '", name, "' is undefined");
  IRIS_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, where, ": parameter '", name,
             "' must be f32 (or f64), got ", p.summary(), "; keep f32 master weights");
  IRIS_CHECK(p.is_contiguous(), where, ": parameter '", name, "' must be contiguous, got a strided ",
             p.summary());
}
}  // namespace

AdamW::AdamW(const std::vector<Tensor>& params, double lr, std::pair<double, double> betas, double eps,
             double weight_decay)
    : AdamW(number(params), lr, betas, eps, weight_decay) {}

AdamW::AdamW(const nn::NamedTensors& params, double lr, std::pair<double, double> betas, double eps,
             double weight_decay)
    : lr_(lr), beta1_(betas.first), beta2_(betas.second), eps_(eps), weight_decay_(weight_decay) {
  check_hyperparameters("AdamW", lr_, beta1_, beta2_, eps_, weight_decay_);
  std::set<std::string> names;
  std::set<const TensorImpl*> seen;
  for (const auto& [name, p] : params) {
    check_param(name, p, "AdamW");
    IRIS_CHECK(names.insert(name).second, "AdamW: two parameters are named '", name, "'");
    IRIS_CHECK(seen.insert(p.impl()).second, "AdamW: parameter '", name,
               "' is listed twice (the same tensor under another name)");
    params_.push_back(Slot{name, p, Tensor(), Tensor(), 0});
  }
}

void AdamW::check_hyperparameters(const char* where, double lr, double beta1, double beta2, double eps,
                                  double weight_decay) {
  IRIS_CHECK(std::isfinite(lr) && lr >= 0, where, ": learning rate must be finite and >= 0, got ", lr);
  IRIS_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, where, ": betas must be in [0, 1), got (",
             beta1, ", ", beta2, ")");
  IRIS_CHECK(eps >= 0, where, ": eps must be >= 0, got ", eps);
  IRIS_CHECK(std::isfinite(weight_decay) && weight_decay >= 0, where,
             ": weight_decay must be finite and >= 0, got ", weight_decay);
}

void AdamW::set_lr(double lr) {
  IRIS_CHECK(std::isfinite(lr) && lr >= 0, "AdamW::set_lr: learning rate must be finite and >= 0, got ", lr);
  lr_ = lr;
}

int64_t AdamW::step_count(size_t index) const {
  IRIS_CHECK(index < params_.size(), "AdamW::step_count: index ", index, " out of range for ", params_.size(),
             " parameters");
  return params_[index].step;
}

void AdamW::step() {
  NoGradGuard no_grad;
  // CPU parameters are updated together at the end, in one parallel region (cpu::adamw_update_multi).
  std::vector<AdamWTensor> cpu_batch;
#ifdef IRIS_WITH_CUDA
  // The parameters on the first CUDA device seen are updated together at the end, by the multi-tensor kernel
  // (a few launches for the whole model); the others one tensor at a time. Same arithmetic either way.
  std::vector<AdamWTensor> batch;
  int batch_device = -1;
#endif
  for (Slot& s : params_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    check_param(s.name, s.param, "AdamW::step");
    IRIS_CHECK(g.device() == s.param.device(), "AdamW::step: gradient of '", s.name, "' is on ",
               g.device().str(), " but the parameter is on ", s.param.device().str());
    if (g.dtype() != s.param.dtype()) g = g.to(s.param.dtype());
    g = g.contiguous();
    const DType md = moment_dtype(s.param.dtype());
    if (!s.m.defined()) {
      s.m = Tensor::zeros(s.param.shape(), md, s.param.device());
      s.v = Tensor::zeros(s.param.shape(), md, s.param.device());
    } else if (s.m.device() != s.param.device() || s.m.dtype() != md) {
      // The module was moved or converted (Module::to) after earlier steps: the moments follow.
      s.m = s.m.to(s.param.device(), md);
      s.v = s.v.to(s.param.device(), md);
    }
    IRIS_CHECK(s.m.shape() == s.param.shape(), "AdamW::step: parameter '", s.name, "' is ", s.param.summary(),
               " but its moments are ", s.m.summary());
    ++s.step;
    AdamWStep k;
    k.lr = lr_;
    k.beta1 = beta1_;
    k.beta2 = beta2_;
    k.eps = eps_;
    k.weight_decay = weight_decay_;
    k.bias_correction1 = 1.0 - std::pow(beta1_, static_cast<double>(s.step));
    k.bias_correction2 = 1.0 - std::pow(beta2_, static_cast<double>(s.step));
#ifdef IRIS_WITH_CUDA
    if (s.param.device().is_cpu()) {
      cpu_batch.push_back(AdamWTensor{s.param, g, s.m, s.v, k});
    } else if (batch_device < 0 || batch_device == s.param.device().index) {
      batch_device = s.param.device().index;
      batch.push_back(AdamWTensor{s.param, g, s.m, s.v, k});
    } else {
      IRIS_DISPATCH_DEVICE(s.param.device(), adamw_update, s.param, g, s.m, s.v, k);
    }
#else
    if (s.param.device().is_cpu()) cpu_batch.push_back(AdamWTensor{s.param, g, s.m, s.v, k});
#endif
    // In-place writes: anything saved for a backward pass over the old values must notice.
    s.param.storage()->bump_version();
    s.m.storage()->bump_version();
    s.v.storage()->bump_version();
  }
#ifdef IRIS_WITH_CUDA
  if (!batch.empty()) cuda::adamw_update_multi(batch, cuda::compute_stream(batch_device));
#endif
  if (!cpu_batch.empty()) {
    KernelTimer timer("adamw_update_multi");
    cpu::adamw_update_multi(cpu_batch);
  }
}

void AdamW::zero_grad() {
  for (Slot& s : params_) s.param.set_grad(Tensor());
}

State AdamW::state() const {
  State st;
  for (const Slot& s : params_) {
    st.ints[s.name + ".step"] = s.step;
    if (s.m.defined()) {
      st.tensors[s.name + ".m"] = s.m;
      st.tensors[s.name + ".v"] = s.v;
    }
  }
  st.floats = {
      {"lr", lr_}, {"beta1", beta1_}, {"beta2", beta2_}, {"eps", eps_}, {"weight_decay", weight_decay_}};
  return st;
}

void AdamW::load_state(const State& st) {
  std::vector<std::string> problems;
  std::set<std::string> used_tensors, used_ints, used_floats;
  auto problem = [&](auto&&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    problems.push_back(os.str());
  };

  for (const Slot& s : params_) {
    const std::string step_key = s.name + ".step";
    auto it = st.ints.find(step_key);
    int64_t step = 0;
    if (it == st.ints.end()) {
      problem("missing '", step_key, "'");
    } else {
      used_ints.insert(step_key);
      step = it->second;
      if (step < 0) problem("'", step_key, "' is negative (", step, ")");
    }
    for (const char* which : {".m", ".v"}) {
      const std::string key = s.name + which;
      auto t = st.tensors.find(key);
      if (t == st.tensors.end()) {
        if (step > 0) problem("missing '", key, "' (the parameter has taken ", step, " steps)");
        continue;
      }
      used_tensors.insert(key);
      if (step == 0)
        problem("'", key, "' given for a parameter that has taken no step");
      else if (!t->second.defined())
        problem("'", key, "' is an undefined tensor");
      else if (t->second.shape() != s.param.shape())
        problem("'", key, "' has shape ", shape_str(t->second.shape()), ", the parameter ",
                shape_str(s.param.shape()));
    }
  }
  for (const char* key : {"lr", "beta1", "beta2", "eps", "weight_decay"}) {
    if (st.floats.count(key))
      used_floats.insert(key);
    else
      problem("missing '", key, "'");
  }
  for (const auto& [k, v] : st.tensors)
    if (!used_tensors.count(k)) problem("unexpected tensor '", k, "'");
  for (const auto& [k, v] : st.ints)
    if (!used_ints.count(k)) problem("unexpected integer '", k, "'");
  for (const auto& [k, v] : st.floats)
    if (!used_floats.count(k)) problem("unexpected value '", k, "'");
  if (!problems.empty()) {
    std::ostringstream os;
    os << "AdamW::load_state: the state does not fit this optimizer (" << params_.size() << " parameters): ";
    for (size_t i = 0; i < problems.size(); ++i) os << (i ? "; " : "") << problems[i];
    IRIS_THROW(os.str());
  }

  // Check the hyperparameters before changing anything.
  const double lr = st.floats.at("lr"), beta1 = st.floats.at("beta1"), beta2 = st.floats.at("beta2"),
               eps = st.floats.at("eps"), weight_decay = st.floats.at("weight_decay");
  check_hyperparameters("AdamW::load_state", lr, beta1, beta2, eps, weight_decay);
  lr_ = lr;
  beta1_ = beta1;
  beta2_ = beta2;
  eps_ = eps;
  weight_decay_ = weight_decay;
  NoGradGuard no_grad;
  for (Slot& s : params_) {
    s.step = st.ints.at(s.name + ".step");
    if (s.step == 0) {
      s.m = s.v = Tensor();
      continue;
    }
    const DType md = moment_dtype(s.param.dtype());
    s.m = Tensor::empty(s.param.shape(), md, s.param.device());
    s.v = Tensor::empty(s.param.shape(), md, s.param.device());
    s.m.copy_(st.tensors.at(s.name + ".m"));
    s.v.copy_(st.tensors.at(s.name + ".v"));
  }
}

}  // namespace iris::optim
