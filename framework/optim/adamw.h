// AdamW (Loshchilov & Hutter, decoupled weight decay); plain Adam when weight_decay = 0.
//
// Per parameter p with gradient g at its own step t (1 for its first update):
//   p <- p * (1 - lr * wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// as PyTorch's torch.optim.AdamW. Moments are f32 (f64 for f64 parameters, which only tests use) and live on
// the parameter's device, created at a parameter's first update. Parameters without a gradient are skipped
// (their step count does not advance). The update of one tensor is the kernel adamw_update of
// framework/kernels/optim.h (CPU and CUDA, the same arithmetic).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "framework/nn/module.h"
#include "framework/optim/state.h"

namespace iris::optim {

class AdamW {
 public:
  // Named parameters (e.g. module.named_parameters()): the names key the saved state.
  AdamW(const nn::NamedTensors& params, double lr, std::pair<double, double> betas = {0.9, 0.999},
        double eps = 1e-8, double weight_decay = 0.0);
  // Unnamed parameters: named "0", "1", ... in the state.
  AdamW(const std::vector<Tensor>& params, double lr, std::pair<double, double> betas = {0.9, 0.999},
        double eps = 1e-8, double weight_decay = 0.0);

  // One update of every parameter that has a gradient. Runs under NoGradGuard.
  void step();
  // Drops every parameter's gradient.
  void zero_grad();

  void set_lr(double lr);
  double lr() const { return lr_; }
  double weight_decay() const { return weight_decay_; }
  // Updates applied so far to the parameter at `index` (in construction order).
  int64_t step_count(size_t index) const;
  size_t num_params() const { return params_.size(); }

  // tensors "<name>.m", "<name>.v" (for parameters updated at least once), ints "<name>.step",
  // floats lr, beta1, beta2, eps, weight_decay. The tensors alias the live moments: write them out (or
  // clone them) before the next step() if you keep them.
  State state() const;
  // Restores a state() exactly (moments copied onto each parameter's device, hyperparameters included).
  // Throws one iris::Error listing every missing, unexpected or mis-shaped entry; changes nothing then.
  void load_state(const State& state);

 private:
  struct Slot {
    std::string name;
    Tensor param;
    Tensor m, v;  // undefined until the first update
    int64_t step = 0;
  };
  static void check_hyperparameters(const char* where, double lr, double beta1, double beta2, double eps,
                                    double weight_decay);

  std::vector<Slot> params_;
  double lr_, beta1_, beta2_, eps_, weight_decay_;
};

}  // namespace iris::optim
