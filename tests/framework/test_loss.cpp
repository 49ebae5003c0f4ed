// Losses: float64 loop references, gradchecks of every floating input, strided inputs, f32 computation of
// bf16 inputs, thread-count independence and misuse (shape mismatches, bad labels).
#include <cmath>

#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

TEST_CASE("mse_loss: reference and gradcheck in pred and target") {
  for (bool strided : {false, true}) {
    CAPTURE(strided);
    Tensor p = randn({3, 4, 5}, 1), t = randn({3, 4, 5}, 2);
    if (strided) p = noncontiguous(p);
    const auto pv = p.to_vector<double>(), tv = t.to_vector<double>();
    double ref = 0;
    for (size_t i = 0; i < pv.size(); ++i) ref += (pv[i] - tv[i]) * (pv[i] - tv[i]);
    ref /= static_cast<double>(pv.size());
    const Tensor loss = mse_loss(p, t);
    CHECK(loss.dim() == 0);
    CHECK(loss.item() == doctest::Approx(ref).epsilon(1e-13));
    p.set_requires_grad();
    t.set_requires_grad();
    gradcheck([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); }, {p, t});
  }
}

TEST_CASE("l1_loss: reference and gradcheck, with and without sample weights") {
  for (const Shape& shape : {Shape{4, 3, 2, 3}, Shape{5}, Shape{3, 7}}) {
    CAPTURE(shape_str(shape));
    const int64_t N = shape[0], per = shape_numel(shape) / N;
    Tensor p = noncontiguous(randn(shape, 3)), t = randn(shape, 4);
    Tensor w = uniform({N}, 5, 0.2, 2.0);
    const auto pv = p.to_vector<double>(), tv = t.to_vector<double>(), wv = w.to_vector<double>();
    double plain = 0, weighted = 0;
    for (int64_t n = 0; n < N; ++n) {
      double ln = 0;
      for (int64_t i = n * per; i < (n + 1) * per; ++i) ln += std::abs(pv[i] - tv[i]);
      plain += ln;
      weighted += wv[n] * ln / static_cast<double>(per);
    }
    plain /= static_cast<double>(N * per);
    weighted /= static_cast<double>(N);
    CHECK(l1_loss(p, t).item() == doctest::Approx(plain).epsilon(1e-13));
    CHECK(l1_loss(p, t, w).item() == doctest::Approx(weighted).epsilon(1e-13));
    p.set_requires_grad();
    t.set_requires_grad();
    w.set_requires_grad();
    gradcheck([](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1]); }, {p, t});
    gradcheck([](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], in[2]); }, {p, t, w});
  }
}

TEST_CASE("cross_entropy: reference and gradcheck for i32 and i64 labels") {
  for (DType lt : {DType::i32, DType::i64}) {
    CAPTURE(dtype_name(lt));
    for (bool strided : {false, true}) {
      Tensor x = randn({5, 7}, 6, DType::f64, 3.0);
      if (strided) x = noncontiguous(x);
      const std::vector<int64_t> lv = {0, 6, 3, 3, 1};
      const Tensor labels = Tensor::from_vector(lv, {5}, lt, Device::cpu());
      const auto xv = x.to_vector<double>();
      double ref = 0;
      for (int n = 0; n < 5; ++n) {
        double m = -INFINITY, z = 0;
        for (int c = 0; c < 7; ++c) m = std::max(m, xv[n * 7 + c]);
        for (int c = 0; c < 7; ++c) z += std::exp(xv[n * 7 + c] - m);
        ref += -(xv[n * 7 + lv[n]] - m - std::log(z));
      }
      ref /= 5;
      CHECK(cross_entropy(x, labels).item() == doctest::Approx(ref).epsilon(1e-13));
      x.set_requires_grad();
      gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], labels); }, {x});
    }
  }
  // Huge logits stay finite.
  const Tensor big = Tensor::from_vector(std::vector<float>{1000, -1000, 0, 2000}, {2, 2});
  CHECK(std::isfinite(cross_entropy(big, Tensor::from_vector(std::vector<int64_t>{1, 0}, {2})).item()));
}

TEST_CASE("losses compute bf16 inputs in f32 and follow f64") {
  const Tensor p = randn({4, 6, 6, 3}, 7), t = randn({4, 6, 6, 3}, 8), w = uniform({4}, 9, 0.5, 1.5);
  const Tensor logits = randn({9, 11}, 10);
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 10, 5, 5, 2, 3, 9, 1, 7}, {9});
  const double ref_mse = mse_loss(p, t).item(), ref_l1 = l1_loss(p, t, w).item();
  const double ref_ce = cross_entropy(logits, labels).item();
  for (DType dt : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dt));
    const double tol = dt == DType::f32 ? 1e-6 : 2e-2;
    const Tensor a = mse_loss(p.to(dt), t.to(dt));
    CHECK(a.dtype() == DType::f32);
    CHECK(std::abs(a.item() - ref_mse) <= tol * std::abs(ref_mse));
    CHECK(std::abs(l1_loss(p.to(dt), t.to(dt), w.to(DType::f32)).item() - ref_l1) <= tol * std::abs(ref_l1));
    CHECK(std::abs(cross_entropy(logits.to(dt), labels).item() - ref_ce) <= tol * std::abs(ref_ce));
  }
  // Gradients of bf16 inputs come back in bf16.
  Tensor pb = p.to(DType::bf16).set_requires_grad();
  l1_loss(pb, t.to(DType::bf16)).backward();
  CHECK(pb.grad().dtype() == DType::bf16);
}

TEST_CASE("loss values and gradients are identical with 1 and 2 threads") {
  const Tensor p0 = randn({8, 33, 33, 3}, 11, DType::f32), t = randn({8, 33, 33, 3}, 12, DType::f32);
  const Tensor w = uniform({8}, 13, 0.5, 1.5, DType::f32);
  auto run = [&] {
    Tensor p = p0.clone().set_requires_grad();
    Tensor loss = add(mse_loss(p, t), l1_loss(p, t, w));
    loss.backward();
    std::vector<float> r = p.grad().to_vector<float>();
    r.push_back(static_cast<float>(loss.item()));
    return r;
  };
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  const auto a = run();
  set_num_threads(2);
  const auto b = run();
  CHECK(a == b);
}

TEST_CASE("loss misuse raises errors naming the op and shapes") {
  const Tensor p = randn({2, 3}, 1);
  check_throws_with([&] { (void)mse_loss(p, randn({3, 2}, 2)); }, {"mse_loss", "[2, 3]", "[3, 2]"});
  check_throws_with([&] { (void)l1_loss(p, randn({2, 1}, 2)); }, {"l1_loss", "[2, 3]", "[2, 1]"});
  check_throws_with([&] { (void)l1_loss(p, p, randn({3}, 2)); }, {"l1_loss", "sample_weights", "[2]", "[3]"});
  const Tensor logits = randn({3, 4}, 3);
  check_throws_with(
      [&] {
        (void)cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 4, 1}, {3}));
      },
      {"cross_entropy", "index 4", "C (classes) = 4"});
  check_throws_with(
      [&] {
        (void)cross_entropy(
            logits, Tensor::from_vector(std::vector<int32_t>{0, 1, -2}, {3}, DType::i32, Device::cpu()));
      },
      {"cross_entropy", "index -2"});
  check_throws_with([&] { (void)cross_entropy(logits, Tensor::zeros({2}, DType::i64)); },
                    {"cross_entropy", "[3, 4]", "[2]"});
  check_throws_with([&] { (void)cross_entropy(logits, Tensor::zeros({3}, DType::f32)); },
                    {"cross_entropy", "f32"});
  check_throws_with([&] { (void)cross_entropy(randn({3}, 1), Tensor::zeros({3}, DType::i64)); },
                    {"cross_entropy", "[N, C]"});
}
