// A check shared by the CPU and GPU suites (test_optim_flags.cpp, test_gpu_step_guard.cpp): AdamW and EMA
// updated under an apply flag on `device` (framework/optim/device_step.h) end with the same bits as updates
// made unconditionally on the kept steps only, step and update counts included.
#pragma once

#include <cstring>
#include <memory>

#include "framework/iris.h"
#include "framework/optim/device_step.h"
#include "tests/common/test_util.h"

namespace iris::test {

// Bitwise equality of two tensors' values (any devices; NaN payloads included).
inline bool tensors_bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.cpu().contiguous(), cb = b.cpu().contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

inline void check_flagged_updates_match_kept_steps(Device device) {
  nn::Sequential a, b;
  Generator ga(7), gb(7);
  a.push_back(std::make_shared<nn::Linear>(4, 3, ga));
  b.push_back(std::make_shared<nn::Linear>(4, 3, gb));
  a.to(device);
  b.to(device);
  optim::AdamW opt_a(a.named_parameters(), 1e-2, {0.9, 0.999}, 1e-8, 0.01);
  optim::AdamW opt_b(b.named_parameters(), 1e-2, {0.9, 0.999}, 1e-8, 0.01);
  optim::EMA ema_a(a, 0.99), ema_b(b, 0.99);
  const Tensor x = randn({6, 4}, 11, DType::f32).to(device);
  const Tensor one = Tensor::full({1}, 1.0, DType::f64, device), zero = Tensor::zeros({1}, DType::f64, device);
  // `a` steps unconditionally on steps 0, 2, 3; `b` sees the same gradients on steps 0-3 with step 1 flagged
  // off: afterwards both must hold the same bits (weights, moments, counts, averages).
  for (int step = 0; step < 4; ++step) {
    for (nn::Sequential* m : {&a, &b}) {
      m->zero_grad();
      mean(square((*m)(x))).backward();
    }
    const bool apply = step != 1;
    if (apply) {
      opt_a.step();
      ema_a.update();
    }
    optim::step_if(opt_b, apply ? one : zero);
    optim::update_if(ema_b, apply ? one : zero);
  }
  CHECK(opt_b.step_count(0) == 3);
  CHECK(ema_b.num_updates() == 3);
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(tensors_bitwise_equal(pa[i].second, pb[i].second));
  const optim::State sa = opt_a.state(), sb = opt_b.state();
  for (const auto& [name, t] : sa.tensors) CHECK(tensors_bitwise_equal(t, sb.tensors.at(name)));
  CHECK(sa.ints == sb.ints);
  const auto ea = ema_a.averaged(), eb = ema_b.averaged();
  for (size_t i = 0; i < ea.size(); ++i) CHECK(tensors_bitwise_equal(ea[i].second, eb[i].second));
}

}  // namespace iris::test
