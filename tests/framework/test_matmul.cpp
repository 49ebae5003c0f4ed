// matmul / linear: float64 reference, gradcheck, batch broadcasting, transposed views, bf16 and f32.
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {
// Plain triple loop over a batch of row-major matrices.
std::vector<double> ref_bmm(const std::vector<double>& a, const std::vector<double>& b, int64_t B, int64_t M,
                            int64_t K, int64_t N, bool b_shared) {
  std::vector<double> c(B * M * N, 0.0);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += a[(i * M + m) * K + k] * b[(b_shared ? 0 : i * K * N) + k * N + n];
        c[(i * M + m) * N + n] = s;
      }
  return c;
}
}  // namespace

TEST_CASE("matmul matches a float64 triple loop") {
  for (auto [B, M, K, N] : std::vector<std::array<int64_t, 4>>{{1, 1, 1, 1}, {3, 5, 7, 2}, {2, 17, 9, 13}}) {
    Tensor a = randn({B, M, K}, 1), b = randn({B, K, N}, 2), b2 = randn({K, N}, 3);
    check_close(matmul(a, b), Tensor::from_vector(ref_bmm(a.to_vector<double>(), b.to_vector<double>(), B, M, K, N,
                                                          false),
                                                  {B, M, N}),
                1e-12, 1e-12);
    check_close(matmul(a, b2), Tensor::from_vector(ref_bmm(a.to_vector<double>(), b2.to_vector<double>(), B, M, K,
                                                           N, true),
                                                   {B, M, N}),
                1e-12, 1e-12);
    // Transposed and strided views give the same result as contiguous copies.
    Tensor at = a.transpose(1, 2).contiguous().transpose(1, 2);
    check_close(matmul(at, noncontiguous(b)), matmul(a, b), 1e-12, 1e-12);
  }
}

TEST_CASE("matmul broadcasts batch axes and has correct gradients") {
  Tensor a = randn({2, 1, 3, 4}, 4).set_requires_grad();
  Tensor b = randn({3, 4, 5}, 5).set_requires_grad();
  CHECK(matmul(a, b).shape() == Shape{2, 3, 3, 5});
  gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b});
  Tensor c = noncontiguous(randn({6, 4}, 6)).set_requires_grad();
  Tensor d = randn({4, 3}, 7).transpose(0, 1).contiguous().transpose(0, 1).set_requires_grad();
  gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {c, d});
}

TEST_CASE("linear: reference, gradients, misuse") {
  Tensor x = randn({2, 3, 4}, 8).set_requires_grad();
  Tensor w = randn({5, 4}, 9).set_requires_grad();
  Tensor bias = randn({5}, 10).set_requires_grad();
  const Tensor y = linear(x, w, bias);
  CHECK(y.shape() == Shape{2, 3, 5});
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = bias.to_vector<double>();
  std::vector<double> ref(30);
  for (int r = 0; r < 6; ++r)
    for (int o = 0; o < 5; ++o) {
      double s = bv[o];
      for (int i = 0; i < 4; ++i) s += xv[r * 4 + i] * wv[o * 4 + i];
      ref[r * 5 + o] = s;
    }
  check_close(y, Tensor::from_vector(ref, {2, 3, 5}), 1e-12, 1e-12);
  gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, bias});
  check_throws_with([&] { (void)linear(randn({2, 3}, 1), w); }, {"linear", "[2, 3]", "[5, 4]"});
  check_throws_with([&] { (void)matmul(randn({2, 3}, 1), randn({4, 2}, 1)); }, {"matmul", "[2, 3]", "[4, 2]"});
}

TEST_CASE("matmul in f32 and bf16 follows f64") {
  Tensor a = randn({4, 33, 65}, 11), b = randn({65, 31}, 12);
  const Tensor ref = matmul(a, b);
  CHECK(rel_l2(matmul(a.to(DType::f32), b.to(DType::f32)), ref) < 1e-6);
  CHECK(rel_l2(matmul(a.to(DType::bf16), b.to(DType::bf16)), ref) < 1e-2);
}

TEST_CASE("matmul with K = 0 and one-element views with odd strides") {
  // K = 0: an empty sum gives zeros.
  const Tensor z = matmul(Tensor::zeros({2, 3, 0}, DType::f64), Tensor::zeros({2, 0, 4}, DType::f64));
  CHECK(z.to_vector<double>() == std::vector<double>(24, 0.0));
  // 1x1 matrices viewed with strides that are not 1 (a strided slice of a single element).
  Tensor a = Tensor::from_vector(std::vector<double>{3, -1}, {1, 1, 2}).slice(2, 0, 2, 2);
  Tensor b = Tensor::from_vector(std::vector<double>{5, -1}, {1, 1, 2}).slice(2, 0, 2, 2);
  CHECK(matmul(a, b).item() == 15.0);
}
