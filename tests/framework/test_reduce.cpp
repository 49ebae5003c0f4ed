// Reductions and softmax: float64 references, gradchecks, non-contiguous input, thread independence.
#include <cmath>
#include <map>

#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {
// Plain reference: reduce a [2,3,5] tensor over `axes` with f (given the list of values per output).
Tensor reference(const Tensor& x, const std::vector<int64_t>& axes,
                 const std::function<double(const std::vector<double>&)>& f) {
  const auto v = x.to_vector<double>();
  const Shape s = x.shape();
  Shape out_shape;
  for (int64_t i = 0; i < 3; ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) out_shape.push_back(s[i]);
  std::map<std::vector<int64_t>, std::vector<double>> groups;
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t j = 0; j < s[1]; ++j)
      for (int64_t k = 0; k < s[2]; ++k) {
        std::vector<int64_t> key;
        const int64_t idx[3] = {i, j, k};
        for (int64_t d = 0; d < 3; ++d)
          if (std::find(axes.begin(), axes.end(), d) == axes.end()) key.push_back(idx[d]);
        groups[key].push_back(v[(i * s[1] + j) * s[2] + k]);
      }
  std::vector<double> out;
  for (auto& [k, vals] : groups) out.push_back(f(vals));
  return Tensor::from_vector(out, out_shape);
}
double vsum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}
}  // namespace

TEST_CASE("sum, mean, max, min, var over axis sets") {
  const std::vector<std::vector<int64_t>> axis_sets = {{0}, {1}, {2}, {0, 2}, {0, 1}, {1, 2}, {0, 1, 2}};
  for (bool strided : {false, true}) {
    Tensor x = randn({2, 3, 5}, 11);
    if (strided) x = noncontiguous(x);
    for (const auto& axes : axis_sets) {
      CAPTURE(axes.size());
      CAPTURE(axes[0]);
      check_close(sum(x, axes), reference(x, axes, vsum), 1e-12, 1e-12);
      check_close(mean(x, axes), reference(x, axes, [](auto& v) { return vsum(v) / v.size(); }), 1e-12, 1e-12);
      check_close(max(x, axes), reference(x, axes, [](auto& v) { return *std::max_element(v.begin(), v.end()); }));
      check_close(min(x, axes), reference(x, axes, [](auto& v) { return *std::min_element(v.begin(), v.end()); }));
      check_close(var(x, axes, false, 1), reference(x, axes, [](auto& v) {
                    const double m = vsum(v) / v.size();
                    double ss = 0;
                    for (double a : v) ss += (a - m) * (a - m);
                    return ss / (v.size() - 1);
                  }),
                  1e-12, 1e-12);
      Tensor xg = x.clone().detach().set_requires_grad();
      gradcheck([&](const std::vector<Tensor>& in) { return sum(in[0], axes); }, {xg});
      gradcheck([&](const std::vector<Tensor>& in) { return mean(in[0], axes, true); }, {xg});
      gradcheck([&](const std::vector<Tensor>& in) { return max(in[0], axes); }, {xg});
      gradcheck([&](const std::vector<Tensor>& in) { return var(in[0], axes, false, 0); }, {xg});
    }
  }
  CHECK(sum(Tensor::ones({2, 3}), {}, true).shape() == Shape{1, 1});
}

TEST_CASE("softmax and log_softmax over the last axis") {
  Tensor x = randn({4, 7}, 3, DType::f64, 2.0);
  const auto v = x.to_vector<double>();
  std::vector<double> sm(v.size()), lsm(v.size());
  for (int r = 0; r < 4; ++r) {
    double m = -1e300, s = 0;
    for (int i = 0; i < 7; ++i) m = std::max(m, v[r * 7 + i]);
    for (int i = 0; i < 7; ++i) s += std::exp(v[r * 7 + i] - m);
    for (int i = 0; i < 7; ++i) {
      sm[r * 7 + i] = std::exp(v[r * 7 + i] - m) / s;
      lsm[r * 7 + i] = v[r * 7 + i] - m - std::log(s);
    }
  }
  check_close(softmax(x), Tensor::from_vector(sm, {4, 7}), 1e-14, 1e-12);
  check_close(log_softmax(noncontiguous(x)), Tensor::from_vector(lsm, {4, 7}), 1e-14, 1e-12);
  x.set_requires_grad();
  gradcheck([](const std::vector<Tensor>& in) { return softmax(in[0]); }, {x});
  gradcheck([](const std::vector<Tensor>& in) { return log_softmax(in[0]); }, {x});
  // Large logits do not overflow.
  Tensor big = Tensor::from_vector(std::vector<float>{1000, 1001, 1002}, {3});
  CHECK(std::isfinite(softmax(big).to_vector<double>()[2]));
}

TEST_CASE("large sums are identical with 1 and 2 threads") {
  Tensor x = uniform({3, 100003}, 8, -1, 1, DType::f32);
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  const auto a = sum(x, {1}).to_vector<float>();
  const auto a0 = sum(x, {0}).to_vector<float>();
  const double t1 = sum(x).item();
  set_num_threads(2);
  const auto b = sum(x, {1}).to_vector<float>();
  const auto b0 = sum(x, {0}).to_vector<float>();
  const double t2 = sum(x).item();
  CHECK(a == b);
  CHECK(a0 == b0);
  CHECK(t1 == t2);
}
