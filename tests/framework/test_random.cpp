// Philox-4x32-10 against the published known-answer vectors (Random123's kat_vectors), and the random ops
// built on it: determinism, thread independence, per-sample streams, statistics, dropout.
#include "framework/core/philox.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

TEST_CASE("Philox-4x32-10 matches the Random123 known-answer vectors") {
  auto check = [](philox::Block b, std::array<uint32_t, 4> want) {
    for (int i = 0; i < 4; ++i) CHECK(b.v[i] == want[i]);
  };
  check(philox::philox4x32_10(0, 0, 0, 0, 0, 0), {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  check(philox::philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu),
        {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  check(philox::philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u),
        {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("a generator state reproduces its numbers, split or whole") {
  Generator g(42);
  const auto whole = randn({10}, g, DType::f64).to_vector<double>();
  CHECK(g.offset() == 3);  // ceil(10 / 4) blocks
  Generator h(42);
  const auto first = randn({4}, h, DType::f64).to_vector<double>();
  const auto second = randn({4}, h, DType::f64).to_vector<double>();
  for (int i = 0; i < 4; ++i) {
    CHECK(first[i] == whole[i]);
    CHECK(second[i] == whole[4 + i]);
  }
  Generator r(42);
  r.set_state(g.state());
  CHECK(randn({3}, r).to_vector<float>() == randn({3}, g).to_vector<float>());
  Generator other_stream(42, 1);
  CHECK(randn({4}, other_stream, DType::f64).to_vector<double>() != first);
}

TEST_CASE("random draws are identical with 1 and 2 threads") {
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  Generator g1(7);
  const auto a = randn({100000}, g1).to_vector<float>();
  set_num_threads(2);
  Generator g2(7);
  const auto b = randn({100000}, g2).to_vector<float>();
  CHECK(a == b);
}

TEST_CASE("per-sample streams make a sample's numbers independent of its batch") {
  Generator batch = Generator::per_sample(9, {100, 101, 102});
  const Tensor all = randn({3, 5}, batch, DType::f64);
  Generator alone = Generator::per_sample(9, {101});
  const Tensor one = randn({1, 5}, alone, DType::f64);
  check_close(all.slice(0, 1, 2), one, 0, 0);
  Generator plain(9, 101);
  check_close(randn({5}, plain, DType::f64), one.reshape({5}), 0, 0);
  check_throws_with([&] { (void)randn({2, 5}, batch); }, {"per-sample", "3 streams"});
}

TEST_CASE("uniform and normal statistics") {
  Generator g(1);
  const auto u = rand({200000}, g, DType::f64).to_vector<double>();
  const auto n = randn({200000}, g, DType::f64, Device::cpu(), 2.0, 3.0).to_vector<double>();
  double su = 0, sn = 0, sn2 = 0, umin = 1, umax = 0;
  for (double x : u) {
    su += x;
    umin = std::min(umin, x);
    umax = std::max(umax, x);
  }
  for (double x : n) {
    sn += x;
    sn2 += x * x;
  }
  const double N = 200000;
  CHECK(su / N == doctest::Approx(0.5).epsilon(0.01));
  CHECK(umin >= 0.0);
  CHECK(umax < 1.0);
  const double mean = sn / N, var = sn2 / N - mean * mean;
  CHECK(mean == doctest::Approx(2.0).epsilon(0.01));
  CHECK(var == doctest::Approx(9.0).epsilon(0.02));
}

TEST_CASE("dropout zeroes a fraction p, rescales the rest, and its gradient uses the same mask") {
  Generator g(3);
  Tensor x = Tensor::ones({10000}, DType::f64).set_requires_grad();
  Tensor y = dropout(x, 0.25, g);
  const auto yv = y.to_vector<double>();
  int zeros = 0;
  for (double v : yv) {
    if (v == 0) ++zeros;
    else CHECK(v == doctest::Approx(1 / 0.75));
  }
  CHECK(zeros / 10000.0 == doctest::Approx(0.25).epsilon(0.05));
  sum(y).backward();
  CHECK(x.grad().to_vector<double>() == yv);
  CHECK(dropout(x, 0.25, g, /*training=*/false).same(x));
  check_throws_with([&] { (void)dropout(x, 1.0, g); }, {"dropout", "[0, 1)"});
}
