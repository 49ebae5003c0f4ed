#include "framework/optim/ema.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "framework/kernels/optim.h"
#include "framework/autograd/grad_mode.h"
#include "framework/ops/elementwise.h"

namespace iris::optim {

namespace {
DType shadow_dtype(DType param) {
  return param == DType::f64 ? DType::f64 : DType::f32;
}

[[noreturn]] void throw_problems(const char* where, const std::vector<std::string>& problems) {
  std::ostringstream os;
  os << where << ": ";
  for (size_t i = 0; i < problems.size(); ++i) os << (i ? "; " : "") << problems[i];
  IRIS_THROW(os.str());
}
}  // namespace

EMA::EMA(const nn::Module& module, double decay, bool warmup)
    : params_(module.named_parameters()), decay_(decay), warmup_(warmup) {
  IRIS_CHECK(decay >= 0.0 && decay <= 1.0, "EMA: decay must be in [0, 1], got ", decay);
  NoGradGuard no_grad;
  for (const auto& [name, p] : params_) shadow_.push_back(p.detach().to(shadow_dtype(p.dtype())).clone());
}

double EMA::next_decay() const {
  if (!warmup_) return decay_;
  const double n = static_cast<double>(num_updates_);
  return std::min(decay_, (1.0 + n) / (10.0 + n));
}

void EMA::update() {
  NoGradGuard no_grad;
  const double d = next_decay();
#ifdef IRIS_WITH_CUDA
  // Averages on the first CUDA device seen whose parameter has their dtype and layout are updated in place,
  // together, by the multi-tensor kernel (a few launches for the whole model); the arithmetic is that of
  // the generic path below, bit for bit.
  std::vector<Tensor> batch_shadows, batch_params;
  int batch_device = -1;
#endif
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    Tensor& s = shadow_[i];
    IRIS_CHECK(p.shape() == s.shape(), "EMA::update: parameter '", params_[i].first, "' is now ", p.summary(),
               " but its average is ", s.summary());
    if (s.device() != p.device()) s = s.to(p.device());
#ifdef IRIS_WITH_CUDA
    if (p.device().is_cuda() && p.dtype() == s.dtype() && p.is_contiguous() && s.is_contiguous() &&
        (batch_device < 0 || batch_device == p.device().index)) {
      batch_device = p.device().index;
      batch_shadows.push_back(s);
      batch_params.push_back(p.detach());
      s.storage()->bump_version();
      continue;
    }
#endif
    s = add(mul(s, d), mul(p.detach().to(s.dtype()), 1.0 - d));
  }
#ifdef IRIS_WITH_CUDA
  if (!batch_shadows.empty())
    cuda::ema_update_multi(batch_shadows, batch_params, d, cuda::compute_stream(batch_device));
#endif
  ++num_updates_;
}

nn::NamedTensors EMA::averaged() const {
  nn::NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) out.emplace_back(params_[i].first, shadow_[i]);
  return out;
}

void EMA::copy_to(nn::Module& module) const {
  std::map<std::string, Tensor> targets;
  for (auto& [name, t] : module.named_parameters()) targets[name] = t;
  std::vector<std::string> problems;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto it = targets.find(params_[i].first);
    if (it == targets.end())
      problems.push_back("the module has no parameter '" + params_[i].first + "'");
    else if (it->second.shape() != shadow_[i].shape())
      problems.push_back("'" + params_[i].first + "' is " + shape_str(it->second.shape()) +
                         " in the module, " + shape_str(shadow_[i].shape()) + " in the average");
  }
  std::set<std::string> mine;
  for (const auto& [name, p] : params_) mine.insert(name);
  for (const auto& [name, t] : targets)
    if (!mine.count(name)) problems.push_back("the module's parameter '" + name + "' has no average");
  if (!problems.empty()) throw_problems("EMA::copy_to", problems);
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) targets[params_[i].first].copy_(shadow_[i]);
}

EMA::Swap EMA::swap_in() {
  NoGradGuard no_grad;
  std::vector<Tensor> params, raw;
  for (const auto& [name, p] : params_) {
    params.push_back(p);
    raw.push_back(p.detach().clone());
  }
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(shadow_[i]);
  return Swap(std::move(params), std::move(raw));
}

EMA::Swap::Swap(Swap&& other) noexcept : params_(std::move(other.params_)), raw_(std::move(other.raw_)) {
  other.params_.clear();
  other.raw_.clear();
}

void EMA::Swap::restore() {
  if (raw_.empty()) return;
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].copy_(raw_[i]);
  raw_.clear();
  params_.clear();
}

EMA::Swap::~Swap() {
  try {
    restore();
  } catch (...) {
    // A destructor must not throw; restore() called explicitly reports the error.
  }
}

State EMA::state() const {
  State st;
  for (size_t i = 0; i < params_.size(); ++i) st.tensors[params_[i].first] = shadow_[i];
  st.ints = {{"num_updates", num_updates_}, {"warmup", warmup_ ? 1 : 0}};
  st.floats = {{"decay", decay_}};
  return st;
}

void EMA::load_state(const State& st) {
  std::vector<std::string> problems;
  std::set<std::string> mine;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    mine.insert(name);
    auto it = st.tensors.find(name);
    if (it == st.tensors.end())
      problems.push_back("missing average '" + name + "'");
    else if (!it->second.defined())
      problems.push_back("'" + name + "' is an undefined tensor");
    else if (it->second.shape() != shadow_[i].shape())
      problems.push_back("'" + name + "' has shape " + shape_str(it->second.shape()) + ", the parameter " +
                         shape_str(shadow_[i].shape()));
  }
  for (const auto& [name, t] : st.tensors)
    if (!mine.count(name)) problems.push_back("unexpected average '" + name + "'");
  for (const char* key : {"num_updates", "warmup"})
    if (!st.ints.count(key)) problems.push_back(std::string("missing '") + key + "'");
  for (const auto& [key, v] : st.ints)
    if (key != "num_updates" && key != "warmup") problems.push_back("unexpected integer '" + key + "'");
  if (st.ints.count("num_updates") && st.ints.at("num_updates") < 0)
    problems.push_back("'num_updates' is negative");
  if (!st.floats.count("decay"))
    problems.push_back("missing 'decay'");
  else if (!(st.floats.at("decay") >= 0.0 && st.floats.at("decay") <= 1.0))
    problems.push_back("'decay' is outside [0, 1]");
  for (const auto& [key, v] : st.floats)
    if (key != "decay") problems.push_back("unexpected value '" + key + "'");
  if (!problems.empty()) throw_problems("EMA::load_state", problems);

  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor s = Tensor::empty(shadow_[i].shape(), shadow_[i].dtype(), params_[i].second.device());
    s.copy_(st.tensors.at(params_[i].first));
    shadow_[i] = s;
  }
  num_updates_ = st.ints.at("num_updates");
  warmup_ = st.ints.at("warmup") != 0;
  decay_ = st.floats.at("decay");
}

}  // namespace iris::optim
