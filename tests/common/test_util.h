// Shared helpers for Iris's doctest suites: deterministic random tensors (from a host RNG independent of
// the framework's), error measures, non-contiguous copies, and the float64 finite-difference gradient check.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "framework/iris.h"

namespace iris::test {

// Values ~ N(0, scale^2) (or U(lo, hi)) from a seeded std::mt19937_64, on the CPU, then converted.
Tensor randn(const Shape& shape, uint64_t seed, DType dtype = DType::f64, double scale = 1.0);
Tensor uniform(const Shape& shape, uint64_t seed, double lo, double hi, DType dtype = DType::f64);

// The same values as `t` in a non-contiguous layout (a strided slice of a larger buffer).
Tensor noncontiguous(const Tensor& t);

double max_abs_diff(const Tensor& a, const Tensor& b);
// ||a - b|| / max(||b||, tiny): the relative L2 error used to compare devices and dtypes.
double rel_l2(const Tensor& a, const Tensor& b);
// CHECKs shapes equal and max |a-b| <= atol + rtol * |b| elementwise; reports the worst element.
void check_close(const Tensor& a, const Tensor& b, double atol = 1e-10, double rtol = 1e-10);

// A tensor as comparison messages show it: its summary and strides ("undefined" when it is not defined).
std::string describe(const Tensor& t);
// What the messages of check_rel_l2 and check_same_values call the two sides ("cuda 1.5 vs cpu 1.25").
struct CompareSides {
  std::string got = "got", ref = "reference";
};
// CHECKs `got` against `ref` (the shapes must match; a mismatch fails the check, and nothing else is
// compared): NaN and inf exactly where `ref` has them, and a relative L2 error of the other elements of at
// most `tol`. The messages name `what`, the first element non-finite on one side only, the worst element and
// both tensors.
void check_rel_l2(const Tensor& got, const Tensor& ref, double tol, const std::string& what,
                  const CompareSides& sides = {});
// CHECKs equal values element by element, compared as double (exact for every dtype but i64 beyond 2^53);
// NaN matches NaN. Shapes as check_rel_l2.
void check_same_values(const Tensor& got, const Tensor& ref, const std::string& what,
                       const CompareSides& sides = {});

// Finite-difference gradient check in float64. `fn` maps the inputs to any tensor; the check compares the
// gradient of sum(fn(inputs) * w) (w fixed random) from backward() with central differences, for every
// element of every input that requires grad. Inputs must be f64.
void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, std::vector<Tensor> inputs,
               double eps = 1e-6, double atol = 1e-6, double rtol = 1e-5);

// Restores the CPU thread count when it goes out of scope (tests that compare 1 and 2 threads).
class ThreadCountGuard {
 public:
  ThreadCountGuard() : before_(num_threads()) {}
  ~ThreadCountGuard() { set_num_threads(before_); }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int before_;
};

// Gradients of sum(fn(inputs) * w) for every input (w random from `seed`; the inputs are fresh leaves).
std::vector<Tensor> grads_of(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                             std::vector<Tensor> inputs, uint64_t seed);

// Checks that running `fn` throws iris::Error whose message contains every one of `parts`.
void check_throws_with(const std::function<void()>& fn, const std::vector<std::string>& parts);

// A getenv-like lookup over `vars` (nullptr for names not in it), for code that reads the environment
// through a replaceable function (launcher detection, rendezvous configuration).
std::function<const char*(const char*)> fake_env(std::map<std::string, std::string> vars);

}  // namespace iris::test
