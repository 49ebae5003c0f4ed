// cuDNN convolution against the CPU kernels (kernel level, poisoned outputs, odd shapes, every dtype, both
// algorithm-search modes, misaligned operands), the plan cache, and TF32. conv2d's forward/backward through
// autograd (f32, bf16, autocast) is in the op table (test_gpu_op_table.cpp).
#include "framework/cpu/conv.h"
#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/conv.h"
#endif

using namespace iris;
using namespace iris::gputest;

namespace {

struct ConvCase {
  Shape x;                       // [N, H, W, Cin]
  int64_t cout, kh, kw, s, pad;  // square stride and padding
};

// The odd shapes of the brief: 3x3 s1 p1, 3x3 s2 p1, 1x1, 5x5 p2, rectangular kernels and images, Cin = 3,
// Cout = 5, N = 1..3, plus a U-Net-sized one.
const ConvCase kCases[] = {
    {{2, 9, 11, 3}, 5, 3, 3, 1, 1},     // 3x3 s1 p1, Cin 3, Cout 5
    {{3, 10, 7, 4}, 6, 3, 3, 2, 1},     // 3x3 s2 p1 (downsampling), odd output
    {{1, 8, 8, 16}, 32, 1, 1, 1, 0},    // 1x1
    {{2, 13, 9, 5}, 5, 5, 5, 1, 2},     // 5x5 p2
    {{2, 7, 12, 3}, 4, 1, 3, 1, 1},     // rectangular 1x3 kernel, rectangular image
    {{1, 6, 5, 8}, 3, 3, 2, 2, 0},      // rectangular 3x2 kernel, stride 2, no padding
    {{2, 16, 16, 64}, 64, 3, 3, 1, 1},  // U-Net block
};

[[maybe_unused]] std::string case_name(const ConvCase& c, DType dt) {
  return std::string("conv ") + dtype_name(dt) + " x " + shape_str(c.x) + " w [" + std::to_string(c.cout) +
         ", " + std::to_string(c.kh) + ", " + std::to_string(c.kw) + ", " + std::to_string(c.x[3]) +
         "] stride " + std::to_string(c.s) + " pad " + std::to_string(c.pad);
}

#ifdef IRIS_WITH_CUDA
// The plans' descriptions, for failure messages (which algorithm produced the numbers).
std::string plans_text() {
  std::string s;
  for (const std::string& d : cuda::conv_plan_descriptions(0)) s += "\n  " + d;
  return s;
}

// Runs the three CUDA kernels for case c in dtype dt on poisoned outputs and compares them with the CPU
// kernels (f32 references for bf16, computed from the same bf16-rounded values).
void check_kernels(const ConvCase& c, DType dt, bool misalign, const std::string& tag) {
  const ConvParams p = make_conv_params(c.x, {c.cout, c.kh, c.kw, c.x[3]}, {c.s, c.s}, {c.pad, c.pad});
  const Tensor x = test::randn(c.x, 301, dt), w = test::randn({c.cout, c.kh, c.kw, c.x[3]}, 302, dt, 0.3);
  const Tensor bias = test::randn({c.cout}, 303, dt), gout = test::randn({p.N, p.Ho, p.Wo, p.Cout}, 304, dt);
  const DType rt = dt == DType::bf16 ? DType::f32 : dt;  // the reference's dtype
  Tensor ref = Tensor::empty({p.N, p.Ho, p.Wo, p.Cout}, rt), dref = Tensor::empty(c.x, rt);
  Tensor wref = Tensor::empty(w.shape(), rt);
  cpu::conv2d_forward(x.to(rt), w.to(rt), bias.to(rt), ref, p);
  cpu::conv2d_backward_data(gout.to(rt), w.to(rt), dref, p);
  cpu::conv2d_backward_weight(gout.to(rt), x.to(rt), wref, p);

  auto on_gpu = [&](const Tensor& t) { return misalign ? misaligned(t) : t.to(gpu()); };
  const std::string what = case_name(c, dt) + tag;
  Tensor out = poisoned(ref.shape(), dt), dx = poisoned(c.x, dt), dw = poisoned(w.shape(), dt);
  if (misalign) {  // outputs that start 1 element into their buffer
    out = misaligned(out.cpu());
    dx = misaligned(dx.cpu());
    dw = misaligned(dw.cpu());
  }
  cuda::conv2d_forward(on_gpu(x), on_gpu(w), on_gpu(bias), out, p);
  cuda::conv2d_backward_data(on_gpu(gout), on_gpu(w), dx, p);
  cuda::conv2d_backward_weight(on_gpu(gout), on_gpu(x), dw, p);
  const double tol = tol_for(dt);
  expect_match(out, ref, tol, what + " forward" + plans_text());
  expect_match(dx, dref, tol, what + " data gradient" + plans_text());
  expect_match(dw, wref, tol, what + " weight gradient" + plans_text());
  // Without bias.
  Tensor out2 = poisoned(ref.shape(), dt);
  cuda::conv2d_forward(on_gpu(x), on_gpu(w), Tensor(), out2, p);
  Tensor ref2 = Tensor::empty(ref.shape(), rt);
  cpu::conv2d_forward(x.to(rt), w.to(rt), Tensor(), ref2, p);
  expect_match(out2, ref2, tol, what + " forward without bias" + plans_text());
}
#endif

}  // namespace

TEST_CASE("gpu conv2d kernels match the CPU on odd shapes in f32 and bf16 and f64") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  NumericsGuard numerics(/*tf32=*/false);
  for (DType dt : {DType::f32, DType::bf16, DType::f64})
    for (const ConvCase& c : kCases) check_kernels(c, dt, false, "");
#endif
}

TEST_CASE("gpu conv2d kernels handle misaligned operands and outputs") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  NumericsGuard numerics(/*tf32=*/false);
  for (DType dt : {DType::f32, DType::bf16}) {
    check_kernels(kCases[0], dt, true, " (misaligned)");
    check_kernels(kCases[2], dt, true, " (misaligned)");
  }
#endif
}

TEST_CASE("gpu conv2d kernels match the CPU with cuDNN's timed algorithm search") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  NumericsGuard numerics(/*tf32=*/false);
  const cuda::ConvAlgoSearch before = cuda::conv_algo_search();
  cuda::set_conv_algo_search(cuda::ConvAlgoSearch::find);
  // Every case: Find's rankings and reported workspaces differ per shape (on an H200 it reported 0 B for an
  // algorithm that needed a workspace on the 3-channel bf16 case), and misaligned operands get their own
  // plans.
  for (DType dt : {DType::f32, DType::bf16}) {
    for (const ConvCase& c : kCases) check_kernels(c, dt, false, " (find)");
    check_kernels(kCases[0], dt, true, " (find, misaligned)");
  }
  cuda::set_conv_algo_search(before);
#endif
}

TEST_CASE("gpu conv2d with an empty image gives the bias and empty gradients give zeros") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  // H = 0 with padding 1 and a 1x1 kernel: Ho = 2, every output is the bias alone.
  const ConvParams p = make_conv_params({2, 0, 3, 4}, {5, 1, 1, 4}, {1, 1}, {1, 1});
  REQUIRE(p.Ho == 2);
  const Tensor x = Tensor::empty({2, 0, 3, 4}, DType::f32, gpu()),
               w = test::randn({5, 1, 1, 4}, 311, DType::f32);
  const Tensor bias = test::randn({5}, 312, DType::f32);
  Tensor out = poisoned({2, p.Ho, p.Wo, 5}, DType::f32);
  cuda::conv2d_forward(x, w.to(gpu()), bias.to(gpu()), out, p);
  const Tensor ref = bias.view({1, 1, 1, 5}).expand({2, p.Ho, p.Wo, 5}).contiguous();
  expect_equal(out, ref, "conv of an empty image (bias only)");
  Tensor dw = poisoned({5, 1, 1, 4}, DType::f32);
  cuda::conv2d_backward_weight(test::randn({2, p.Ho, p.Wo, 5}, 313, DType::f32).to(gpu()), x, dw, p);
  expect_equal(dw, Tensor::zeros({5, 1, 1, 4}), "weight gradient of an empty image");
#endif
}

TEST_CASE("gpu conv2d plans are cached per problem and reused") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  NumericsGuard numerics(/*tf32=*/false);
  const ConvParams p = make_conv_params({2, 12, 10, 6}, {7, 3, 3, 6}, {1, 1}, {1, 1});
  const Tensor x = test::randn({2, 12, 10, 6}, 321, DType::f32).to(gpu());
  const Tensor w = test::randn({7, 3, 3, 6}, 322, DType::f32).to(gpu());
  Tensor out = Tensor::empty({2, 12, 10, 7}, DType::f32, gpu());
  const size_t n0 = cuda::conv_plan_count(0);
  cuda::conv2d_forward(x, w, Tensor(), out, p);
  const size_t n1 = cuda::conv_plan_count(0);
  CHECK_MESSAGE(n1 == n0 + 1, "a new problem must add one plan: ", n0, " -> ", n1);
  Tensor out2 = Tensor::empty({2, 12, 10, 7}, DType::f32, gpu());
  cuda::conv2d_forward(x, w, Tensor(), out2, p);
  CHECK_MESSAGE(cuda::conv_plan_count(0) == n1, "the same problem must reuse its plan: ", n1, " -> ",
                cuda::conv_plan_count(0));
  expect_equal(out2, out, "the same problem twice (same algorithm, deterministic)");
  // Another direction, another dtype, another math mode: each its own plan.
  Tensor dx = Tensor::empty({2, 12, 10, 6}, DType::f32, gpu());
  cuda::conv2d_backward_data(out, w, dx, p);
  CHECK(cuda::conv_plan_count(0) == n1 + 1);
  Tensor outb = Tensor::empty({2, 12, 10, 7}, DType::bf16, gpu());
  cuda::conv2d_forward(x.to(DType::bf16), w.to(DType::bf16), Tensor(), outb, p);
  CHECK(cuda::conv_plan_count(0) == n1 + 2);
  set_tf32_enabled(true);
  cuda::conv2d_forward(x, w, Tensor(), out2, p);
  CHECK(cuda::conv_plan_count(0) == n1 + 3);
  cuda::conv2d_forward(x, w, Tensor(), out2, p);
  CHECK(cuda::conv_plan_count(0) == n1 + 3);
  const std::vector<std::string> desc = cuda::conv_plan_descriptions(0);
  REQUIRE(desc.size() == cuda::conv_plan_count(0));
  bool found = false;
  for (const std::string& d : desc)
    found = found || (d.find("forward f32 x [2, 12, 10, 6]") != std::string::npos &&
                      d.find("math FMA") != std::string::npos);
  CHECK_MESSAGE(found, "no plan description names the strict-f32 forward problem:", plans_text());
  MESSAGE("cuDNN plans so far:" << plans_text());
#endif
}

TEST_CASE("gpu conv2d with TF32 enabled stays close to strict f32") {
  IRIS_GPU_TEST_BEGIN();
  const Tensor x = test::randn({2, 16, 16, 32}, 341, DType::f32).to(gpu());
  const Tensor w = test::randn({48, 3, 3, 32}, 342, DType::f32, 0.1).to(gpu());
  Tensor strict, fast;
  {
    NumericsGuard numerics(/*tf32=*/false);
    strict = conv2d(x, w, Tensor(), {1, 1}, {1, 1});
    set_tf32_enabled(true);
    fast = conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  }
  // TF32 keeps 10 mantissa bits: about 1e-3 relative error, far from bf16's 1e-2 and far above f32's 1e-7.
  expect_match(fast, strict, 5e-3, "conv2d with TF32 vs strict f32");
}
