// Elementwise ops: float64 reference values, finite-difference gradients, broadcasting, non-contiguous
// inputs, dtype promotion and thread-count independence.
#include <cmath>

#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {
struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;  // input range where the op is smooth
};

std::vector<UnaryCase> unary_cases() {
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -2, 2},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, 0.1, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -2, 2},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.2, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.2, 3},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, 0.2, 3},
      {"sin", [](const Tensor& x) { return sin(x); }, [](double x) { return std::sin(x); }, -3, 3},
      {"cos", [](const Tensor& x) { return cos(x); }, [](double x) { return std::cos(x); }, -3, 3},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, sig, -4, 4},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -3, 3},
      {"silu", [](const Tensor& x) { return silu(x); }, [&](double x) { return x * sig(x); }, -4, 4},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -3, 3},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, 0.1, 2},
      {"square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }, -2, 2},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
       [](double x) { return std::min(std::max(x, -0.5), 0.7); }, -0.45, 0.65},
      {"add_scalar", [](const Tensor& x) { return x + 1.5; }, [](double x) { return x + 1.5; }, -2, 2},
      {"mul_scalar", [](const Tensor& x) { return x * -3.0; }, [](double x) { return -3 * x; }, -2, 2},
      {"rsub_scalar", [](const Tensor& x) { return 2.0 - x; }, [](double x) { return 2 - x; }, -2, 2},
      {"rdiv_scalar", [](const Tensor& x) { return 2.0 / x; }, [](double x) { return 2 / x; }, 0.5, 2},
      {"pow_scalar", [](const Tensor& x) { return pow(x, 2.5); }, [](double x) { return std::pow(x, 2.5); }, 0.2, 2},
  };
}
}  // namespace

TEST_CASE("unary ops: float64 reference and gradcheck, contiguous and strided") {
  for (const auto& c : unary_cases()) {
    CAPTURE(c.name);
    for (bool strided : {false, true}) {
      Tensor x = uniform({3, 5}, 7, c.lo, c.hi);
      if (strided) x = noncontiguous(x);
      const auto xv = x.to_vector<double>();
      std::vector<double> ref(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) ref[i] = c.ref(xv[i]);
      check_close(c.op(x), Tensor::from_vector(ref, x.shape()), 1e-12, 1e-12);
      x.set_requires_grad();
      gradcheck([&](const std::vector<Tensor>& in) { return c.op(in[0]); }, {x});
    }
  }
}

TEST_CASE("unary ops in f32 and bf16 follow the f64 result") {
  for (const auto& c : unary_cases()) {
    CAPTURE(c.name);
    Tensor x = uniform({257}, 3, c.lo, c.hi);
    const Tensor ref = c.op(x);
    CHECK(rel_l2(c.op(x.to(DType::f32)), ref) < 1e-6);
    CHECK(rel_l2(c.op(x.to(DType::bf16)), ref) < 1e-2);
  }
}

TEST_CASE("binary ops broadcast: reference and gradcheck") {
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;
    std::function<double(double, double)> ref;
  };
  const std::vector<Case> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; }},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
       [](double a, double b) { return std::pow(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }},
  };
  // Shapes [2,3,4] with [3,1]: b broadcasts over axes 0 and 2.
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Tensor a = uniform({2, 3, 4}, 1, 0.5, 2.0);
    Tensor b = noncontiguous(uniform({3, 1}, 2, 0.5, 2.0));
    const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
    std::vector<double> ref(24);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) ref[i * 12 + j * 4 + k] = c.ref(av[i * 12 + j * 4 + k], bv[j]);
    check_close(c.op(a, b), Tensor::from_vector(ref, {2, 3, 4}), 1e-12, 1e-12);
    a.set_requires_grad();
    b.set_requires_grad();
    gradcheck([&](const std::vector<Tensor>& in) { return c.op(in[0], in[1]); }, {a, b});
  }
}

TEST_CASE("where and comparisons") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, -2, 3, -4}, {4});
  Tensor b = Tensor::zeros({1}, DType::f64);
  Tensor m = gt(a, b);
  CHECK(m.dtype() == DType::u8);
  CHECK(m.to_vector<int32_t>() == std::vector<int32_t>{1, 0, 1, 0});
  a.set_requires_grad();
  Tensor c = uniform({4}, 9, -1, 1).set_requires_grad();
  check_close(where(m, a, c), Tensor::from_vector(std::vector<double>{1, c.to_vector<double>()[1], 3,
                                                                      c.to_vector<double>()[3]},
                                                  {4}));
  gradcheck([&](const std::vector<Tensor>& in) { return where(m, in[0], in[1]); }, {a, c});
}

TEST_CASE("mixed dtypes promote to the wider one and gradients come back in each input's dtype") {
  Tensor a = uniform({3}, 1, -1, 1, DType::bf16).set_requires_grad();
  Tensor b = uniform({3}, 2, -1, 1, DType::f32).set_requires_grad();
  Tensor c = a * b;
  CHECK(c.dtype() == DType::f32);
  sum(c).backward();
  CHECK(a.grad().dtype() == DType::bf16);
  CHECK(b.grad().dtype() == DType::f32);
  check_close(b.grad(), a.to(DType::f32), 1e-7, 0);
}

TEST_CASE("elementwise results are identical with 1 and 2 threads") {
  Tensor x = uniform({64, 257}, 4, -3, 3, DType::f32);
  Tensor y = uniform({257}, 5, -3, 3, DType::f32);
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  const auto r1 = (silu(x) * y + gelu(x)).to_vector<float>();
  set_num_threads(2);
  const auto r2 = (silu(x) * y + gelu(x)).to_vector<float>();
  CHECK(r1 == r2);
}
