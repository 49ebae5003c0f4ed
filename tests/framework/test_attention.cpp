// attention: float64 loop reference, gradchecks of q / k / v (Tq != Tk, odd head dims, strided inputs),
// reduced precision against f64, thread-count independence and misuse.
#include <cmath>

#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

// softmax(q kᵀ · scale) v with plain loops in double. q [B,H,Tq,d], k [B,H,Tk,d], v [B,H,Tk,dv].
Tensor ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), d = q.size(3), Tk = k.size(2), dv = v.size(3);
  const auto qv = q.to_vector<double>(), kv = k.to_vector<double>(), vv = v.to_vector<double>();
  std::vector<double> out(static_cast<size_t>(B * H * Tq * dv), 0.0);
  std::vector<double> p(static_cast<size_t>(Tk));
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < Tq; ++i) {
      double m = -INFINITY;
      for (int64_t j = 0; j < Tk; ++j) {
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += qv[(bh * Tq + i) * d + c] * kv[(bh * Tk + j) * d + c];
        p[j] = s * scale;
        m = std::max(m, p[j]);
      }
      double z = 0;
      for (int64_t j = 0; j < Tk; ++j) z += (p[j] = std::exp(p[j] - m));
      for (int64_t j = 0; j < Tk; ++j)
        for (int64_t c = 0; c < dv; ++c) out[(bh * Tq + i) * dv + c] += p[j] / z * vv[(bh * Tk + j) * dv + c];
    }
  return Tensor::from_vector(out, {B, H, Tq, dv});
}

struct Dims {
  int64_t B, H, Tq, Tk, d, dv;
};

std::vector<Tensor> make_qkv(const Dims& m, uint64_t seed, DType dt = DType::f64) {
  return {randn({m.B, m.H, m.Tq, m.d}, seed, dt), randn({m.B, m.H, m.Tk, m.d}, seed + 1, dt),
          randn({m.B, m.H, m.Tk, m.dv}, seed + 2, dt)};
}

// k laid out as [B, H, d, Tk] in memory and viewed as [B, H, Tk, d] (a transposed, non-contiguous input).
Tensor transposed_layout(const Tensor& k) {
  return k.transpose(2, 3).contiguous().transpose(2, 3);
}


}  // namespace

TEST_CASE("attention matches a float64 loop reference") {
  const std::vector<Dims> dims = {
      {2, 3, 5, 4, 3, 2}, {1, 1, 5, 5, 3, 3}, {2, 1, 1, 7, 4, 5}, {1, 2, 6, 1, 2, 3}};
  for (const auto& m : dims) {
    CAPTURE(m.Tq);
    CAPTURE(m.Tk);
    const auto in = make_qkv(m, 1);
    for (double scale : {1.0 / std::sqrt(static_cast<double>(m.d)), 2.5}) {
      const Tensor ref = ref_attention(in[0], in[1], in[2], scale);
      check_close(attention(in[0], in[1], in[2], scale), ref, 1e-13, 1e-12);
      check_close(attention(noncontiguous(in[0]), transposed_layout(in[1]), noncontiguous(in[2]), scale), ref,
                  1e-13, 1e-12);
    }
  }
  // Large scores do not overflow the softmax.
  const auto in = make_qkv({1, 1, 3, 4, 2, 2}, 5);
  const auto big = attention(in[0] * 300.0, in[1] * 300.0, in[2], 1.0).to_vector<double>();
  for (double x : big) CHECK(std::isfinite(x));
}

TEST_CASE("attention gradcheck in q, k and v") {
  const std::vector<Dims> dims = {{2, 2, 5, 4, 3, 2}, {1, 1, 3, 3, 2, 2}, {1, 3, 2, 5, 3, 1}};
  for (const auto& m : dims) {
    CAPTURE(m.Tq);
    CAPTURE(m.Tk);
    for (bool strided : {false, true}) {
      CAPTURE(strided);
      auto in = make_qkv(m, 7);
      if (strided) in = {noncontiguous(in[0]), transposed_layout(in[1]), noncontiguous(in[2])};
      for (Tensor& t : in) t.set_requires_grad();
      const double scale = 1.0 / std::sqrt(static_cast<double>(m.d));
      gradcheck([&](const std::vector<Tensor>& x) { return attention(x[0], x[1], x[2], scale); }, in);
    }
  }
  // Only some inputs need gradients.
  auto in = make_qkv({1, 2, 4, 3, 3, 2}, 9);
  Tensor v = in[2].clone().set_requires_grad();
  gradcheck([&](const std::vector<Tensor>& x) { return attention(in[0], in[1], x[0], 0.6); }, {v});
  Tensor k = in[1].clone().set_requires_grad();
  gradcheck([&](const std::vector<Tensor>& x) { return attention(in[0], x[0], in[2], 0.6); }, {k});
}

TEST_CASE("attention in f32 and bf16 follows f64") {
  const Dims m{2, 2, 17, 13, 8, 8};
  const auto in = make_qkv(m, 11);
  auto fn = [](const std::vector<Tensor>& x) { return attention(x[0], x[1], x[2], 1.0 / std::sqrt(8.0)); };
  const Tensor ref = fn(in);
  const auto gref = grads_of(fn, in, 12);
  for (DType dt : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dt));
    const double tol = dt == DType::f32 ? 1e-5 : 2e-2;
    const std::vector<Tensor> x = {in[0].to(dt), in[1].to(dt), in[2].to(dt)};
    const Tensor y = fn(x);
    CHECK(y.dtype() == dt);
    CHECK(rel_l2(y, ref) < tol);
    const auto g = grads_of(fn, x, 12);
    for (size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(g[i].dtype() == dt);
      CHECK(rel_l2(g[i], gref[i]) < tol);
    }
  }
  // Mixed dtypes compute in the wider one.
  CHECK(attention(in[0].to(DType::bf16), in[1].to(DType::f32), in[2].to(DType::f32), 0.5).dtype() ==
        DType::f32);
}

TEST_CASE("attention forward and backward are identical with 1 and 2 threads") {
  // 2056 softmax rows: enough to split the softmax and its backward between two threads.
  const auto in = make_qkv({2, 4, 257, 29, 16, 8}, 13, DType::f32);
  auto run = [&] {
    auto fn = [](const std::vector<Tensor>& x) { return attention(x[0], x[1], x[2], 0.25); };
    std::vector<std::vector<float>> out{fn(in).to_vector<float>()};
    for (const Tensor& g : grads_of(fn, in, 14)) out.push_back(g.to_vector<float>());
    return out;
  };
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  const auto a = run();
  set_num_threads(2);
  const auto b = run();
  CHECK(a == b);
}

TEST_CASE("attention misuse raises errors naming the op and shapes") {
  const Tensor q = randn({2, 3, 5, 4}, 1), k = randn({2, 3, 6, 4}, 2), v = randn({2, 3, 6, 2}, 3);
  check_throws_with(
      [&] {
        (void)attention(q, randn({2, 3, 6, 3}, 4), v, 1.0);
      },
      {"attention", "head dims", "[2, 3, 5, 4]", "[2, 3, 6, 3]"});
  check_throws_with(
      [&] {
        (void)attention(q, k, randn({2, 3, 7, 2}, 5), 1.0);
      },
      {"attention", "keys", "[2, 3, 6, 4]", "[2, 3, 7, 2]"});
  check_throws_with(
      [&] {
        (void)attention(q, randn({2, 2, 6, 4}, 6), v, 1.0);
      },
      {"attention", "[2, 2, 6, 4]"});
  check_throws_with([&] { (void)attention(randn({3, 5, 4}, 7), k, v, 1.0); }, {"attention", "[3, 5, 4]"});
  check_throws_with([&] { (void)attention(q, k, v, NAN); }, {"attention", "scale"});
  check_throws_with(
      [&] {
        (void)attention(q, k, Tensor::zeros({2, 3, 6, 2}, DType::i64), 1.0);
      },
      {"attention", "i64"});
}
