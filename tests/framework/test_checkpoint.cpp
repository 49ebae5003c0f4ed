// Activation checkpointing (framework/autograd/checkpoint.h): every scenario runs twice, through checkpointed
// segments and through the plain graph, from the same float64 values, and must give the same loss and the
// same gradient for every input and parameter (chains, a weight tied across segments and used outside them,
// dropout, a diamond, inputs without grad, nested segments, retain_graph); a finite-difference gradcheck;
// gradient-ready hooks and the data-parallel reducer; the errors; and the memory it saves (host storage
// bytes, counted exactly).
#include <map>

#include "framework/core/profiling.h"
#include "tests/common/dp_model.h"

using namespace iris;
using namespace iris::test;

namespace {

// A segment, checkpointed or a plain call, so that one scenario describes both runs.
Tensor segment(bool ckpt, const SegmentFn& fn, const std::vector<Tensor>& in,
               const std::vector<Tensor>& params, Generator* rng = nullptr) {
  return ckpt ? checkpoint(fn, in, params, rng) : fn(in);
}

// A scenario builds a scalar loss from leaves (fresh copies of the values; see run()) and says whether to
// checkpoint. It may register hooks or check things on the way.
using Scenario = std::function<Tensor(bool ckpt, const std::vector<Tensor>& leaves)>;

struct Result {
  double loss = 0;
  std::vector<Tensor> grads;  // per leaf; undefined where none arrived
};

// Fresh leaves with the given values (requires_grad per `grad`), the scenario's loss, backward.
Result run(const Scenario& scenario, bool ckpt, const std::vector<Tensor>& values,
           const std::vector<bool>& grad) {
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < values.size(); ++i)
    leaves.push_back(values[i].detach().clone().set_requires_grad(grad[i]));
  const Tensor loss = scenario(ckpt, leaves);
  loss.backward();
  Result r{loss.item(), {}};
  for (const Tensor& t : leaves) r.grads.push_back(t.grad());
  return r;
}

// Runs both ways and compares: the loss and every gradient to 1e-12 (bit-exact except where the order of a
// sum changes), the same set of leaves with a gradient.
void check_same(const Scenario& scenario, const std::vector<Tensor>& values, const std::vector<bool>& grad) {
  const Result plain = run(scenario, false, values, grad);
  const Result ckpt = run(scenario, true, values, grad);
  CHECK(std::abs(ckpt.loss - plain.loss) <= 1e-12 * (1 + std::abs(plain.loss)));
  for (size_t i = 0; i < values.size(); ++i) {
    CAPTURE(i);
    REQUIRE(ckpt.grads[i].defined() == plain.grads[i].defined());
    if (plain.grads[i].defined()) check_close(ckpt.grads[i], plain.grads[i], 1e-12, 1e-12);
  }
}

// The values of a small MLP-like chain: x [5, 4], w1 [6, 4], b1 [6], wt [6, 6] (tied: used by both segments
// and outside them), w2 [3, 6], c [5, 3] (loss weights).
std::vector<Tensor> chain_values() {
  return {randn({5, 4}, 1),
          randn({6, 4}, 2, DType::f64, 0.5),
          randn({6}, 3),
          randn({6, 6}, 4, DType::f64, 0.4),
          randn({3, 6}, 5, DType::f64, 0.5),
          randn({5, 3}, 6)};
}

// x -> [tanh(linear(x, w1, b1) @ wt^T)] -> [silu(h @ wt^T) * h] -> linear(., w2) . c + 0.1 sum(wt^2).
Tensor chain_loss(bool ckpt, const std::vector<Tensor>& v) {
  const Tensor &x = v[0], &w1 = v[1], &b1 = v[2], &wt = v[3], &w2 = v[4], &c = v[5];
  const Tensor h = segment(
      ckpt, [w1, b1, wt](const std::vector<Tensor>& in) { return tanh(linear(linear(in[0], w1, b1), wt)); },
      {x}, {w1, b1, wt});
  const Tensor g = segment(
      ckpt, [wt](const std::vector<Tensor>& in) { return mul(silu(linear(in[0], wt)), in[0]); }, {h}, {wt});
  return add(sum(mul(linear(g, w2), c)), mul(sum(square(wt)), 0.1));
}

}  // namespace

TEST_CASE(
    "checkpoint: a chain with a weight tied across segments gives the plain graph's loss and gradients") {
  check_same(chain_loss, chain_values(), {true, true, true, true, true, false});
  // The input not requiring grad (a frozen first layer too): only the rest get gradients, the same ones.
  check_same(chain_loss, chain_values(), {false, false, true, true, true, false});
}

TEST_CASE("checkpoint: dropout inside a segment draws the same mask when recomputed") {
  for (const bool per_sample : {false, true}) {
    CAPTURE(per_sample);
    auto make_gen = [&] { return per_sample ? Generator::per_sample(7, {3, 9, 4, 1, 8}) : Generator(7, 2); };
    // The generators outlive backward, which recomputes the segment with them.
    Generator gens[2];
    double zero_fraction = 0;
    const Scenario scenario = [&](bool ckpt, const std::vector<Tensor>& v) {
      Generator& gen = gens[ckpt];
      gen = make_gen();
      const Tensor &x = v[0], &w1 = v[1], &b1 = v[2], &w2 = v[4], &c = v[5];
      const Tensor h = segment(
          ckpt, [&](const std::vector<Tensor>& in) { return dropout(silu(linear(in[0], w1, b1)), 0.4, gen); },
          {x}, {w1, b1}, &gen);
      zero_fraction = mean(eq(h, Tensor::zeros_like(h)).to(DType::f64)).item();
      // A second draw after the segment: the stream must continue exactly as without checkpointing.
      const Tensor h2 = dropout(h, 0.3, gen);
      return sum(mul(linear(h2, w2), c));
    };
    check_same(scenario, chain_values(), {true, true, true, true, true, false});
    CHECK(gens[0].state() == gens[1].state());  // after backward too: the recomputation left no trace
    CHECK(zero_fraction > 0.1);  // the mask is not trivial, so a different one would change the gradients
  }
}

TEST_CASE("checkpoint: generator state is restored after the recomputation in backward") {
  Generator gen(11);
  const Tensor x = randn({4, 3}, 1).set_requires_grad();
  const Tensor y =
      checkpoint([&](const std::vector<Tensor>& in) { return dropout(in[0], 0.5, gen); }, {x}, {}, &gen);
  const Generator::State after_forward = gen.state();
  sum(y).backward();
  CHECK(gen.state() == after_forward);
  // The gradient is the mask the forward drew: zero exactly where y is zero.
  const auto yv = y.to_vector<double>(), gv = x.grad().to_vector<double>();
  for (size_t i = 0; i < yv.size(); ++i) CHECK((yv[i] == 0) == (gv[i] == 0));
}

TEST_CASE("checkpoint: a diamond (the input also used outside), an identity segment and nested segments") {
  // x = linear(x0, w1) is a non-leaf feeding the segment and a term outside it.
  check_same(
      [](bool ckpt, const std::vector<Tensor>& v) {
        const Tensor x = linear(v[0], v[1]);
        const Tensor s = segment(
            ckpt, [w = v[3]](const std::vector<Tensor>& in) { return mul(sin(in[0]), linear(in[0], w)); },
            {x}, {v[3]});
        return add(sum(mul(s, s)), sum(mul(x, cos(x))));
      },
      chain_values(), {true, true, true, true, true, false});
  // A segment that returns its input: the gradient passes through unchanged.
  check_same(
      [](bool ckpt, const std::vector<Tensor>& v) {
        const Tensor x = mul(v[0], 2.0);
        const Tensor s = segment(ckpt, [](const std::vector<Tensor>& in) { return in[0]; }, {x}, {});
        return sum(mul(s, s));
      },
      chain_values(), {true, true, true, true, true, false});
  // Segments inside a segment: the inner nodes' backward runs a nested pass inside the outer nested pass.
  check_same(
      [](bool ckpt, const std::vector<Tensor>& v) {
        // The segment functions run again in backward: they hold what they use by value.
        const Tensor wt = v[3], w1 = v[1];
        const SegmentFn inner = [wt](const std::vector<Tensor>& in) { return tanh(linear(in[0], wt)); };
        const Tensor h = segment(ckpt,
                                 [inner, w1, wt, ckpt](const std::vector<Tensor>& in) {
                                   const Tensor a = linear(in[0], w1);
                                   return segment(ckpt, inner, {segment(ckpt, inner, {a}, {wt})}, {wt});
                                 },
                                 {v[0]}, {w1, wt});
        return sum(mul(h, linear(h, wt)));
      },
      chain_values(), {true, true, true, true, true, false});
}

TEST_CASE("checkpoint: two inputs, one without grad, and an undefined one") {
  check_same(
      [](bool ckpt, const std::vector<Tensor>& v) {
        const Tensor s = segment(ckpt,
                                 [&](const std::vector<Tensor>& in) {
                                   CHECK(!in[2].defined());
                                   return mul(exp(mul(in[0], 0.3)), add(in[1], 1.0));
                                 },
                                 {linear(v[0], v[1]), v[2], Tensor()}, {});
        return sum(square(s));
      },
      {randn({5, 4}, 1), randn({6, 4}, 2), randn({6}, 3)}, {true, true, false});
}

TEST_CASE("checkpoint: retain_graph lets backward run twice, accumulating the same gradients") {
  auto twice = [](bool ckpt, const std::vector<Tensor>& v) {
    const Tensor loss = chain_loss(ckpt, v);
    loss.backward(Tensor(), /*retain_graph=*/true);
    return loss;  // run() calls backward a second time
  };
  check_same(twice, chain_values(), {true, true, true, true, true, false});
}

TEST_CASE("checkpoint: finite-difference gradcheck through a segment") {
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        return checkpoint(
            [&](const std::vector<Tensor>& s) {
              return mul(tanh(linear(s[0], in[2], in[3])), sigmoid(s[1]));
            },
            {in[0], in[1]}, {in[2], in[3]});
      },
      {randn({5, 4}, 22).set_requires_grad(), randn({5, 3}, 23).set_requires_grad(),
       randn({3, 4}, 24).set_requires_grad(), randn({3}, 25).set_requires_grad()});
}

TEST_CASE("checkpoint: recomputation runs with grad mode on and the autocast scope of the forward") {
  std::vector<std::pair<bool, bool>> seen;  // (grad_enabled, autocast_enabled) at each call of the segment
  const Tensor x = randn({3}, 1).set_requires_grad();
  Tensor y;
  {
    AutocastGuard autocast(true);
    y = checkpoint(
        [&](const std::vector<Tensor>& in) {
          seen.emplace_back(grad_enabled(), autocast_enabled());
          return mul(in[0], in[0]);
        },
        {x});
  }
  sum(y).backward();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::make_pair(false, true));  // forward: no history kept
  CHECK(seen[1] == std::make_pair(true, true));   // backward: recorded, same autocast scope
  check_close(x.grad(), mul(x.detach(), 2.0), 0, 0);
  // Without anything requiring grad (or under no_grad) the segment is a plain call: no node.
  const Tensor z = checkpoint([](const std::vector<Tensor>& in) { return exp(in[0]); }, {randn({3}, 2)});
  CHECK(!z.requires_grad());
}

TEST_CASE("checkpoint: gradient-ready hooks fire once per parameter with the complete gradient") {
  // wt is used by both segments and outside them: its hook must wait for all three contributions.
  std::map<size_t, int> fired[2];  // per run (plain, checkpointed): hook calls per leaf
  std::map<size_t, Tensor> at_hook[2];
  const Scenario hooked = [&](bool ckpt, const std::vector<Tensor>& v) {
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i].requires_grad())
        v[i].register_grad_ready_hook([&, i, ckpt](const Tensor& g) {
          fired[ckpt][i]++;
          at_hook[ckpt][i] = g.clone();
        });
    return chain_loss(ckpt, v);
  };
  const std::vector<bool> grad{true, true, true, true, true, false};
  const Result plain = run(hooked, false, chain_values(), grad);
  const Result ckpt = run(hooked, true, chain_values(), grad);
  for (size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(fired[0][i] == 1);
    CHECK(fired[1][i] == 1);
    REQUIRE(at_hook[1][i].defined());
    check_close(at_hook[1][i], ckpt.grads[i], 0, 0);  // the hook saw the final gradient
    check_close(at_hook[1][i], plain.grads[i], 1e-12, 1e-12);
  }
}

TEST_CASE("checkpoint: the data-parallel reducer gets every gradient once, complete (one rank)") {
  auto comm = dist::init_distributed(dist::Backend::local);
  const std::vector<Tensor> values = chain_values();
  std::vector<Tensor> params;
  for (size_t i = 1; i < 5; ++i) params.push_back(values[i].detach().clone().set_requires_grad());
  dist::ReducerOptions opt;
  opt.first_bucket_bytes = opt.bucket_bytes = 8;  // one parameter per bucket
  dist::GradReducer reducer(comm, params, opt);
  const Tensor x = values[0];
  // Two steps: the reducer throws if a hook fires twice in one pass.
  for (int step = 0; step < 2; ++step) {
    for (Tensor& p : params) p.set_grad(Tensor());
    chain_loss(true, {x, params[0], params[1], params[2], params[3], values[5]}).backward();
    reducer.finish();
    // Every bucket (4, one per parameter) was launched by a hook during backward, none by finish().
    CHECK(reducer.stats().buckets_launched_in_backward == 4 * (step + 1));
  }
  const Result plain = run(chain_loss, false, values, {false, true, true, true, true, false});
  for (size_t i = 0; i < 4; ++i) check_close(params[i].grad(), plain.grads[i + 1], 1e-12, 1e-12);
}

TEST_CASE("checkpoint: misuse gives clear errors") {
  Tensor w = randn({4, 4}, 1).set_requires_grad();
  const Tensor x = randn({2, 4}, 2).set_requires_grad();
  auto seg = [&](const std::vector<Tensor>& in) { return sum(tanh(linear(in[0], w))); };

  // Backward twice without retain_graph: the engine's error, naming the checkpoint node.
  const Tensor y = checkpoint(seg, {x}, {w});
  y.backward();
  check_throws_with([&] { y.backward(); }, {"already freed", "'checkpoint'", "retain_graph"});

  // An input modified in place between forward and backward.
  Tensor c = randn({2, 4}, 3);
  const Tensor y2 =
      checkpoint([&](const std::vector<Tensor>& in) { return sum(mul(in[0], in[1])); }, {x, c}, {});
  c.fill_(1.0);
  check_throws_with([&] { y2.backward(); }, {"saved for the backward of 'checkpoint'", "modified in place"});

  // A parameter modified in place (an optimizer step between forward and backward).
  const Tensor y3 = checkpoint(seg, {x}, {w});
  {
    NoGradGuard ng;
    w.fill_(0.5);
  }
  check_throws_with([&] { y3.backward(); }, {"'checkpoint'", "modified in place"});

  // A parameter the segment uses but the caller did not list: caught instead of losing its gradient.
  const Tensor y4 = checkpoint(seg, {x}, {});
  check_throws_with([&] { y4.backward(); },
                    {"checkpoint", "f64[4, 4]", "neither one of its inputs", "params"});

  // An activation captured instead of passed in `inputs`.
  const Tensor a = mul(x, 3.0);
  const Tensor y5 = checkpoint([&](const std::vector<Tensor>& in) { return sum(mul(in[0], a)); }, {x}, {});
  check_throws_with([&] { y5.backward(); }, {"checkpoint", "recorded before the recomputation", "inputs"});

  // Non-leaf "parameters", and a segment that is not deterministic.
  check_throws_with([&] { checkpoint(seg, {x}, {a}); },
                    {"checkpoint", "params must be leaves", "made by 'mul"});
  int calls = 0;
  const Tensor y6 = checkpoint(
      [&](const std::vector<Tensor>& in) { return ++calls == 1 ? in[0] : in[0].slice(0, 0, 1); }, {x}, {});
  check_throws_with([&] { sum(y6).backward(); }, {"checkpoint", "must be deterministic"});
}

TEST_CASE("host storage bytes: exact live count and a resettable peak") {
  const HostStorageBytes before = host_storage_bytes();
  reset_host_storage_peak();
  {
    const Tensor a = Tensor::empty({1000}, DType::f64);
    CHECK(host_storage_bytes().live == before.live + 8000);
    { const Tensor b = Tensor::empty({500}, DType::f32); }
    CHECK(host_storage_bytes().live == before.live + 8000);
    CHECK(host_storage_bytes().peak == before.live + 10000);
  }
  CHECK(host_storage_bytes().live == before.live);
  reset_host_storage_peak();
  CHECK(host_storage_bytes().peak == before.live);
}

TEST_CASE("checkpoint saves memory: a deep chain keeps only the segments' inputs") {
  // 8 segments, each 4 ops on [128, 128] f64 (128 KiB per activation). Without checkpointing the forward
  // keeps every op's saved tensors (about 8 x 4 activations); with it, only the 8 segment inputs.
  const int segments = 8;
  Tensor w = mul(randn({128, 128}, 1), 1.0 / 128).set_requires_grad();
  const Tensor x0 = randn({128, 128}, 2).set_requires_grad();
  auto block = [&](const std::vector<Tensor>& in) {
    const Tensor a = tanh(linear(in[0], w));
    return add(mul(silu(a), sigmoid(in[0])), in[0]);
  };
  struct Peaks {
    size_t forward, step;
  };
  auto measure = [&](bool ckpt) {
    const size_t base = host_storage_bytes().live;
    reset_host_storage_peak();
    Tensor h = x0;
    for (int i = 0; i < segments; ++i) h = segment(ckpt, block, {h}, {w});
    const Tensor loss = sum(h);
    const size_t fwd = host_storage_bytes().peak - base;
    loss.backward();
    return Peaks{fwd, host_storage_bytes().peak - base};
  };
  const Peaks plain = measure(false);
  const Tensor plain_grad = w.grad();
  w.set_grad(Tensor());
  const Peaks ckpt = measure(true);
  check_close(w.grad(), plain_grad, 1e-12, 1e-12);
  MESSAGE("forward peak: plain ", plain.forward, " B, checkpointed ", ckpt.forward,
          " B; forward+backward peak: plain ", plain.step, " B, checkpointed ", ckpt.step, " B");
  const size_t act = 128 * 128 * 8;
  CHECK(plain.forward >=
        static_cast<size_t>(segments) * 4 * act);  // the plain graph really keeps its activations
  // The segment outputs, plus the few temporaries alive inside one segment while it runs under no_grad.
  CHECK(ckpt.forward <= static_cast<size_t>(segments + 6) * act);
  CHECK(ckpt.step * 2 < plain.step);
}
