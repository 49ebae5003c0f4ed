// A whole-block check on the GPU against the CPU: a small U-Net-like block (conv -> group_norm_silu -> conv
// with a class embedding, a residual, attention over the pixels, down- and upsampling) in f32 and under bf16
// autocast, forward and every gradient. Each op on its own is checked by the op table
// (test_gpu_op_table.cpp).
#include "tests/gpu/gpu_util.h"

using namespace iris;
using namespace iris::gputest;

namespace {

struct BlockParams {
  Tensor w1, b1, g1, be1, w2, b2, emb, g2, be2, wqkv, wo;
};

BlockParams make_params(uint64_t seed) {
  BlockParams p;
  p.w1 = test::randn({32, 3, 3, 16}, seed + 1, DType::f32, 0.1);
  p.b1 = test::randn({32}, seed + 2, DType::f32, 0.1);
  p.g1 = test::uniform({32}, seed + 3, 0.5, 1.5, DType::f32);
  p.be1 = test::randn({32}, seed + 4, DType::f32, 0.1);
  p.w2 = test::randn({32, 3, 3, 32}, seed + 5, DType::f32, 0.06);
  p.b2 = test::randn({32}, seed + 6, DType::f32, 0.1);
  p.emb = test::randn({10, 32}, seed + 7, DType::f32, 0.5);
  p.g2 = test::uniform({32}, seed + 8, 0.5, 1.5, DType::f32);
  p.be2 = test::randn({32}, seed + 9, DType::f32, 0.1);
  p.wqkv = test::randn({96, 32}, seed + 10, DType::f32, 0.15);
  p.wo = test::randn({32, 32}, seed + 11, DType::f32, 0.15);
  return p;
}

std::vector<Tensor*> all(BlockParams& p) {
  return {&p.w1, &p.b1, &p.g1, &p.be1, &p.w2, &p.b2, &p.emb, &p.g2, &p.be2, &p.wqkv, &p.wo};
}
const char* kNames[] = {"w1",        "b1",     "gamma1", "beta1", "w2", "b2",
                        "embedding", "gamma2", "beta2",  "wqkv",  "wo"};

// x: [N, 16, 16, 16] f32, labels: [N]. Returns a scalar loss.
Tensor block(const Tensor& x, const Tensor& labels, const BlockParams& p) {
  const int64_t N = x.size(0);
  Tensor h = conv2d(x, p.w1, p.b1, {1, 1}, {1, 1});  // [N, 16, 16, 32]
  h = group_norm_silu(h, 8, p.g1, p.be1);
  h = add(h.to(DType::f32), embedding(p.emb, labels).view({N, 1, 1, 32}));  // class conditioning
  Tensor h2 = conv2d(h, p.w2, p.b2, {2, 2}, {1, 1});                        // [N, 8, 8, 32]
  h2 = group_norm(h2, 8, p.g2, p.be2);
  h2 = add(h2.to(DType::f32), avg_pool2x(h));  // residual
  // Self-attention over the 64 pixels, 2 heads of 16.
  const Tensor qkv = linear(h2.to(DType::f32).view({N, 64, 32}), p.wqkv);  // [N, 64, 96]
  auto heads = [&](int64_t part) {
    return qkv.slice(2, 32 * part, 32 * (part + 1)).reshape({N, 64, 2, 16}).permute({0, 2, 1, 3});
  };
  const Tensor a = attention(heads(0), heads(1), heads(2), 0.25);  // [N, 2, 64, 16]
  const Tensor o = linear(a.permute({0, 2, 1, 3}).reshape({N, 64, 32}), p.wo).view({N, 8, 8, 32});
  const Tensor up = upsample_nearest2x(add(h2.to(DType::f32), o.to(DType::f32)));  // [N, 16, 16, 32]
  return mean(square(up));
}

}  // namespace

TEST_CASE("gpu U-Net-like block forward and backward match the CPU in f32 and under bf16 autocast") {
  IRIS_GPU_TEST_BEGIN();
  NumericsGuard numerics(/*tf32=*/false);
  const Tensor x = test::randn({3, 16, 16, 16}, 711, DType::f32);
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{3, 9, 3}, {3}, DType::i64, Device::cpu());
  BlockParams pc = make_params(720);
  for (Tensor* t : all(pc)) t->set_requires_grad();
  Tensor xc = x.clone().set_requires_grad();
  const Tensor lc = block(xc, labels, pc);
  lc.backward();
  for (bool autocast : {false, true}) {
    BlockParams pg = make_params(720);
    for (Tensor* t : all(pg)) *t = t->to(gpu()).set_requires_grad();
    Tensor xg = x.to(gpu()).set_requires_grad();
    poison_pool();
    Tensor lg;
    {
      AutocastGuard guard(autocast, DType::bf16);
      lg = block(xg, labels.to(gpu()), pg);
    }
    const std::string what = autocast ? "U-Net block (bf16 autocast)" : "U-Net block f32";
    const double tol = autocast ? 2e-2 : 1e-5;
    expect_match(lg, lc, tol, what + " loss");
    lg.backward();
    REQUIRE(xg.grad().defined());
    expect_match(xg.grad(), xc.grad(), tol, what + " grad x");
    const std::vector<Tensor*> gp = all(pg), cp = all(pc);
    for (size_t i = 0; i < gp.size(); ++i) {
      REQUIRE_MESSAGE(gp[i]->grad().defined(), what, ": no gradient for ", kNames[i]);
      CHECK(gp[i]->grad().dtype() == DType::f32);
      expect_match(gp[i]->grad(), cp[i]->grad(), tol, what + " grad " + kNames[i]);
    }
  }
}
