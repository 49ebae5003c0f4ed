#include "framework/nn/tensor_problems.h"

namespace iris::nn {

bool TensorProblems::any() const {
  return !missing.empty() || !unexpected.empty() || !misshaped.empty() || !wrong_dtype.empty() ||
         !non_finite.empty();
}

std::string TensorProblems::describe() const {
  std::string s;
  auto list = [&](const char* kind, const std::vector<std::string>& items) {
    if (items.empty()) return;
    s += "; " + std::to_string(items.size()) + " " + kind + ":";
    for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : " ") + items[i];
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mis-shaped", misshaped);
  list("of a wrong dtype", wrong_dtype);
  list("with NaN or infinite values", non_finite);
  return s;
}

}  // namespace iris::nn
