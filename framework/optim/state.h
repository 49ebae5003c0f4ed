// The saved state of an optimizer-side object (AdamW, EMA): named tensors and named scalars, ready to be
// written to a checkpoint and read back exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "framework/core/tensor.h"

namespace iris::optim {

struct State {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, int64_t> ints;   // counters (steps, updates)
  std::map<std::string, double> floats;  // hyperparameters in effect
};

}  // namespace iris::optim
