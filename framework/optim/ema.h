// Exponential moving average of a module's parameters, for evaluation and sampling with averaged weights.
//
// After n earlier updates, update() does  shadow <- d * shadow + (1 - d) * param  with
//   d = min(decay, (1 + n) / (10 + n))   (warm-up; d = decay without it),
// so early averages are not dominated by the random initialisation (the first update uses d = 0.1). The
// shadow starts as a copy of the parameters at construction; it is f32 (f64 for f64 parameters) and
// follows the parameters' device. The EMA keeps handles to the parameters, so it stays valid when the module
// is moved with Module::to. Buffers are not averaged.
#pragma once

#include <string>
#include <vector>

#include "framework/nn/module.h"
#include "framework/optim/state.h"

namespace iris::optim {

class EMA {
 public:
  explicit EMA(const nn::Module& module, double decay = 0.9999, bool warmup = true);

  // Folds the current parameter values into the average; call after each optimizer step.
  void update();
  // The decay the next update() will use.
  double next_decay() const;
  int64_t num_updates() const { return num_updates_; }
  double decay() const { return decay_; }
  // The averaged values, by the parameters' full names. They alias the live averages, which update() may
  // overwrite in place (it does on CUDA): clone them to keep a snapshot.
  nn::NamedTensors averaged() const;

  // Writes the averaged weights into `module`'s parameters of the same names (e.g. an evaluation copy of
  // the model). Throws one iris::Error listing every missing, unexpected or mis-shaped name.
  void copy_to(nn::Module& module) const;

  // While alive, the tracked parameters hold the averaged weights; restore() (or the destructor) puts the
  // raw weights back. Call restore() yourself to see errors: the destructor cannot report them.
  class Swap {
   public:
    Swap(Swap&& other) noexcept;
    Swap& operator=(Swap&&) = delete;
    Swap(const Swap&) = delete;
    ~Swap();
    void restore();

   private:
    friend class EMA;
    Swap(std::vector<Tensor> params, std::vector<Tensor> raw)
        : params_(std::move(params)), raw_(std::move(raw)) {}
    std::vector<Tensor> params_, raw_;  // raw_ empty once restored
  };
  [[nodiscard]] Swap swap_in();

  // tensors "<name>" (the averages; aliases of the live ones), ints "num_updates" and "warmup" (0/1),
  // floats "decay".
  State state() const;
  // Restores a state() exactly. Throws one iris::Error listing every problem; changes nothing then.
  void load_state(const State& state);

 private:
  nn::NamedTensors params_;     // handles to the module's parameters
  std::vector<Tensor> shadow_;  // the averages, same order
  double decay_;
  bool warmup_;
  int64_t num_updates_ = 0;
};

}  // namespace iris::optim
