// CUDA lookups (embedding, gather_last, index checks, cross_entropy) and 2x resampling (nearest upsampling,
// average pooling) against the CPU: kernel level on poisoned outputs (the arithmetic is the CPU's, so the
// results must be identical). The ops' forward/backward through autograd are in the op table
// (test_gpu_op_table.cpp).
#include "framework/cpu/embedding.h"
#include "framework/cpu/resample.h"
#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/embedding.h"
#include "framework/cuda/resample.h"
#endif

using namespace iris;
using namespace iris::gputest;

namespace {

// n indices in [0, V) with repeats (and some rows never used), as i32 or i64.
[[maybe_unused]] Tensor make_indices(int64_t n, int64_t V, DType dt, uint64_t seed) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>((i * 7 + seed * 3 + (i * i) % 5) % V);
  return Tensor::from_vector(v, {n}, dt, Device::cpu());
}

}  // namespace

TEST_CASE("gpu embedding and gather kernels equal the CPU exactly") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (DType it : {DType::i32, DType::i64}) {
      for (int64_t D : {1, 7, 16, 129}) {  // odd rows (word copies) and 16-byte rows (vector copies)
        const int64_t V = 11, n = 300;     // n > 256: the backward stages the indices in several tiles
        const std::string what = std::string("embedding ") + dtype_name(dt) + " indices " + dtype_name(it) +
                                 " V " + std::to_string(V) + " D " + std::to_string(D);
        const Tensor w = test::randn({V, D}, 501, dt), idx = make_indices(n, V, it, 502);
        Tensor ref = Tensor::empty({n, D}, dt);
        cpu::embedding_forward(w, idx, ref);
        Tensor out = poisoned({n, D}, dt);
        cuda::embedding_forward(w.to(gpu()), idx.to(gpu()), out);
        expect_equal(out, ref, what + " forward");
        const Tensor g = test::randn({n, D}, 503, dt);
        Tensor dref = Tensor::empty({V, D}, dt);
        cpu::embedding_backward(g, idx, dref);
        Tensor dw = poisoned({V, D}, dt);
        cuda::embedding_backward(g.to(gpu()), idx.to(gpu()), dw);
        expect_equal(dw, dref, what + " backward (rows summed in index order in f64)");
      }
      // gather_last and its backward on [R, C] rows.
      const int64_t R = 37, C = 13;
      const std::string what = std::string("gather_last ") + dtype_name(dt) + " indices " + dtype_name(it);
      const Tensor x = test::randn({R, C}, 504, dt), idx = make_indices(R, C, it, 505);
      Tensor ref = Tensor::empty({R}, dt);
      cpu::gather_last(x, idx, ref);
      Tensor out = poisoned({R}, dt);
      cuda::gather_last(x.to(gpu()), idx.to(gpu()), out);
      expect_equal(out, ref, what + " forward");
      const Tensor g = test::randn({R}, 506, dt);
      Tensor dref = Tensor::empty({R, C}, dt);
      cpu::gather_last_backward(g, idx, dref);
      Tensor dx = poisoned({R, C}, dt);
      cuda::gather_last_backward(g.to(gpu()), idx.to(gpu()), dx);
      expect_equal(dx, dref, what + " backward");
    }
  }
  // Embedding rows copied from a misaligned weight into a misaligned output (word copies).
  const Tensor w = test::randn({5, 8}, 507, DType::f32), idx = make_indices(9, 5, DType::i64, 508);
  Tensor ref = Tensor::empty({9, 8});
  cpu::embedding_forward(w, idx, ref);
  Tensor out = misaligned(Tensor::full({9, 8}, std::nan("")));
  cuda::embedding_forward(misaligned(w), idx.to(gpu()), out);
  expect_equal(out, ref, "embedding forward, misaligned weight and output");
#endif
}

TEST_CASE("gpu index checks name the bad index and its position") {
  IRIS_GPU_TEST_BEGIN();
  const Tensor w = test::randn({10, 4}, 511, DType::f32).to(gpu());
  const Tensor bad = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 10, 4}, {5}, DType::i64, gpu());
  test::check_throws_with([&] { (void)embedding(w, bad); },
                          {"embedding", "index 10", "flat position 3", "[0, 10)"});
  const Tensor neg = Tensor::from_vector(std::vector<int32_t>{0, -1}, {2}, DType::i32, gpu());
  test::check_throws_with([&] { (void)embedding(w, neg); }, {"embedding", "index -1", "flat position 1"});
  const Tensor logits = test::randn({3, 4}, 512, DType::f32).to(gpu());
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 4, 1}, {3}, DType::i64, gpu());
  test::check_throws_with([&] { (void)cross_entropy(logits, labels); },
                          {"cross_entropy", "index 4", "classes"});
}

TEST_CASE("gpu 2x resampling kernels equal the CPU exactly") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Shape& small :
         {Shape{2, 5, 7, 3}, Shape{1, 8, 6, 16}, Shape{3, 1, 1, 40}, Shape{2, 4, 3, 13}}) {
      for (bool misalign : {false, true}) {
        if (misalign && small[3] != 16) continue;
        const Shape large = {small[0], 2 * small[1], 2 * small[2], small[3]};
        const std::string what =
            std::string(dtype_name(dt)) + " small " + shape_str(small) + (misalign ? " (misaligned)" : "");
        auto dev = [&](const Tensor& t) { return misalign ? misaligned(t) : t.to(gpu()); };
        auto out_for = [&](const Shape& s) {
          return misalign ? misaligned(Tensor::full(s, std::nan(""), dt)) : poisoned(s, dt);
        };
        const Tensor s = test::randn(small, 531, dt), l = test::randn(large, 532, dt);
        Tensor ref = Tensor::empty(large, dt), out = out_for(large);
        cpu::upsample_nearest2x(s, ref);
        cuda::upsample_nearest2x(dev(s), out);
        expect_equal(out, ref, "upsample_nearest2x " + what);
        Tensor ref2 = Tensor::empty(small, dt), out2 = out_for(small);
        cpu::upsample_nearest2x_backward(l, ref2);
        cuda::upsample_nearest2x_backward(dev(l), out2);
        expect_equal(out2, ref2, "upsample_nearest2x_backward " + what);
        Tensor ref3 = Tensor::empty(small, dt), out3 = out_for(small);
        cpu::avg_pool2x(l, ref3);
        cuda::avg_pool2x(dev(l), out3);
        expect_equal(out3, ref3, "avg_pool2x " + what);
        Tensor ref4 = Tensor::empty(large, dt), out4 = out_for(large);
        cpu::avg_pool2x_backward(s, ref4);
        cuda::avg_pool2x_backward(dev(s), out4);
        expect_equal(out4, ref4, "avg_pool2x_backward " + what);
      }
    }
  }
#endif
}
