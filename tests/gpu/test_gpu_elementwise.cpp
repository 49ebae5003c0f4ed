// CUDA elementwise kernels (unary, binary, compare, where, copy, fill) against their CPU twins, and
// host-device copies. The elementwise ops' forward and backward are in the op table (test_gpu_op_table.cpp).
#include "framework/cpu/elementwise.h"
#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/elementwise.h"
#endif

using namespace iris;
using namespace iris::gputest;

namespace {

struct UnaryCase {
  UnaryOp op;
  const char* name;
  bool positive;  // needs inputs > 0
  double a, b;
};
const UnaryCase kUnary[] = {
    {UnaryOp::neg, "neg", false, 0, 0},
    {UnaryOp::abs, "abs", false, 0, 0},
    {UnaryOp::exp, "exp", false, 0, 0},
    {UnaryOp::log, "log", true, 0, 0},
    {UnaryOp::sqrt, "sqrt", true, 0, 0},
    {UnaryOp::rsqrt, "rsqrt", true, 0, 0},
    {UnaryOp::sin, "sin", false, 0, 0},
    {UnaryOp::cos, "cos", false, 0, 0},
    {UnaryOp::sigmoid, "sigmoid", false, 0, 0},
    {UnaryOp::tanh, "tanh", false, 0, 0},
    {UnaryOp::silu, "silu", false, 0, 0},
    {UnaryOp::gelu, "gelu", false, 0, 0},
    {UnaryOp::relu, "relu", false, 0, 0},
    {UnaryOp::square, "square", false, 0, 0},
    {UnaryOp::sign, "sign", false, 0, 0},
    {UnaryOp::add_scalar, "add_scalar", false, 0.75, 0},
    {UnaryOp::mul_scalar, "mul_scalar", false, -1.5, 0},
    {UnaryOp::rsub_scalar, "rsub_scalar", false, 2.0, 0},
    {UnaryOp::rdiv_scalar, "rdiv_scalar", true, 3.0, 0},
    {UnaryOp::pow_scalar, "pow_scalar 2.5", true, 2.5, 0},
    {UnaryOp::pow_scalar, "pow_scalar 2", false, 2.0, 0},
    {UnaryOp::clamp, "clamp", false, -0.5, 0.7},
};

struct BinaryCase {
  BinaryOp op;
  const char* name;
  bool x_positive, y_positive;
  double a, b;
};
const BinaryCase kBinary[] = {
    {BinaryOp::add, "add", false, false, 0, 0},
    {BinaryOp::sub, "sub", false, false, 0, 0},
    {BinaryOp::mul, "mul", false, false, 0, 0},
    {BinaryOp::div, "div", false, true, 0, 0},
    {BinaryOp::pow, "pow", true, false, 0, 0},
    {BinaryOp::maximum, "maximum", false, false, 0, 0},
    {BinaryOp::minimum, "minimum", false, false, 0, 0},
    {BinaryOp::silu_bwd, "silu_bwd", false, false, 0, 0},
    {BinaryOp::gelu_bwd, "gelu_bwd", false, false, 0, 0},
    {BinaryOp::sigmoid_bwd, "sigmoid_bwd", false, false, 0, 0},
    {BinaryOp::tanh_bwd, "tanh_bwd", false, false, 0, 0},
    {BinaryOp::relu_bwd, "relu_bwd", false, false, 0, 0},
    {BinaryOp::abs_bwd, "abs_bwd", false, false, 0, 0},
    {BinaryOp::clamp_bwd, "clamp_bwd", false, false, -0.5, 0.7},
};

const DType kFloating[] = {DType::f32, DType::bf16, DType::f64};
const DType kAll[] = {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64, DType::u8};

[[maybe_unused]] Tensor input(const Shape& shape, uint64_t seed, bool positive, DType dt) {
  return positive ? test::uniform(shape, seed, 0.5, 2.0, dt) : test::randn(shape, seed, dt, 2.0);
}

// Rounded values in [lo, hi] (exact in every dtype), so that comparisons see ties.
[[maybe_unused]] Tensor small_ints(const Shape& shape, uint64_t seed, double lo, double hi, DType dt) {
  std::vector<double> v = test::uniform(shape, seed, lo, hi, DType::f64).to_vector<double>();
  for (double& x : v) x = std::round(x);
  return Tensor::from_vector(v, shape, dt, Device::cpu());
}

}  // namespace

TEST_CASE("gpu unary kernels match the CPU on odd sizes and views in every floating dtype") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : kFloating) {
    const std::vector<Shape> shapes = dt == DType::f64 ? std::vector<Shape>{{1}, {7}, {33, 129}}
                                                       : std::vector<Shape>{{1}, {7}, {1000003}, {33, 129}};
    for (const Shape& shape : shapes) {
      for (const UnaryCase& c : kUnary) {
        const Tensor x = input(shape, 11, c.positive, dt);
        Tensor ref = Tensor::empty(shape, dt);
        cpu::unary(c.op, x, ref, c.a, c.b);
        const std::string what =
            std::string("unary ") + c.name + " " + dtype_name(dt) + " " + shape_str(shape);
        // Contiguous and aligned (16-byte vector path).
        Tensor out = poisoned(shape, dt);
        cuda::unary(c.op, x.to(gpu()), out, c.a, c.b);
        expect_match(out, ref, tol_for(dt), what + " contiguous");
        // Input a strided view (general path).
        Tensor out2 = poisoned(shape, dt);
        cuda::unary(c.op, test::noncontiguous(x.to(gpu())), out2, c.a, c.b);
        expect_match(out2, ref, tol_for(dt), what + " strided input");
        // Input and output contiguous but not 16-byte aligned.
        Tensor out3 = misaligned(poisoned(shape, dt));
        cuda::unary(c.op, misaligned(x), out3, c.a, c.b);
        expect_match(out3, ref, tol_for(dt), what + " unaligned");
      }
    }
  }
#endif
}

TEST_CASE("gpu binary kernels match the CPU with broadcasting and views in every floating dtype") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  struct Shapes {
    Shape x, y;
    const char* name;
  };
  const std::vector<Shapes> cases = {
      {{1}, {1}, "one element"},
      {{7}, {7}, "same shape 7"},
      {{1000003}, {1000003}, "same shape 1000003"},
      {{2, 5, 7, 33}, {33}, "NHWC + [C]"},
      {{4, 1, 5}, {1, 3, 1}, "[4,1,5] with [1,3,1]"},
      {{1000003}, {}, "tensor with 0-d"},
      {{}, {4099}, "0-d with tensor"},
      {{3, 1, 1}, {3, 6, 10}, "[3,1,1] with [3,6,10]"},
  };
  for (DType dt : kFloating) {
    for (const Shapes& s : cases) {
      if (dt == DType::f64 && shape_numel(s.x) > 100000) continue;
      for (const BinaryCase& c : kBinary) {
        const Tensor x = input(s.x, 21, c.x_positive, dt), y = input(s.y, 22, c.y_positive, dt);
        const Shape shape = broadcast_shapes(s.x, s.y, "test");
        Tensor ref = Tensor::empty(shape, dt);
        cpu::binary(c.op, x, y, ref, c.a, c.b);
        const std::string what = std::string("binary ") + c.name + " " + dtype_name(dt) + " " + s.name;
        Tensor out = poisoned(shape, dt);
        cuda::binary(c.op, x.to(gpu()), y.to(gpu()), out, c.a, c.b);
        expect_match(out, ref, tol_for(dt), what);
        Tensor out2 = poisoned(shape, dt);
        cuda::binary(c.op, test::noncontiguous(x.to(gpu())), y.to(gpu()), out2, c.a, c.b);
        expect_match(out2, ref, tol_for(dt), what + " strided x");
        Tensor out3 = misaligned(poisoned(shape, dt));
        cuda::binary(c.op, x.to(gpu()), misaligned(y), out3, c.a, c.b);
        expect_match(out3, ref, tol_for(dt), what + " unaligned y and out");
      }
    }
  }
  // A transposed operand: x is the [33, 7] transpose of a [7, 33] buffer.
  for (DType dt : kFloating) {
    const Tensor xb = test::randn({7, 33}, 31, dt), y = test::randn({33, 7}, 32, dt);
    Tensor ref = Tensor::empty({33, 7}, dt);
    cpu::binary(BinaryOp::mul, xb.transpose(0, 1), y, ref, 0, 0);
    Tensor out = poisoned({33, 7}, dt);
    cuda::binary(BinaryOp::mul, xb.to(gpu()).transpose(0, 1), y.to(gpu()), out, 0, 0);
    expect_match(out, ref, tol_for(dt), std::string("binary mul transposed x ") + dtype_name(dt));
  }
#endif
}

TEST_CASE("gpu compare kernels match the CPU exactly for every dtype") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  const CompareOp ops[] = {CompareOp::eq, CompareOp::ne, CompareOp::lt,
                           CompareOp::le, CompareOp::gt, CompareOp::ge};
  const char* names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  for (DType dt : kAll) {
    const double lo = dt == DType::u8 ? 0 : -3;
    const Tensor x = small_ints({5, 1, 7}, 41, lo, lo + 5, dt), y = small_ints({3, 1}, 42, lo, lo + 5, dt);
    const Tensor xl = small_ints({1000003}, 43, lo, lo + 5, dt),
                 yl = small_ints({1000003}, 44, lo, lo + 5, dt);
    for (int k = 0; k < 6; ++k) {
      const std::string what = std::string("compare ") + names[k] + " " + dtype_name(dt);
      Tensor ref = Tensor::empty({5, 3, 7}, DType::u8);
      cpu::compare(ops[k], x, y, ref);
      Tensor out = poisoned({5, 3, 7}, DType::u8);
      cuda::compare(ops[k], x.to(gpu()), y.to(gpu()), out);
      expect_equal(out, ref, what + " broadcast");
      Tensor refl = Tensor::empty({1000003}, DType::u8);
      cpu::compare(ops[k], xl, yl, refl);
      Tensor outl = poisoned({1000003}, DType::u8);
      cuda::compare(ops[k], xl.to(gpu()), test::noncontiguous(yl.to(gpu())), outl);
      expect_equal(outl, refl, what + " 1000003 strided y");
    }
  }
#endif
}

TEST_CASE("gpu where matches the CPU exactly with a broadcast condition and operands") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : kAll) {
    const Tensor cond = small_ints({5, 1, 7}, 51, 0, 1, DType::u8);
    const Tensor x = small_ints({3, 7}, 52, 0, 100, dt), y = small_ints({}, 53, 0, 100, dt);
    Tensor ref = Tensor::empty({5, 3, 7}, dt);
    cpu::where(cond, x, y, ref);
    Tensor out = poisoned({5, 3, 7}, dt);
    cuda::where(cond.to(gpu()), x.to(gpu()), y.to(gpu()), out);
    expect_equal(out, ref, std::string("where ") + dtype_name(dt));
    const Tensor cl = small_ints({1000003}, 54, 0, 1, DType::u8);
    const Tensor xl = small_ints({1000003}, 55, 0, 100, dt), yl = small_ints({1000003}, 56, 0, 100, dt);
    Tensor refl = Tensor::empty({1000003}, dt);
    cpu::where(cl, xl, yl, refl);
    Tensor outl = poisoned({1000003}, dt);
    cuda::where(test::noncontiguous(cl.to(gpu())), xl.to(gpu()), yl.to(gpu()), outl);
    expect_equal(outl, refl, std::string("where 1000003 strided cond ") + dtype_name(dt));
  }
#endif
}

TEST_CASE("gpu copy converts every dtype pair exactly into contiguous and strided and broadcast layouts") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType sd : kAll) {
    for (DType dd : kAll) {
      const std::string what = std::string("copy ") + dtype_name(sd) + " -> " + dtype_name(dd);
      // Non-integral values in [0, 200): every dtype holds them (after its own rounding or truncation).
      const Tensor src = test::uniform({37, 41}, 61, 0.0, 200.0, sd);
      const Tensor srcg = src.to(gpu());
      {  // contiguous -> contiguous
        Tensor ref = Tensor::empty({37, 41}, dd);
        cpu::copy(src, ref);
        Tensor out = poisoned({37, 41}, dd);
        cuda::copy(srcg, out);
        expect_equal(out, ref, what + " contiguous");
      }
      {  // transposed source -> contiguous
        Tensor ref = Tensor::empty({41, 37}, dd);
        cpu::copy(src.transpose(0, 1), ref);
        Tensor out = poisoned({41, 37}, dd);
        cuda::copy(srcg.transpose(0, 1), out);
        expect_equal(out, ref, what + " transposed source");
      }
      {  // contiguous -> every third column of a poisoned buffer: the rest must stay poisoned
        Tensor refbuf = poisoned({37, 123}, dd, Device::cpu());
        Tensor refview = refbuf.slice(1, 0, 123, 3);
        cpu::copy(src, refview);
        Tensor buf = poisoned({37, 123}, dd);
        Tensor view = buf.slice(1, 0, 123, 3);
        cuda::copy(srcg, view);
        expect_equal(buf, refbuf, what + " strided destination (whole buffer)");
      }
      {  // broadcast source [1, 41] -> [37, 41]
        Tensor ref = Tensor::empty({37, 41}, dd);
        cpu::copy(src.slice(0, 0, 1), ref);
        Tensor out = poisoned({37, 41}, dd);
        cuda::copy(srcg.slice(0, 0, 1), out);
        expect_equal(out, ref, what + " broadcast source");
      }
    }
  }
  // Large copies: the same-dtype memcpy path, a converting copy, and unaligned views.
  const Tensor big = test::randn({1000003}, 62, DType::f32);
  Tensor o1 = poisoned({1000003}, DType::f32);
  cuda::copy(big.to(gpu()), o1);
  expect_equal(o1, big, "copy f32 1000003 (memcpy)");
  Tensor o2 = poisoned({1000003}, DType::bf16);
  cuda::copy(misaligned(big), o2);
  expect_equal(o2, big.to(DType::bf16), "copy f32 -> bf16 1000003 unaligned source");
#endif
}

TEST_CASE("gpu fill writes exactly the elements of contiguous and strided views") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : kAll) {
    const double value = is_floating(dt) ? 2.625 : 7.0;
    Tensor a = poisoned({1000003}, dt);
    cuda::fill(a, value);
    expect_equal(a, Tensor::full({1000003}, value, dt), std::string("fill contiguous ") + dtype_name(dt));
    Tensor buf = poisoned({9, 10}, dt), refbuf = poisoned({9, 10}, dt, Device::cpu());
    Tensor view = buf.slice(1, 1, 10, 3), refview = refbuf.slice(1, 1, 10, 3);
    cuda::fill(view, value);
    cpu::fill(refview, value);
    expect_equal(buf, refbuf, std::string("fill strided view ") + dtype_name(dt));
  }
#endif
}

TEST_CASE("gpu copies between host and device round-trip exactly") {
  IRIS_GPU_TEST_BEGIN();
  for (DType dt : kAll) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{1000003}}) {
      const std::string what = std::string("round trip ") + dtype_name(dt) + " n=" + std::to_string(n);
      const Tensor h = test::uniform({n}, 71, 0.0, 100.0, dt);
      const Tensor d = h.to(gpu());
      CHECK(d.device() == gpu());
      expect_equal(d.cpu(), h, what);
      expect_equal(d.clone().cpu(), h, what + " via device clone");
    }
    // Strided host source, strided device destination, strided device source.
    const Tensor h = test::uniform({13, 17}, 72, 0.0, 100.0, dt);
    expect_equal(h.transpose(0, 1).to(gpu()).cpu(), h.transpose(0, 1),
                 std::string("strided host source ") + dtype_name(dt));
    Tensor dbuf = poisoned({13, 34}, dt);
    Tensor dview = dbuf.slice(1, 0, 34, 2);
    {
      NoGradGuard ng;
      dview.copy_(h);
    }
    expect_equal(dview.cpu(), h, std::string("strided device destination ") + dtype_name(dt));
    expect_equal(dbuf.to(gpu()).transpose(0, 1).cpu(), dbuf.cpu().transpose(0, 1),
                 std::string("strided device source ") + dtype_name(dt));
  }
  if (cuda_device_count() >= 2) {
    const Tensor h = test::randn({1000003}, 73, DType::f32);
    expect_equal(h.to(Device::cuda(0)).to(Device::cuda(1)).cpu(), h, "cuda:0 -> cuda:1");
  }
}
