// optim: AdamW against the formulas, EMA with warm-up, LR schedules at their boundaries, gradient clipping,
// exact save/restore, and a small MLP that must learn a regression task.
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>

#include "framework/kernels/optim.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::nn;
using namespace iris::optim;

namespace {
Tensor vec(const std::vector<double>& v, DType dtype = DType::f64) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}).to(dtype);
}

void assign(Tensor& t, const std::vector<double>& v) {
  NoGradGuard ng;
  t.copy_(Tensor::from_vector(v, t.shape()));
}

// One AdamW step for one scalar, straight from the formulas (PyTorch's torch.optim.AdamW), in double.
struct ScalarAdam {
  double p, m = 0, v = 0;
  int t = 0;
  void step(double g, double lr, double b1, double b2, double eps, double wd) {
    ++t;
    p *= 1.0 - lr * wd;
    m = b1 * m + (1.0 - b1) * g;
    v = b2 * v + (1.0 - b2) * g * g;
    const double m_hat = m / (1.0 - std::pow(b1, t));
    const double v_hat = v / (1.0 - std::pow(b2, t));
    p -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
};

// A deep copy of an optimizer state, as a checkpoint on disk would hold it.
State snapshot(const State& s) {
  State c = s;
  for (auto& [k, t] : c.tensors) t = t.clone();
  return c;
}

std::shared_ptr<Sequential> make_mlp(uint64_t seed, std::vector<int64_t> widths) {
  Generator gen(seed);
  auto mlp = std::make_shared<Sequential>();
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    mlp->push_back(std::make_shared<Linear>(widths[i], widths[i + 1], gen));
    if (i + 2 < widths.size()) mlp->push_back(std::make_shared<Tanh>());
  }
  return mlp;
}

// y = sin(3 x1) * x2 on fixed points of [-1, 1]^2. x: [n, 2], y: [n, 1].
std::pair<Tensor, Tensor> regression_data(int64_t n, uint64_t seed) {
  const Tensor x = uniform({n, 2}, seed, -1.0, 1.0, DType::f32);
  const Tensor y = (sin(x.slice(1, 0, 1) * 3.0) * x.slice(1, 1, 2)).contiguous();
  return {x, y};
}
}  // namespace

TEST_CASE("AdamW first two steps equal the formulas, with and without weight decay") {
  for (DType dtype : {DType::f64, DType::f32}) {
    for (double wd : {0.0, 0.1}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(wd);
      const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
      Tensor a = vec({0.5, -1.5, 2.0}, dtype).set_requires_grad();
      Tensor c = vec({3.0}, dtype).set_requires_grad();  // gets a gradient only at the second step
      AdamW opt(std::vector<Tensor>{a, c}, lr, {b1, b2}, eps, wd);
      std::vector<ScalarAdam> ref{{0.5}, {-1.5}, {2.0}, {3.0}};

      // Step 1. For a's first element by hand: m = 0.1 * 0.1 = 0.01, v = 0.001 * 0.1^2 = 1e-5,
      // m_hat = 0.01 / 0.1 = 0.1, v_hat = 1e-5 / 0.001 = 0.01, so p = 0.5 (1 - lr wd) - lr * 0.1 / (0.1 +
      // eps).
      a.set_grad(vec({0.1, -0.2, 0.0}, dtype));
      opt.step();
      for (int i = 0; i < 3; ++i) ref[i].step(std::vector<double>{0.1, -0.2, 0.0}[i], lr, b1, b2, eps, wd);
      const double tol = dtype == DType::f64 ? 1e-15 : 1e-6;
      CHECK(std::abs(a.to_vector<double>()[0] - (0.5 * (1 - lr * wd) - lr * 0.1 / (0.1 + eps))) < tol);
      // A zero gradient leaves p alone apart from the decay: m = v = 0.
      CHECK(std::abs(a.to_vector<double>()[2] - 2.0 * (1 - lr * wd)) < tol);
      check_close(a, vec({ref[0].p, ref[1].p, ref[2].p}, dtype), tol, tol);
      CHECK(c.to_vector<double>()[0] == 3.0);  // no gradient: skipped entirely (no decay either)
      CHECK(opt.step_count(0) == 1);
      CHECK(opt.step_count(1) == 0);

      // Step 2: m = 0.9 * 0.01 + 0.1 * (-0.05) = 0.004, v = 0.999e-5 + 0.001 * 0.0025 = 1.249e-5,
      // bias corrections 1 - 0.9^2 = 0.19 and 1 - 0.999^2 = 0.001999 (for a's first element).
      a.set_grad(vec({-0.05, 0.4, 1.0}, dtype));
      c.set_grad(vec({-2.0}, dtype));
      opt.step();
      const double a0 = 0.5 * (1 - lr * wd) - lr * 0.1 / (0.1 + eps);
      const double a0_2 = a0 * (1 - lr * wd) - lr * (0.004 / 0.19) / (std::sqrt(1.249e-5 / 0.001999) + eps);
      CHECK(std::abs(a.to_vector<double>()[0] - a0_2) < tol);
      for (int i = 0; i < 3; ++i) ref[i].step(std::vector<double>{-0.05, 0.4, 1.0}[i], lr, b1, b2, eps, wd);
      ref[3].step(-2.0, lr, b1, b2, eps, wd);  // c's first step: bias corrections of t = 1
      check_close(a, vec({ref[0].p, ref[1].p, ref[2].p}, dtype), tol, tol);
      check_close(c, vec({ref[3].p}, dtype), tol, tol);
      CHECK(opt.step_count(0) == 2);
      CHECK(opt.step_count(1) == 1);
      // Moments are f32 for f32 parameters.
      CHECK(opt.state().tensors.at("0.m").dtype() == (dtype == DType::f64 ? DType::f64 : DType::f32));
    }
  }
}

TEST_CASE("AdamW rejects bad parameters and hyperparameters by name") {
  Tensor p = Tensor::ones({2, 3}).set_requires_grad();
  check_throws_with([&] { AdamW(NamedTensors{{"w", p}, {"tied", p}}, 1e-3); }, {"AdamW", "'tied'", "twice"});
  check_throws_with([&] { AdamW(NamedTensors{{"w", p.to(DType::bf16)}}, 1e-3); }, {"AdamW", "'w'", "bf16"});
  check_throws_with(
      [&] {
        AdamW(NamedTensors{{"w", p.transpose(0, 1)}}, 1e-3);
      },
      {"AdamW", "'w'", "contiguous"});
  check_throws_with([&] { AdamW(std::vector<Tensor>{p}, -1.0); }, {"AdamW", "learning rate", "-1"});
  check_throws_with([&] { AdamW(std::vector<Tensor>{p}, 1e-3, {0.9, 1.0}); }, {"AdamW", "betas"});
  AdamW opt(std::vector<Tensor>{p}, 1e-3);
  check_throws_with([&] { opt.set_lr(std::nan("")); }, {"set_lr", "nan"});
}

TEST_CASE("AdamW updates are identical with 1 and 2 threads") {
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Tensor p = randn({100003}, 1, DType::f32).set_requires_grad();
    AdamW opt(std::vector<Tensor>{p}, 1e-3, {0.9, 0.99}, 1e-8, 0.05);
    for (uint64_t s = 0; s < 3; ++s) {
      p.set_grad(randn({100003}, 10 + s, DType::f32));
      opt.step();
    }
    results.push_back(p.to_vector<float>());
  }
  CHECK(results[0] == results[1]);
}

TEST_CASE("the CPU multi-tensor AdamW update equals the per-tensor update bit for bit") {
  // Many small tensors and a few spanning several 16384-element chunks, f32 and f64 mixed, each with its own
  // step scalars (another step count, hence bias corrections; weight decay on some): AdamW::step's batched
  // update against cpu::adamw_update one tensor at a time.
  ThreadCountGuard restore_threads;
  const std::vector<int64_t> sizes = {1, 3, 17, 16384, 16385, 40000, 5, 70001};
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    set_num_threads(threads);
    std::vector<AdamWTensor> items;
    std::vector<std::array<Tensor, 4>> expected;
    for (size_t k = 0; k < sizes.size(); ++k) {
      const DType dt = k % 3 == 2 ? DType::f64 : DType::f32;
      const uint64_t seed = 100 + 10 * k;
      AdamWStep st;
      st.lr = 1e-3 * static_cast<double>(k + 1);
      st.weight_decay = k % 2 ? 0.05 : 0.0;
      st.bias_correction1 = 1.0 - std::pow(0.9, static_cast<double>(k + 1));
      st.bias_correction2 = 1.0 - std::pow(0.999, static_cast<double>(k + 1));
      const Tensor p = randn({sizes[k]}, seed, dt), g = randn({sizes[k]}, seed + 1, dt),
                   m = randn({sizes[k]}, seed + 2, dt, 0.1);
      const Tensor v0 = mul(square(randn({sizes[k]}, seed + 3, dt)), 0.01);  // second moments are >= 0
      items.push_back(AdamWTensor{p.clone(), g, m.clone(), v0.clone(), st});
      Tensor ep = p.clone(), em = m.clone(), ev = v0.clone();
      cpu::adamw_update(ep, g, em, ev, st);
      expected.push_back({ep, em, ev, g});
    }
    cpu::adamw_update_multi(items);
    for (size_t k = 0; k < items.size(); ++k) {
      CAPTURE(sizes[k]);
      CHECK(items[k].param.to_vector<double>() == expected[k][0].to_vector<double>());
      CHECK(items[k].m.to_vector<double>() == expected[k][1].to_vector<double>());
      CHECK(items[k].v.to_vector<double>() == expected[k][2].to_vector<double>());
    }
  }
}

TEST_CASE("AdamW follows parameters that Module::to converts after earlier steps") {
  auto mlp = make_mlp(3, {2, 4, 1});
  AdamW opt(mlp->named_parameters(), 1e-2);
  const Tensor x = randn({5, 2}, 4, DType::f32);
  sum(mlp->forward(x)).backward();
  opt.step();
  mlp->to(DType::f64);
  mlp->zero_grad();
  const Tensor w = mlp->named_parameters()[0].second;
  const Tensor before = w.clone();
  sum(mlp->forward(x.to(DType::f64))).backward();
  opt.step();
  CHECK(w.dtype() == DType::f64);
  CHECK(max_abs_diff(w, before) > 0);
  CHECK(opt.state().tensors.at("0.weight.m").dtype() == DType::f64);
}

TEST_CASE("a saved training state restored into fresh objects continues bit for bit") {
  const auto [x, y] = regression_data(64, 5);
  LRScheduleOptions so;
  so.base_lr = 3e-3;
  so.warmup_steps = 3;
  so.decay = LRScheduleOptions::Decay::cosine;
  so.total_steps = 20;
  so.final_lr = 1e-4;
  auto train = [&](Sequential& m, AdamW& opt, EMA& ema, LRSchedule& sched, int steps) {
    for (int i = 0; i < steps; ++i) {
      m.zero_grad();
      mean(square(m(x) - y)).backward();
      clip_grad_norm(m.parameters(), 0.5);
      opt.set_lr(sched.lr());
      opt.step();
      sched.advance();
      ema.update();
    }
  };

  auto a = make_mlp(6, {2, 8, 8, 1});
  AdamW opt_a(a->named_parameters(), 1.0, {0.9, 0.99}, 1e-8, 0.01);
  EMA ema_a(*a, 0.9);
  LRSchedule sched_a(so);
  train(*a, opt_a, ema_a, sched_a, 4);

  // The checkpoint: deep copies, as if written to disk.
  StateDict model_ckpt;
  for (auto& [k, t] : a->state_dict()) model_ckpt[k] = t.clone();
  const State opt_ckpt = snapshot(opt_a.state()), ema_ckpt = snapshot(ema_a.state());
  const int64_t sched_ckpt = sched_a.state();
  CHECK(opt_ckpt.ints.at("0.weight.step") == 4);
  CHECK(opt_ckpt.tensors.count("4.bias.v") == 1);
  CHECK(ema_ckpt.ints.at("num_updates") == 4);

  // Fresh objects from another seed and other hyperparameters; everything comes from the checkpoint.
  auto b = make_mlp(7, {2, 8, 8, 1});
  AdamW opt_b(b->named_parameters(), 0.5);
  EMA ema_b(*b, 0.5);
  LRSchedule sched_b(so);
  b->load_state_dict(model_ckpt);
  opt_b.load_state(opt_ckpt);
  ema_b.load_state(ema_ckpt);
  sched_b.load_state(sched_ckpt);
  CHECK(opt_b.weight_decay() == 0.01);

  train(*a, opt_a, ema_a, sched_a, 3);
  train(*b, opt_b, ema_b, sched_b, 3);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    CHECK(pa[i].second.to_vector<float>() == pb[i].second.to_vector<float>());
    CHECK(ema_a.averaged()[i].second.to_vector<float>() == ema_b.averaged()[i].second.to_vector<float>());
  }
  CHECK(opt_b.step_count(0) == 7);
  CHECK(sched_b.step() == 7);
}

TEST_CASE("AdamW::load_state lists every problem in one error and changes nothing") {
  Tensor w = Tensor::ones({2, 3}).set_requires_grad(), bias = Tensor::ones({3}).set_requires_grad();
  AdamW opt(NamedTensors{{"w", w}, {"b", bias}}, 1e-3);
  w.set_grad(Tensor::ones({2, 3}));
  bias.set_grad(Tensor::ones({3}));
  opt.step();
  State st = snapshot(opt.state());
  st.tensors.erase("w.m");
  st.tensors["b.v"] = Tensor::zeros({4});
  st.tensors["other.m"] = Tensor::zeros({1});
  st.ints["b.step"] = -1;
  st.floats.erase("eps");
  check_throws_with(
      [&] { opt.load_state(st); },
      {"AdamW::load_state", "2 parameters", "missing 'w.m'", "'b.step' is negative",
       "'b.v' has shape [4], the parameter [3]", "unexpected tensor 'other.m'", "missing 'eps'"});
  CHECK(opt.step_count(1) == 1);
  CHECK(opt.lr() == 1e-3);
  State bad_lr = snapshot(opt.state());
  bad_lr.floats["lr"] = -1.0;
  check_throws_with([&] { opt.load_state(bad_lr); }, {"AdamW::load_state", "learning rate"});
}

TEST_CASE("EMA after 1, 2 and 3 updates equals the warm-up formula") {
  for (double decay : {0.999, 0.2}) {
    CAPTURE(decay);
    Module m;
    Tensor p = m.register_parameter("p", vec({1.0, -2.0}));
    EMA ema(m, decay);
    // d_n = min(decay, (1 + n) / (10 + n)): 0.1, 2/11, 3/12 (capped at 0.2 for decay = 0.2).
    const double d0 = std::min(decay, 0.1), d1 = std::min(decay, 2.0 / 11.0), d2 = std::min(decay, 0.25);
    CHECK(ema.next_decay() == d0);
    assign(p, {3.0, 0.5});
    ema.update();
    const std::vector<double> s1{d0 * 1.0 + (1 - d0) * 3.0, d0 * -2.0 + (1 - d0) * 0.5};
    check_close(ema.averaged()[0].second, vec(s1), 1e-15, 1e-15);
    if (decay == 0.999) check_close(ema.averaged()[0].second, vec({2.8, 0.25}), 1e-15, 1e-15);
    CHECK(ema.next_decay() == d1);
    assign(p, {-1.0, 4.0});
    ema.update();
    const std::vector<double> s2{d1 * s1[0] + (1 - d1) * -1.0, d1 * s1[1] + (1 - d1) * 4.0};
    check_close(ema.averaged()[0].second, vec(s2), 1e-15, 1e-15);
    CHECK(ema.next_decay() == d2);
    assign(p, {2.0, 2.0});
    ema.update();
    const std::vector<double> s3{d2 * s2[0] + (1 - d2) * 2.0, d2 * s2[1] + (1 - d2) * 2.0};
    check_close(ema.averaged()[0].second, vec(s3), 1e-15, 1e-15);
    CHECK(ema.num_updates() == 3);
    CHECK(p.to_vector<double>() == std::vector<double>{2.0, 2.0});  // the parameter itself is untouched
  }
  // Without warm-up the decay applies from the first update.
  Module m;
  Tensor p = m.register_parameter("p", vec({1.0}));
  EMA ema(m, 0.9, /*warmup=*/false);
  assign(p, {2.0});
  ema.update();
  check_close(ema.averaged()[0].second, vec({0.9 * 1.0 + 0.1 * 2.0}), 1e-15, 1e-15);
}

TEST_CASE("EMA swap evaluates with averaged weights and restores the raw ones") {
  auto net = make_mlp(8, {2, 3, 1});
  EMA ema(*net, 0.5);
  for (Tensor& p : net->parameters()) {
    NoGradGuard ng;
    p.copy_(p * 3.0 + 1.0);
  }
  ema.update();
  const auto raw = net->state_dict();
  std::vector<std::vector<float>> raw_values;
  for (auto& [k, t] : raw) raw_values.push_back(t.to_vector<float>());
  const Tensor w = net->named_parameters()[0].second;
  {
    EMA::Swap swap = ema.swap_in();
    const auto params = net->named_parameters();
    for (size_t i = 0; i < params.size(); ++i)
      CHECK(params[i].second.to_vector<float>() == ema.averaged()[i].second.to_vector<float>());
    CHECK(w.same(net->named_parameters()[0].second));
  }
  size_t i = 0;
  for (auto& [k, t] : net->state_dict()) CHECK(t.to_vector<float>() == raw_values[i++]);

  // copy_to writes the averages into another instance of the model.
  auto eval_net = make_mlp(9, {2, 3, 1});
  ema.copy_to(*eval_net);
  for (size_t j = 0; j < ema.averaged().size(); ++j)
    CHECK(eval_net->named_parameters()[j].second.to_vector<float>() ==
          ema.averaged()[j].second.to_vector<float>());
  auto other = make_mlp(9, {2, 4, 1, 1});
  check_throws_with([&] { ema.copy_to(*other); },
                    {"EMA::copy_to", "'0.weight' is [4, 2] in the module, [3, 2] in the average",
                     "'4.weight' has no average"});
}

TEST_CASE("EMA state restores exactly and reports mismatches together") {
  auto net = make_mlp(10, {2, 3, 1});
  EMA a(*net, 0.99);
  for (int s = 0; s < 2; ++s) {
    for (Tensor& p : net->parameters()) {
      NoGradGuard ng;
      p.copy_(p * 0.5 + 0.25);
    }
    a.update();
  }
  EMA b(*net, 0.5, false);
  b.load_state(snapshot(a.state()));
  CHECK(b.num_updates() == 2);
  CHECK(b.next_decay() == a.next_decay());
  a.update();
  b.update();
  for (size_t i = 0; i < a.averaged().size(); ++i)
    CHECK(a.averaged()[i].second.to_vector<float>() == b.averaged()[i].second.to_vector<float>());
  State bad = snapshot(a.state());
  bad.tensors.erase("0.bias");
  bad.tensors["2.weight"] = Tensor::zeros({3, 1});
  bad.tensors["9.weight"] = Tensor::zeros({1});
  bad.ints.erase("num_updates");
  check_throws_with([&] { b.load_state(bad); },
                    {"EMA::load_state", "missing average '0.bias'", "'2.weight' has shape [3, 1]",
                     "unexpected average '9.weight'", "missing 'num_updates'"});
}

TEST_CASE("LR schedule at its boundaries") {
  LRScheduleOptions o;
  o.base_lr = 1e-3;
  o.warmup_steps = 10;
  o.decay = LRScheduleOptions::Decay::cosine;
  o.total_steps = 110;
  o.final_lr = 1e-5;
  LRSchedule cos(o);
  CHECK(cos.lr_at(0) == 0.0);
  CHECK(cos.lr_at(5) == doctest::Approx(0.5e-3).epsilon(1e-12));
  CHECK(cos.lr_at(9) == doctest::Approx(0.9e-3).epsilon(1e-12));
  CHECK(cos.lr_at(10) == doctest::Approx(1e-3).epsilon(1e-12));                      // cos(0) = 1
  CHECK(cos.lr_at(60) == doctest::Approx(1e-5 + (1e-3 - 1e-5) / 2).epsilon(1e-12));  // half way
  CHECK(cos.lr_at(109) > 1e-5);
  CHECK(cos.lr_at(109) ==
        doctest::Approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + std::cos(0.99 * std::numbers::pi))).epsilon(1e-12));
  CHECK(cos.lr_at(110) == 1e-5);
  CHECK(cos.lr_at(1000000) == 1e-5);
  for (int64_t s = 10; s < 110; ++s) CHECK(cos.lr_at(s + 1) <= cos.lr_at(s));

  o.decay = LRScheduleOptions::Decay::constant;
  o.warmup_start_factor = 0.1;
  LRSchedule cst(o);
  CHECK(cst.lr_at(0) == doctest::Approx(1e-4).epsilon(1e-12));
  CHECK(cst.lr_at(9) == doctest::Approx(1e-3 * (0.1 + 0.9 * 0.9)).epsilon(1e-12));
  CHECK(cst.lr_at(10) == 1e-3);
  CHECK(cst.lr_at(110) == 1e-3);
  CHECK(cst.lr_at(1000000) == 1e-3);

  o.warmup_steps = 0;
  LRSchedule none(o);
  CHECK(none.lr_at(0) == 1e-3);

  // The state is the step: advancing and restoring.
  LRSchedule s(o);
  s.advance();
  s.advance();
  CHECK(s.step() == 2);
  LRSchedule r(o);
  r.load_state(s.state());
  CHECK(r.lr() == s.lr());
  CHECK(r.step() == 2);

  check_throws_with([&] { (void)cos.lr_at(-1); }, {"lr_at", "-1"});
  o.decay = LRScheduleOptions::Decay::cosine;
  o.warmup_steps = 100;
  o.total_steps = 100;
  check_throws_with([&] { LRSchedule bad(o); }, {"LRSchedule", "total_steps (100)", "warmup_steps (100)"});
}

TEST_CASE("clip_grad_norm: the global norm, the scaling, and non-finite norms") {
  Tensor a = Tensor::zeros({2}).set_requires_grad(), b = Tensor::zeros({1}).set_requires_grad();
  Tensor c = Tensor::zeros({3}).set_requires_grad();  // no gradient: ignored
  const std::vector<Tensor> params{a, b, c};
  a.set_grad(vec({3.0, 4.0}, DType::f32));
  b.set_grad(vec({12.0}, DType::f32));
  CHECK(grad_norm(params) == 13.0);  // sqrt(9 + 16 + 144)
  CHECK(clip_grad_norm(params, 20.0) == 13.0);
  CHECK(a.grad().to_vector<float>() == std::vector<float>{3, 4});  // under the bound: untouched
  CHECK(clip_grad_norm(params, 6.5) == 13.0);
  const double scale = 6.5 / (13.0 + 1e-6);
  check_close(a.grad(), vec({3 * scale, 4 * scale}), 1e-6, 1e-6);
  check_close(b.grad(), vec({12 * scale}), 1e-6, 1e-6);
  CHECK(grad_norm(params) == doctest::Approx(6.5).epsilon(1e-6));

  b.set_grad(vec({std::numeric_limits<double>::infinity()}, DType::f32));
  const std::vector<float> before = a.grad().to_vector<float>();
  CHECK(std::isinf(clip_grad_norm(params, 1.0)));
  CHECK(a.grad().to_vector<float>() == before);  // left alone
  b.set_grad(vec({std::nan("")}, DType::f32));
  CHECK(std::isnan(clip_grad_norm(params, 1.0)));
  CHECK(clip_grad_norm({c}, 1.0) == 0.0);
  check_throws_with([&] { clip_grad_norm(params, 0.0); }, {"clip_grad_norm", "max_norm"});
}

TEST_CASE("clip_grad_norm matches a float64 loop on odd, non-contiguous gradients") {
  std::vector<Tensor> params;
  double sq = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const Shape shape{3 + i, 5};
    Tensor p = Tensor::zeros(shape, DType::f64).set_requires_grad();
    const Tensor g = noncontiguous(randn(shape, 20 + i));
    for (double v : g.to_vector<double>()) sq += v * v;
    p.set_grad(g);
    params.push_back(p);
  }
  const std::vector<double> g0 = params[0].grad().to_vector<double>();
  const double norm = std::sqrt(sq);
  CHECK(clip_grad_norm(params, 1.0) == doctest::Approx(norm).epsilon(1e-14));
  const std::vector<double> g1 = params[0].grad().to_vector<double>();
  for (size_t i = 0; i < g0.size(); ++i)
    CHECK(g1[i] == doctest::Approx(g0[i] / (norm + 1e-6)).epsilon(1e-14));
  CHECK(grad_norm(params) == doctest::Approx(norm / (norm + 1e-6)).epsilon(1e-12));
}

TEST_CASE("a small MLP learns y = sin(3 x1) x2 with AdamW") {
  // 2 -> 32 -> 32 -> 1 with tanh, full batch of 256 fixed points, Adam at 1e-2 for 600 steps.
  const auto [x, y] = regression_data(256, 42);
  auto mlp = make_mlp(1, {2, 32, 32, 1});
  AdamW opt(mlp->named_parameters(), 1e-2);
  auto loss_of = [&] { return mean(square(mlp->forward(x) - y)); };
  const double bound = 1e-3;
  const double initial = loss_of().item();
  MESSAGE("initial MSE ", initial);
  CHECK(initial > 10 * bound);  // the target's variance is about 0.17: learning is needed
  const auto t0 = std::chrono::steady_clock::now();
  double loss = initial;
  for (int step = 0; step < 600; ++step) {
    mlp->zero_grad();
    Tensor l = loss_of();
    loss = l.item();
    l.backward();
    opt.step();
  }
  loss = loss_of().item();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("MSE after 600 Adam steps: ", loss, " (", secs, " s)");
  CHECK(loss < bound);
}
