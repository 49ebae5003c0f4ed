// GroupNorm and fused GroupNorm+SiLU: float64 loop references, gradchecks of x / weight / bias, the fused op
// against the composition, reduced precision against f64, thread-count independence, misuse, and FiLM.
#include <cmath>

#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

// Plain-loop GroupNorm of x viewed as [N, S, C] (channels last), in double; weight/bias may be empty.
std::vector<double> ref_group_norm(const Tensor& x, int64_t G, const std::vector<double>& weight,
                                   const std::vector<double>& bias, double eps, bool silu) {
  const auto v = x.to_vector<double>();
  const int64_t N = x.size(0), C = x.size(-1), S = x.numel() / (N * C), Cg = C / G;
  std::vector<double> y(v.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      double sum = 0;
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) sum += v[(n * S + s) * C + c];
      const double mu = sum / static_cast<double>(S * Cg);
      double ss = 0;
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c)
          ss += (v[(n * S + s) * C + c] - mu) * (v[(n * S + s) * C + c] - mu);
      const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(S * Cg) + eps);
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
          const int64_t i = (n * S + s) * C + c;
          double h = (v[i] - mu) * rstd;
          if (!weight.empty()) h *= weight[c];
          if (!bias.empty()) h += bias[c];
          y[i] = silu ? h / (1.0 + std::exp(-h)) : h;
        }
    }
  return y;
}

Tensor run_gn(bool silu, const Tensor& x, int64_t G, const Tensor& weight, const Tensor& bias,
              double eps = 1e-5) {
  return silu ? group_norm_silu(x, G, weight, bias, eps) : group_norm(x, G, weight, bias, eps);
}

}  // namespace

TEST_CASE("group_norm and group_norm_silu match a float64 loop reference") {
  struct Case {
    Shape shape;
    int64_t groups;
  };
  // C = 6 with 1, 2, 3 and 6 (= C) groups; [N, H, W, C], [N, L, C] and [N, C] layouts.
  const std::vector<Case> cases = {{{2, 3, 5, 6}, 3}, {{2, 3, 5, 6}, 1}, {{2, 3, 5, 6}, 6},
                                   {{3, 7, 6}, 2},    {{4, 6}, 3},       {{1, 1, 1, 6}, 2}};
  for (const auto& c : cases) {
    CAPTURE(shape_str(c.shape));
    CAPTURE(c.groups);
    const int64_t C = c.shape.back();
    const Tensor x = randn(c.shape, 1, DType::f64, 2.0) + 0.7;
    const Tensor weight = randn({C}, 2), bias = randn({C}, 3);
    for (bool silu : {false, true}) {
      CAPTURE(silu);
      check_close(run_gn(silu, x, c.groups, weight, bias),
                  Tensor::from_vector(ref_group_norm(x, c.groups, weight.to_vector<double>(),
                                                     bias.to_vector<double>(), 1e-5, silu),
                                      c.shape),
                  1e-12, 1e-12);
      check_close(run_gn(silu, noncontiguous(x), c.groups, Tensor(), Tensor(), 1e-3),
                  Tensor::from_vector(ref_group_norm(x, c.groups, {}, {}, 1e-3, silu), c.shape), 1e-12,
                  1e-12);
    }
  }
}

TEST_CASE("group_norm and group_norm_silu gradcheck in x, weight and bias") {
  struct Case {
    Shape shape;
    int64_t groups;
    bool strided;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 6}, 3, false}, {{2, 2, 3, 6}, 6, true}, {{3, 4, 6}, 1, true}, {{3, 6}, 2, false}};
  for (const auto& c : cases) {
    CAPTURE(shape_str(c.shape));
    CAPTURE(c.groups);
    const int64_t C = c.shape.back();
    Tensor x = randn(c.shape, 4);
    if (c.strided) x = noncontiguous(x);
    x.set_requires_grad();
    Tensor weight = (randn({C}, 5) + 1.0).detach().set_requires_grad();
    Tensor bias = randn({C}, 6).set_requires_grad();
    for (bool silu : {false, true}) {
      CAPTURE(silu);
      gradcheck([&](const std::vector<Tensor>& in) { return run_gn(silu, in[0], c.groups, in[1], in[2]); },
                {x, weight, bias});
      gradcheck(
          [&](const std::vector<Tensor>& in) { return run_gn(silu, in[0], c.groups, Tensor(), Tensor()); },
          {x});
      // Only the parameters need gradients.
      gradcheck(
          [&](const std::vector<Tensor>& in) { return run_gn(silu, x.detach(), c.groups, in[0], in[1]); },
          {weight, bias});
    }
  }
}

TEST_CASE("group_norm_silu equals silu(group_norm) exactly in float64") {
  const Tensor x = randn({3, 4, 5, 12}, 7, DType::f64, 1.5);
  const Tensor weight = randn({12}, 8), bias = randn({12}, 9);
  for (int64_t groups : {1, 4, 12}) {
    CAPTURE(groups);
    const auto fused = group_norm_silu(x, groups, weight, bias).to_vector<double>();
    const auto composed = silu(group_norm(x, groups, weight, bias)).to_vector<double>();
    CHECK(fused == composed);
    const auto gf = grads_of([&](const auto& in) { return group_norm_silu(in[0], groups, in[1], in[2]); },
                             {x, weight, bias}, 10);
    const auto gc = grads_of([&](const auto& in) { return silu(group_norm(in[0], groups, in[1], in[2])); },
                             {x, weight, bias}, 10);
    for (size_t i = 0; i < 3; ++i) check_close(gf[i], gc[i], 1e-12, 1e-10);
  }
}

TEST_CASE("group_norm_silu backward does not depend on its stored output") {
  // The fused op keeps x, mean and rstd only: overwriting its output before backward changes nothing
  // (an op that saved its output would throw here, as saved tensors are version-checked).
  const Tensor x0 = randn({2, 3, 3, 8}, 11);
  Tensor x = x0.clone().set_requires_grad();
  Tensor y = group_norm_silu(x, 4);
  const Tensor seed = randn(y.shape(), 12);
  const Tensor expected = grads_of([&](const auto& in) { return group_norm_silu(in[0], 4); }, {x0}, 12)[0];
  {
    NoGradGuard ng;
    y.fill_(123.0);
  }
  y.backward(seed);
  check_close(x.grad(), expected, 0, 0);
}

TEST_CASE("group_norm in f32 and bf16 follows f64, with f32 parameters") {
  const Tensor x = randn({2, 5, 7, 16}, 13, DType::f64, 3.0) + 2.0;
  const Tensor weight = randn({16}, 14) + 1.0, bias = randn({16}, 15);
  for (bool silu : {false, true}) {
    CAPTURE(silu);
    auto fn = [&](const std::vector<Tensor>& in) { return run_gn(silu, in[0], 4, in[1], in[2]); };
    const Tensor ref = fn({x, weight, bias});
    const auto gref = grads_of(fn, {x, weight, bias}, 16);
    for (DType dt : {DType::f32, DType::bf16}) {
      CAPTURE(dtype_name(dt));
      const double tol = dt == DType::f32 ? 1e-5 : 2e-2;
      // x in dt, parameters f32 as in training.
      const std::vector<Tensor> in = {x.to(dt), weight.to(DType::f32), bias.to(DType::f32)};
      const Tensor y = fn(in);
      CHECK(y.dtype() == dt);
      CHECK(rel_l2(y, ref) < tol);
      const auto g = grads_of(fn, in, 16);
      CHECK(g[0].dtype() == dt);
      CHECK(g[1].dtype() == DType::f32);
      for (size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        CHECK(rel_l2(g[i], gref[i]) < tol);
      }
    }
  }
}

TEST_CASE("group_norm forward and backward are identical with 1 and 2 threads") {
  // Large enough that every pass is split between two threads: 32 (sample, group) tasks of 2304 elements,
  // 2304 rows of 32 channels.
  const Tensor x = randn({4, 24, 24, 32}, 17, DType::f32);
  const Tensor weight = randn({32}, 18, DType::f32), bias = randn({32}, 19, DType::f32);
  auto run = [&] {
    std::vector<std::vector<float>> out;
    for (bool silu : {false, true}) {
      out.push_back(run_gn(silu, x, 8, weight, bias).to_vector<float>());
      for (const Tensor& g : grads_of([&](const auto& in) { return run_gn(silu, in[0], 8, in[1], in[2]); },
                                      {x, weight, bias}, 20))
        out.push_back(g.to_vector<float>());
    }
    return out;
  };
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  const auto a = run();
  set_num_threads(2);
  const auto b = run();
  CHECK(a == b);
}

TEST_CASE("group_norm misuse raises errors naming the op and shapes") {
  const Tensor x = randn({2, 3, 3, 6}, 21);
  check_throws_with([&] { (void)group_norm(x, 4); }, {"group_norm", "groups = 4", "C = 6", "[2, 3, 3, 6]"});
  check_throws_with([&] { (void)group_norm_silu(x, 0); }, {"group_norm_silu", "groups = 0"});
  check_throws_with([&] { (void)group_norm(x, 3, randn({5}, 1)); }, {"group_norm", "weight", "[5]", "[6]"});
  check_throws_with(
      [&] {
        (void)group_norm(x, 3, Tensor(), randn({6, 1}, 1));
      },
      {"group_norm", "bias", "[6, 1]"});
  check_throws_with([&] { (void)group_norm(randn({6}, 1), 3); }, {"group_norm", "[6]"});
  check_throws_with([&] { (void)group_norm(Tensor::zeros({2, 6}, DType::i32), 3); }, {"group_norm", "i32"});
}

TEST_CASE("FiLM scale-shift is plain broadcasting and gradients flow through it") {
  // h = group_norm(x) * (1 + scale[N, 1, 1, C]) + shift[N, 1, 1, C]: the conditioning of a ResBlock.
  Tensor x = randn({2, 3, 2, 6}, 22).set_requires_grad();
  Tensor weight = randn({6}, 23).set_requires_grad();
  Tensor scale = randn({2, 1, 1, 6}, 24, DType::f64, 0.5).set_requires_grad();
  Tensor shift = randn({2, 1, 1, 6}, 25).set_requires_grad();
  auto film = [](const std::vector<Tensor>& in) {
    return group_norm_silu(in[0], 3, in[1], Tensor()) * (1.0 + in[2]) + in[3];
  };
  gradcheck(film, {x, weight, scale, shift});
  // The reference: per-sample, per-channel affine on top of the normalised value.
  const auto h = group_norm_silu(x, 3, weight, Tensor()).to_vector<double>();
  const auto sc = scale.to_vector<double>(), sh = shift.to_vector<double>();
  std::vector<double> ref(h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    const size_t n = i / 36, c = i % 6;
    ref[i] = h[i] * (1.0 + sc[n * 6 + c]) + sh[n * 6 + c];
  }
  check_close(film({x, weight, scale, shift}), Tensor::from_vector(ref, x.shape()), 1e-14, 1e-12);
  // A sample's scale affects only that sample's outputs.
  const auto g = grads_of(
      [&](const auto& in) {
        return film({in[0], in[1], in[2], in[3]}).select(0, 1);
      },
      {x, weight, scale, shift}, 26);
  CHECK(max_abs_diff(g[2].select(0, 0), Tensor::zeros({1, 1, 6}, DType::f64)) == 0.0);
  CHECK(max_abs_diff(g[2].select(0, 1), Tensor::zeros({1, 1, 6}, DType::f64)) > 0.0);
}
