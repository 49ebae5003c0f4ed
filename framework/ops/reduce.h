// Reductions over any set of axes (empty axes = all), and softmax / log_softmax over the last axis.
// Floating inputs; the result keeps the input dtype, accumulation is in f32 or wider (f64 on the CPU).
#pragma once

#include <vector>

#include "framework/core/tensor.h"

namespace iris {

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Max over the axes; the gradient is shared evenly between tied maxima.
Tensor max(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor min(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Variance with `correction` subtracted from the count (1: unbiased, as PyTorch's default; 0: population).
Tensor var(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false, int64_t correction = 1);

Tensor softmax(const Tensor& x);      // over the last axis
Tensor log_softmax(const Tensor& x);  // over the last axis

}  // namespace iris
