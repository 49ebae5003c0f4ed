// upsample_nearest2x and avg_pool2x: float64 reference loops, gradcheck, non-contiguous inputs, f32 / bf16
// against f64, thread-count independence and misuse.
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

Tensor reference_upsample(const Tensor& x) {
  const Shape& s = x.shape();
  const auto v = x.to_vector<double>();
  const int64_t N = s[0], H = s[1], W = s[2], C = s[3];
  std::vector<double> out(N * 4 * H * W * C);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < 2 * H; ++y)
      for (int64_t xx = 0; xx < 2 * W; ++xx)
        for (int64_t c = 0; c < C; ++c)
          out[((n * 2 * H + y) * 2 * W + xx) * C + c] = v[((n * H + y / 2) * W + xx / 2) * C + c];
  return Tensor::from_vector(out, {N, 2 * H, 2 * W, C});
}

Tensor reference_avg_pool(const Tensor& x) {
  const Shape& s = x.shape();
  const auto v = x.to_vector<double>();
  const int64_t N = s[0], H = s[1], W = s[2], C = s[3];
  std::vector<double> out(N * (H / 2) * (W / 2) * C);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < H / 2; ++y)
      for (int64_t xx = 0; xx < W / 2; ++xx)
        for (int64_t c = 0; c < C; ++c) {
          double s4 = 0;
          for (int64_t dy = 0; dy < 2; ++dy)
            for (int64_t dx = 0; dx < 2; ++dx) s4 += v[((n * H + 2 * y + dy) * W + 2 * xx + dx) * C + c];
          out[((n * (H / 2) + y) * (W / 2) + xx) * C + c] = s4 / 4;
        }
  return Tensor::from_vector(out, {N, H / 2, W / 2, C});
}

}  // namespace

TEST_CASE("upsample_nearest2x: reference and gradcheck, contiguous and strided") {
  for (bool strided : {false, true}) {
    CAPTURE(strided);
    Tensor x = randn({2, 3, 5, 3}, 1);
    if (strided) x = noncontiguous(x);
    const Tensor y = upsample_nearest2x(x);
    CHECK(y.shape() == Shape{2, 6, 10, 3});
    check_close(y, reference_upsample(x), 0, 0);
    x.set_requires_grad();
    gradcheck([](const std::vector<Tensor>& in) { return upsample_nearest2x(in[0]); }, {x});
  }
}

TEST_CASE("avg_pool2x: reference and gradcheck, contiguous and strided") {
  for (bool strided : {false, true}) {
    CAPTURE(strided);
    Tensor x = randn({2, 6, 10, 3}, 2);
    if (strided) x = noncontiguous(x);
    const Tensor y = avg_pool2x(x);
    CHECK(y.shape() == Shape{2, 3, 5, 3});
    check_close(y, reference_avg_pool(x), 1e-15, 1e-15);
    x.set_requires_grad();
    gradcheck([](const std::vector<Tensor>& in) { return avg_pool2x(in[0]); }, {x});
  }
  // An NHWC view of an NCHW buffer.
  const Tensor x = randn({1, 4, 2, 5}, 3);
  check_close(avg_pool2x(x.permute({0, 3, 1, 2}).contiguous().permute({0, 2, 3, 1})), reference_avg_pool(x),
              1e-15, 1e-15);
}

TEST_CASE("resampling in f32 and bf16 follows f64, forward and backward") {
  const Tensor x = randn({2, 8, 6, 5}, 4);
  for (auto [dt, tol] : {std::pair{DType::f32, 1e-6}, std::pair{DType::bf16, 1e-2}}) {
    CAPTURE(dtype_name(dt));
    for (int op = 0; op < 2; ++op) {
      CAPTURE(op);
      auto f = [op](const Tensor& t) { return op == 0 ? upsample_nearest2x(t) : avg_pool2x(t); };
      Tensor x64 = x.detach().set_requires_grad(), xl = x.to(dt).set_requires_grad();
      const Tensor y64 = f(x64), yl = f(xl);
      CHECK(yl.dtype() == dt);
      CHECK(rel_l2(yl, y64) < tol);
      const Tensor probe = randn(y64.shape(), 5);
      sum(mul(y64, probe)).backward();
      sum(mul(yl, probe.to(dt))).backward();
      CHECK(xl.grad().dtype() == dt);
      CHECK(rel_l2(xl.grad(), x64.grad()) < tol);
    }
  }
}

TEST_CASE("resampling results are identical with 1 and 2 threads") {
  const Tensor x = randn({3, 32, 24, 16}, 6, DType::f32);
  auto run = [&] {
    Tensor xl = x.detach().set_requires_grad();
    Tensor y = avg_pool2x(upsample_nearest2x(xl) * 1.5);
    Tensor z = upsample_nearest2x(avg_pool2x(xl));
    sum(mul(y, y)).backward();
    sum(mul(z, z)).backward();
    std::vector<float> all = y.to_vector<float>(), zv = z.to_vector<float>(),
                       g = xl.grad().to_vector<float>();
    all.insert(all.end(), zv.begin(), zv.end());
    all.insert(all.end(), g.begin(), g.end());
    return all;
  };
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  const auto one = run();
  set_num_threads(2);
  const auto two = run();
  CHECK(one == two);
}

TEST_CASE("resampling misuse raises errors naming the op and shape") {
  check_throws_with([] { (void)avg_pool2x(randn({1, 5, 4, 2}, 1)); }, {"avg_pool2x", "even", "[1, 5, 4, 2]"});
  check_throws_with([] { (void)avg_pool2x(randn({1, 4, 3, 2}, 1)); }, {"avg_pool2x", "even", "W = 3"});
  check_throws_with([] { (void)avg_pool2x(randn({4, 4, 2}, 1)); }, {"avg_pool2x", "4-D", "[4, 4, 2]"});
  check_throws_with(
      [] {
        (void)upsample_nearest2x(randn({2, 4}, 1));
      },
      {"upsample_nearest2x", "4-D", "[2, 4]"});
  check_throws_with(
      [] {
        (void)upsample_nearest2x(Tensor::zeros({1, 2, 2, 1}, DType::i64));
      },
      {"upsample_nearest2x", "floating"});
}
