// cuBLASLt batched GEMM against the CPU (kernel level, poisoned outputs, TF32), alpha/beta and the plan
// cache. matmul/linear forward and backward (batch broadcasting, transposed operands, bf16 autocast) are in
// the op table (test_gpu_op_table.cpp).
#include "framework/cpu/matmul.h"
#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/allocator.h"
#include "framework/cuda/context.h"
#include "framework/cuda/matmul.h"
#endif

using namespace iris;
using namespace iris::gputest;

namespace {

enum class Layout { contiguous, transposed, strided, broadcast, misaligned };
[[maybe_unused]] const char* layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous:
      return "contiguous";
    case Layout::transposed:
      return "transposed";
    case Layout::strided:
      return "strided (copied)";
    case Layout::broadcast:
      return "batch-broadcast";
    case Layout::misaligned:
      return "misaligned";
  }
  return "?";
}

// The same [B, R, C] values in the requested layout on `dev`.
[[maybe_unused]] Tensor arrange(const Tensor& t, Layout l, Device dev) {
  const int64_t B = t.size(0), R = t.size(1), C = t.size(2);
  switch (l) {
    case Layout::contiguous:
      return t.to(dev);
    case Layout::transposed:
      return t.transpose(1, 2).contiguous().to(dev).transpose(1, 2);
    case Layout::strided:
      return test::noncontiguous(t.to(dev));  // unit stride along neither axis
    case Layout::broadcast:
      return t.slice(0, 0, 1).to(dev).expand({B, R, C});  // batch stride 0
    case Layout::misaligned:
      return misaligned(t, dev);
  }
  return t;
}

}  // namespace

TEST_CASE("gpu bmm matches the CPU for every dtype and layout on odd sizes") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  struct Size {
    int64_t B, M, K, N;
  };
  const Size sizes[] = {{1, 1, 1, 1}, {1, 7, 13, 5}, {3, 129, 65, 257}, {2, 64, 128, 96}, {5, 1, 300, 1}};
  const Layout layouts[] = {Layout::contiguous, Layout::transposed, Layout::strided, Layout::broadcast,
                            Layout::misaligned};
  // TF32 is turned on and off below; the guard restores the previous setting at the end.
  NumericsGuard numerics(/*tf32=*/false);
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Size& s : sizes) {
      for (Layout la : layouts) {
        for (Layout lb : layouts) {
          // All pairs on the middle size; the others with matching layouts only (keeps the suite fast).
          if (!(s.M == 129 || la == lb)) continue;
          const Tensor a = test::randn({s.B, s.M, s.K}, 201, dt), b = test::randn({s.B, s.K, s.N}, 202, dt);
          const Tensor ah = arrange(a, la, Device::cpu()), bh = arrange(b, lb, Device::cpu());
          const std::string what = std::string("bmm ") + dtype_name(dt) + " [" + std::to_string(s.B) + ", " +
                                   std::to_string(s.M) + ", " + std::to_string(s.K) + "] @ [" +
                                   std::to_string(s.B) + ", " + std::to_string(s.K) + ", " +
                                   std::to_string(s.N) + "] a " + layout_name(la) + ", b " + layout_name(lb);
          Tensor ref = Tensor::empty({s.B, s.M, s.N}, dt);
          cpu::bmm(ah, bh, ref);
          set_tf32_enabled(false);
          Tensor out = poisoned({s.B, s.M, s.N}, dt);
          cuda::bmm(arrange(a, la, gpu()), arrange(b, lb, gpu()), out);
          expect_match(out, ref, tol_for(dt), what);
          if (dt == DType::f32) {
            // Strict f32 must be far more accurate than TF32 against an f64 reference (catches TF32 sneaking
            // in).
            Tensor ref64 = Tensor::empty({s.B, s.M, s.N}, DType::f64);
            cpu::bmm(ah.to(DType::f64), bh.to(DType::f64), ref64);
            expect_match(out, ref64, 1e-5, what + " strict f32 vs f64 reference");
            set_tf32_enabled(true);
            Tensor out32 = poisoned({s.B, s.M, s.N}, dt);
            cuda::bmm(arrange(a, la, gpu()), arrange(b, lb, gpu()), out32);
            expect_match(out32, ref64, 5e-3, what + " TF32 vs f64 reference");
            set_tf32_enabled(false);
          }
        }
      }
    }
  }
#endif
}

TEST_CASE("gpu bmm applies alpha and beta and handles K = 0 and caches its plans") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    const Tensor a = test::randn({2, 33, 17}, 211, dt), b = test::randn({2, 17, 9}, 212, dt);
    const Tensor c0 = test::randn({2, 33, 9}, 213, dt);
    Tensor ref = c0.clone();
    cpu::bmm(a, b, ref, 0.5, 0.25);
    Tensor out = c0.to(gpu());
    cuda::bmm(a.to(gpu()), b.to(gpu()), out, 0.5, 0.25);
    expect_match(out, ref, tol_for(dt), std::string("bmm alpha 0.5 beta 0.25 ") + dtype_name(dt));
    // Operands and output all starting mid-buffer (2-, 4- or 8-byte aligned), with beta reading the output.
    Tensor outm = misaligned(c0);
    cuda::bmm(misaligned(a), misaligned(b), outm, 0.5, 0.25);
    expect_match(outm, ref, tol_for(dt), std::string("bmm misaligned operands and output ") + dtype_name(dt));
    // K = 0: out = beta * out.
    Tensor e = c0.to(gpu());
    cuda::bmm(Tensor::empty({2, 33, 0}, dt, gpu()), Tensor::empty({2, 0, 9}, dt, gpu()), e, 1.0, 0.5);
    expect_match(e, mul(c0, 0.5), tol_for(dt), std::string("bmm K = 0 beta 0.5 ") + dtype_name(dt));
    Tensor z = poisoned({2, 33, 9}, dt);
    cuda::bmm(Tensor::empty({2, 33, 0}, dt, gpu()), Tensor::empty({2, 0, 9}, dt, gpu()), z, 1.0, 0.0);
    expect_equal(z, Tensor::zeros({2, 33, 9}, dt), std::string("bmm K = 0 beta 0 ") + dtype_name(dt));
  }
  // Transposed and batch-broadcast operands are read in place: no temporary is allocated.
  {
    (void)cuda::context(0).cublaslt_workspace();  // allocated once per process, on first use
    const Tensor at = test::randn({3, 40, 24}, 216, DType::f32).to(gpu()).transpose(1, 2);  // [3, 24, 40]
    const Tensor bb = test::randn({1, 40, 16}, 217, DType::f32).to(gpu()).expand({3, 40, 16});
    Tensor o = poisoned({3, 24, 16}, DType::f32);
    const uint64_t allocs = cuda::memory_stats(0).alloc_count;
    cuda::bmm(at, bb, o);
    CHECK_MESSAGE(cuda::memory_stats(0).alloc_count == allocs,
                  "bmm of a transposed and a broadcast operand allocated ",
                  cuda::memory_stats(0).alloc_count - allocs, " temporaries");
    Tensor ref = Tensor::empty({3, 24, 16}, DType::f32);
    cpu::bmm(at.cpu(), bb.cpu(), ref);
    expect_match(o, ref, 1e-5, "bmm transposed a, broadcast b, in place");
  }
  // The same problem twice adds one plan; a new shape adds another.
  const Tensor a = test::randn({1, 31, 29}, 214, DType::f32).to(gpu()),
               b = test::randn({1, 29, 27}, 215, DType::f32).to(gpu());
  Tensor o = Tensor::empty({1, 31, 27}, DType::f32, gpu());
  cuda::bmm(a, b, o);
  const size_t n1 = cuda::matmul_plan_count(0);
  cuda::bmm(a, b, o);
  CHECK(cuda::matmul_plan_count(0) == n1);
  Tensor o2 = Tensor::empty({1, 31, 26}, DType::f32, gpu());
  cuda::bmm(a, b.slice(2, 0, 26), o2);
  CHECK(cuda::matmul_plan_count(0) == n1 + 1);
#endif
}
