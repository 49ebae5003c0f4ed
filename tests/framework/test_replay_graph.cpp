// GraphedFunction (framework/core/replay_graph.h) with a capturer that stands in for CUDA graphs on the CPU:
// as with CUDA, the work's host code runs once at capture and each launch re-runs the work. Checked: the
// warm-up / capture / replay sequence gives the eager results for new input values, a result stays valid
// after later calls, keys follow shapes / undefined inputs / variants, and failed captures stay eager.
#include <stdexcept>

#include "framework/core/replay_graph.h"
#include "framework/iris.h"
#include "tests/common/test_util.h"

using namespace iris;
using iris::test::check_throws_with;

namespace {

// A "graph" that re-runs the captured work at every launch.
class RerunGraph final : public ReplayGraph {
 public:
  explicit RerunGraph(std::function<void()> work) : work_(std::move(work)) {}
  void launch() override { work_(); }

 private:
  std::function<void()> work_;
};

class FakeCapturer final : public GraphCapturer {
 public:
  mutable int captures = 0;
  bool fail = false;  // the next captures throw, as CUDA does for work that cannot be captured
  bool supports(Device device) const override { return device.is_cpu(); }
  std::unique_ptr<ReplayGraph> capture(Device, const std::function<void()>& work) const override {
    ++captures;
    if (fail) IRIS_THROW("fake capture: operation not permitted when stream is capturing");
    work();  // the host code runs while recording
    return std::make_unique<RerunGraph>(work);
  }
};

// f(x, g) = x * g + 1 (g broadcast over rows), counting its runs.
struct Affine {
  int runs = 0;
  Tensor operator()(const std::vector<Tensor>& in) {
    ++runs;
    return add(mul(in[0], in[1].unsqueeze(1)), 1.0);
  }
};

Tensor eager(const Tensor& x, const Tensor& g) {
  return add(mul(x, g.unsqueeze(1)), 1.0);
}

}  // namespace

TEST_CASE("a graphed function: one eager warm-up, one capture, then replays with the eager results") {
  FakeCapturer capturer;
  GraphedFunction graphed("affine", &capturer);
  Affine f;
  auto fn = [&f](const std::vector<Tensor>& in) { return f(in); };
  Generator gen(7);
  std::vector<Tensor> results, expected;
  for (int call = 0; call < 5; ++call) {
    const Tensor x = randn({3, 4}, gen), g = randn({3}, gen);
    results.push_back(graphed({x, g}, "v", fn));
    expected.push_back(eager(x, g));
  }
  // Every result equals f on that call's inputs, and is still that after the later calls (not the graph's
  // static output, which each launch rewrites).
  for (size_t i = 0; i < results.size(); ++i) CHECK(iris::test::max_abs_diff(results[i], expected[i]) == 0.0);
  CHECK(graphed.stats().eager == 1);
  CHECK(graphed.stats().captures == 1);
  CHECK(graphed.stats().replays == 3);
  CHECK(capturer.captures == 1);
  // f's host code: the warm-up, the capture's recording, then one run per launch (capture's + 3 replays).
  CHECK(f.runs == 1 + 1 + 4);
}

TEST_CASE("a graphed function keys its graphs by the inputs' shapes, undefined inputs and the variant") {
  FakeCapturer capturer;
  GraphedFunction graphed("pick", &capturer, /*capacity=*/8);
  Generator gen(3);
  // f(x, maybe y): x + y where y is given, else 2 x.
  auto fn = [](const std::vector<Tensor>& in) { return in[1].defined() ? add(in[0], in[1]) : mul(in[0], 2.0); };
  for (int round = 0; round < 3; ++round) {
    const Tensor a = randn({2, 5}, gen), b = randn({2, 5}, gen), c = randn({4, 5}, gen);
    CHECK(iris::test::max_abs_diff(graphed({a, b}, "v", fn), add(a, b)) == 0.0);
    CHECK(iris::test::max_abs_diff(graphed({a, Tensor()}, "v", fn), mul(a, 2.0)) == 0.0);
    CHECK(iris::test::max_abs_diff(graphed({c, Tensor()}, "v", fn), mul(c, 2.0)) == 0.0);
    CHECK(iris::test::max_abs_diff(graphed({a, b}, "w", fn), add(a, b)) == 0.0);
  }
  // Four keys: each warmed up once, captured once, replayed once.
  CHECK(graphed.stats().eager == 4);
  CHECK(graphed.stats().captures == 4);
  CHECK(graphed.stats().replays == 4);
}

TEST_CASE("a failed capture leaves its key eager, says why, and still returns the result") {
  FakeCapturer capturer;
  capturer.fail = true;
  GraphedFunction graphed("reads back", &capturer);
  Affine f;
  auto fn = [&f](const std::vector<Tensor>& in) { return f(in); };
  Generator gen(5);
  for (int call = 0; call < 4; ++call) {
    const Tensor x = randn({2, 3}, gen), g = randn({2}, gen);
    CHECK(iris::test::max_abs_diff(graphed({x, g}, "v", fn), eager(x, g)) == 0.0);
  }
  CHECK(capturer.captures == 1);  // tried once, never again
  CHECK(graphed.stats().failed == 1);
  CHECK(graphed.stats().replays == 0);
  CHECK(f.runs == 4);
  CHECK(graphed.last_failure().find("reads back") != std::string::npos);
  CHECK(graphed.last_failure().find("not permitted") != std::string::npos);
}

TEST_CASE("a function whose result changes shape between runs is not captured") {
  FakeCapturer capturer;
  GraphedFunction graphed("unstable", &capturer);
  int runs = 0;
  auto fn = [&runs](const std::vector<Tensor>& in) { return ++runs == 1 ? in[0] : cat({in[0], in[0]}, 0); };
  const Tensor x = Tensor::ones({2, 2});
  CHECK(graphed({x}, "v", fn).shape() == Shape{2, 2});
  CHECK(graphed({x}, "v", fn).shape() == Shape{4, 2});  // the capture refused it; the eager run's result
  CHECK(graphed.stats().failed == 1);
  CHECK(graphed.last_failure().find("changed between runs") != std::string::npos);
}

TEST_CASE("without a capturer, or on a device it does not support, a graphed function runs eagerly") {
  Affine f;
  auto fn = [&f](const std::vector<Tensor>& in) { return f(in); };
  const Tensor x = Tensor::ones({2, 3}), g = Tensor::ones({2});
  GraphedFunction none("none", nullptr);
  for (int i = 0; i < 3; ++i) CHECK(iris::test::max_abs_diff(none({x, g}, "v", fn), eager(x, g)) == 0.0);
  CHECK(none.stats().eager == 0);
  CHECK(f.runs == 3);
  // The real capturer: CPU tensors are not its business (and a build without CUDA has none).
  GraphedFunction cuda("cuda", cuda_graph_capturer());
  for (int i = 0; i < 3; ++i) CHECK(iris::test::max_abs_diff(cuda({x, g}, "v", fn), eager(x, g)) == 0.0);
  CHECK(cuda.stats().captures == 0);
  check_throws_with([] { GraphedFunction("bad", nullptr, 4, 0); }, {"warmup_runs", ">= 1"});
}
