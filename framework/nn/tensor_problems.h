// What a set of named tensors (a checkpoint, an imported weights file) gets wrong against what a model
// expects, gathered so that one error names every problem instead of the first: load_state_dict,
// FID's Inception weights (diffusion/inception.cpp) and --init-from (diffusion/init_weights.cpp) all say it
// the same way:
//   "<what>; 2 missing: a, b; 1 unexpected: c; 1 mis-shaped: 'w': [4, 3] ..., [3, 4] ..."
#pragma once

#include <string>
#include <vector>

namespace iris::nn {

struct TensorProblems {
  // Items are names, or a name with the details ("'w': [4, 3] in the file, [3, 4] in the model").
  std::vector<std::string> missing, unexpected, misshaped, wrong_dtype, non_finite;

  bool any() const;
  // "; <count> <kind>: item, item" for each kind that has items, in the order above (empty when none).
  std::string describe() const;
};

}  // namespace iris::nn
