// Autograd semantics: accumulation, shared subgraphs, no_grad, detach, retain_graph, version counters,
// gradient-ready hooks and their order.
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

TEST_CASE("gradients accumulate across backward calls") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).set_requires_grad();
  sum(x * 2.0).backward();
  sum(x * 3.0).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 5, 5});
}

TEST_CASE("a diamond sums both paths") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  Tensor a = x * x;        // da/dx = 2x
  Tensor y = a * 3.0 + a;  // y = 4 x^2
  sum(y).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{8, 16});
}

TEST_CASE("no_grad records nothing and detach cuts the graph") {
  Tensor x = Tensor::ones({2}, DType::f64).set_requires_grad();
  {
    NoGradGuard ng;
    Tensor y = x * 2.0;
    CHECK(!y.requires_grad());
  }
  Tensor d = (x * 2.0).detach();
  CHECK(!d.requires_grad());
  CHECK(d.is_leaf());
  Tensor z = x * 2.0 + d * x;  // only the direct dependencies on x count
  sum(z).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{4, 4});
  check_throws_with([&] { sum(d).backward(); }, {"does not require grad"});
}

TEST_CASE("backward twice needs retain_graph") {
  Tensor x = Tensor::ones({2}, DType::f64).set_requires_grad();
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  CHECK(x.grad().to_vector<double>()[0] == doctest::Approx(2 * std::exp(1.0)));
  check_throws_with([&] { y.backward(); }, {"backward", "retain_graph"});
}

TEST_CASE("modifying a saved tensor in place is caught and names the op") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  Tensor e = exp(x);  // exp saves its output
  Tensor y = sum(e * 1.0);
  Tensor z = sum(exp(e));  // saves exp(e)'s output, and e is saved by nobody else
  {
    NoGradGuard ng;
    e.fill_(0.0);  // bumps e's version: exp(x)'s saved output is now stale
  }
  check_throws_with([&] { y.backward(); }, {"exp", "modified in place"});
  (void)z;
}

TEST_CASE("non-scalar backward needs a seed of the same shape") {
  Tensor x = Tensor::ones({3}, DType::f64).set_requires_grad();
  Tensor y = x * 2.0;
  check_throws_with([&] { y.backward(); }, {"seed"});
  y.backward(Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4, 6});
}

TEST_CASE("gradient-ready hooks fire once per leaf with the final gradient, last-used parameters first") {
  Tensor w1 = Tensor::from_vector(std::vector<double>{2}, {1}).set_requires_grad();
  Tensor w2 = Tensor::from_vector(std::vector<double>{3}, {1}).set_requires_grad();
  std::vector<std::pair<int, double>> fired;
  w1.register_grad_ready_hook([&](const Tensor& g) { fired.push_back({1, g.item()}); });
  w2.register_grad_ready_hook([&](const Tensor& g) { fired.push_back({2, g.item()}); });
  Tensor x = Tensor::from_vector(std::vector<double>{5}, {1});
  Tensor h = x * w1;          // w1 used first (and again below)
  Tensor y = h * w2 + h * w1;  // y = x w1 w2 + x w1^2
  sum(y).backward();
  REQUIRE(fired.size() == 2);
  CHECK(fired[0].first == 2);  // w2's gradient is final before w1's
  CHECK(fired[0].second == doctest::Approx(5 * 2));
  CHECK(fired[1].first == 1);
  CHECK(fired[1].second == doctest::Approx(5 * 3 + 2 * 5 * 2));
}

TEST_CASE("views are differentiable") {
  Tensor x = randn({2, 3, 4}, 1).set_requires_grad();
  gradcheck([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}).slice(0, 1, 4, 2); }, {x});
  gradcheck([](const std::vector<Tensor>& in) { return in[0].transpose(0, 2).reshape({4, 6}); }, {x});
  gradcheck([](const std::vector<Tensor>& in) { return in[0].select(1, 2).unsqueeze(0).expand({3, 2, 4}); }, {x});
}
