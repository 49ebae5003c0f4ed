// The elementwise op enums and functors shared by the CPU and CUDA backends (one definition, compiled for
// both): part of the elementwise kernel contract (framework/kernels/elementwise.h).
//
// Each functor maps compute-type values (float for f32/bf16 storage, double for f64) to one value.
// `a`/`b` are op parameters (a scalar operand, clamp bounds, an exponent).
#pragma once

#include <cmath>

#include "framework/core/dtype.h"

namespace iris {

enum class UnaryOp : uint8_t {
  neg, abs, exp, log, sqrt, rsqrt, sin, cos, sigmoid, tanh, silu, gelu, relu, square, sign,
  add_scalar,   // x + a
  mul_scalar,   // x * a
  rsub_scalar,  // a - x
  rdiv_scalar,  // a / x
  pow_scalar,   // x ^ a
  clamp,        // min(max(x, a), b)
};

enum class BinaryOp : uint8_t {
  add, sub, mul, div, pow, maximum, minimum,
  // Backward helpers: (x or y, g) -> dL/dx, with y the op's output where that is cheaper.
  silu_bwd,     // (x, g) -> g * silu'(x)
  gelu_bwd,     // (x, g) -> g * gelu'(x)
  sigmoid_bwd,  // (y, g) -> g * y * (1 - y)
  tanh_bwd,     // (y, g) -> g * (1 - y^2)
  relu_bwd,     // (x, g) -> x > 0 ? g : 0
  abs_bwd,      // (x, g) -> g * sign(x)
  clamp_bwd,    // (x, g) -> a <= x <= b ? g : 0
};

enum class CompareOp : uint8_t { eq, ne, lt, le, gt, ge };

namespace fn {

// The functors are forced inline on the host as on the device (IRIS_HD is __forceinline__ there): called out
// of line once per element, which GCC chose inside large kernels (GroupNorm+SiLU on one thread), they are
// scalar, and that kernel ran 6x slower.
#if defined(__CUDA_ARCH__)
#define IRIS_FN IRIS_HD
#else
#define IRIS_FN [[gnu::always_inline]] inline
#endif

// Math shims: fast intrinsics on the device, the standard library on the host.
#if defined(__CUDA_ARCH__)
IRIS_HD float exp_(float x) { return __expf(x); }
IRIS_HD float log_(float x) { return __logf(x); }
IRIS_HD float sin_(float x) { return sinf(x); }
IRIS_HD float cos_(float x) { return cosf(x); }
IRIS_HD float tanh_(float x) { return tanhf(x); }
IRIS_HD float erf_(float x) { return erff(x); }
IRIS_HD float sqrt_(float x) { return sqrtf(x); }
IRIS_HD float rsqrt_(float x) { return rsqrtf(x); }
IRIS_HD float pow_(float x, float y) { return powf(x, y); }
#else
// exp for float on the CPU as plain arithmetic (no libm call), so that loops over it vectorise: Cody-Waite
// reduction x = k ln2 + r, |r| <= ln2/2, a degree-7 Taylor polynomial (truncation < 5e-9 relative), and 2^k
// built in the exponent bits. Within 2 ulp of std::exp over the clamped range [-87, 88] (1.71 ulp measured);
// below -87 it returns exp(-87) (~1.6e-38) instead of a denormal, above 88 exp(88). The polynomial by Estrin's
// scheme in fused multiply-adds (x86-64-v3 has FMA) runs 2.3x faster than Horner's in separate multiplies and
// adds: SiLU, which GroupNorm+SiLU applies to every activation, was most of that kernel's time.
IRIS_FN float exp_(float x) {
  x = x < -87.0f ? -87.0f : x;  // two selects (not fmin/fmax, whose NaN rules block vectorisation)
  x = x > 88.0f ? 88.0f : x;
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  float r = __builtin_fmaf(-k, 0.693145751953125f, x);                     // ln2 split in two parts
  r = __builtin_fmaf(-k, 1.428606765330187e-06f, r);
  // p(r) = sum r^i / i!, i <= 7, by Estrin's scheme: independent fused multiply-adds, a short dependency
  // chain (explicit fmaf: the same result whatever the compiler's contraction setting).
  const float r2 = r * r, r4 = r2 * r2;
  const float p01 = __builtin_fmaf(r, 1.0f, 1.0f), p23 = __builtin_fmaf(r, 1.0f / 6.0f, 0.5f);
  const float p45 = __builtin_fmaf(r, 1.0f / 120.0f, 1.0f / 24.0f);
  const float p67 = __builtin_fmaf(r, 1.0f / 5040.0f, 1.0f / 720.0f);
  const float p03 = __builtin_fmaf(r2, p23, p01), p47 = __builtin_fmaf(r2, p67, p45);
  const float p = __builtin_fmaf(r4, p47, p03);
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(k) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}
IRIS_HD float log_(float x) { return std::log(x); }
IRIS_HD float sin_(float x) { return std::sin(x); }
IRIS_HD float cos_(float x) { return std::cos(x); }
IRIS_HD float tanh_(float x) { return std::tanh(x); }
IRIS_HD float erf_(float x) { return std::erf(x); }
IRIS_HD float sqrt_(float x) { return std::sqrt(x); }
IRIS_HD float rsqrt_(float x) { return 1.0f / std::sqrt(x); }
IRIS_HD float pow_(float x, float y) { return std::pow(x, y); }
#endif
IRIS_HD double exp_(double x) { return ::exp(x); }
IRIS_HD double log_(double x) { return ::log(x); }
IRIS_HD double sin_(double x) { return ::sin(x); }
IRIS_HD double cos_(double x) { return ::cos(x); }
IRIS_HD double tanh_(double x) { return ::tanh(x); }
IRIS_HD double erf_(double x) { return ::erf(x); }
IRIS_HD double sqrt_(double x) { return ::sqrt(x); }
IRIS_HD double rsqrt_(double x) { return 1.0 / ::sqrt(x); }
IRIS_HD double pow_(double x, double y) { return ::pow(x, y); }

template <class C>
IRIS_FN C sigmoid(C x) {
  return C(1) / (C(1) + exp_(-x));
}

// GELU with the exact erf form (PyTorch's default): x * Phi(x).
template <class C>
IRIS_FN C gelu(C x) {
  return C(0.5) * x * (C(1) + erf_(x * C(0.70710678118654752440)));
}
template <class C>
IRIS_FN C gelu_grad(C x) {
  const C cdf = C(0.5) * (C(1) + erf_(x * C(0.70710678118654752440)));
  const C pdf = exp_(C(-0.5) * x * x) * C(0.39894228040143267794);
  return cdf + x * pdf;
}

template <UnaryOp OP, class C>
IRIS_FN C unary(C x, C a, C b) {
  {
    if constexpr (OP == UnaryOp::neg) return -x;
    if constexpr (OP == UnaryOp::abs) return x < C(0) ? -x : x;
    if constexpr (OP == UnaryOp::exp) return exp_(x);
    if constexpr (OP == UnaryOp::log) return log_(x);
    if constexpr (OP == UnaryOp::sqrt) return sqrt_(x);
    if constexpr (OP == UnaryOp::rsqrt) return rsqrt_(x);
    if constexpr (OP == UnaryOp::sin) return sin_(x);
    if constexpr (OP == UnaryOp::cos) return cos_(x);
    if constexpr (OP == UnaryOp::sigmoid) return sigmoid(x);
    if constexpr (OP == UnaryOp::tanh) return tanh_(x);
    if constexpr (OP == UnaryOp::silu) return x * sigmoid(x);
    if constexpr (OP == UnaryOp::gelu) return gelu(x);
    if constexpr (OP == UnaryOp::relu) return x > C(0) ? x : C(0);
    if constexpr (OP == UnaryOp::square) return x * x;
    if constexpr (OP == UnaryOp::sign) return x > C(0) ? C(1) : (x < C(0) ? C(-1) : C(0));
    if constexpr (OP == UnaryOp::add_scalar) return x + a;
    if constexpr (OP == UnaryOp::mul_scalar) return x * a;
    if constexpr (OP == UnaryOp::rsub_scalar) return a - x;
    if constexpr (OP == UnaryOp::rdiv_scalar) return a / x;
    if constexpr (OP == UnaryOp::pow_scalar) return a == C(2) ? x * x : (a == C(1) ? x : pow_(x, a));
    if constexpr (OP == UnaryOp::clamp) return x < a ? a : (x > b ? b : x);
  }
  return x;
}

template <BinaryOp OP, class C>
IRIS_FN C binary(C x, C y, C a, C b) {
  {
    if constexpr (OP == BinaryOp::add) return x + y;
    if constexpr (OP == BinaryOp::sub) return x - y;
    if constexpr (OP == BinaryOp::mul) return x * y;
    if constexpr (OP == BinaryOp::div) return x / y;
    if constexpr (OP == BinaryOp::pow) return pow_(x, y);
    if constexpr (OP == BinaryOp::maximum) return x > y ? x : y;
    if constexpr (OP == BinaryOp::minimum) return x < y ? x : y;
    if constexpr (OP == BinaryOp::silu_bwd) {
      const C s = sigmoid(x);
      return y * s * (C(1) + x * (C(1) - s));
    }
    if constexpr (OP == BinaryOp::gelu_bwd) return y * gelu_grad(x);
    if constexpr (OP == BinaryOp::sigmoid_bwd) return y * x * (C(1) - x);
    if constexpr (OP == BinaryOp::tanh_bwd) return y * (C(1) - x * x);
    if constexpr (OP == BinaryOp::relu_bwd) return x > C(0) ? y : C(0);
    if constexpr (OP == BinaryOp::abs_bwd) return x > C(0) ? y : (x < C(0) ? -y : C(0));
    if constexpr (OP == BinaryOp::clamp_bwd) return (x >= a && x <= b) ? y : C(0);
  }
  return x;
}

template <CompareOp OP, class C>
IRIS_FN bool compare(C x, C y) {
  {
    if constexpr (OP == CompareOp::eq) return x == y;
    if constexpr (OP == CompareOp::ne) return x != y;
    if constexpr (OP == CompareOp::lt) return x < y;
    if constexpr (OP == CompareOp::le) return x <= y;
    if constexpr (OP == CompareOp::gt) return x > y;
    if constexpr (OP == CompareOp::ge) return x >= y;
  }
  return false;
}

}  // namespace fn

// Storage type -> compute type: bf16 and f32 compute in float, f64 in double, integers in their own type.
template <class T>
struct compute_type {
  using type = T;
};
template <>
struct compute_type<bf16> {
  using type = float;
};
template <class T>
using compute_t = typename compute_type<T>::type;

template <class C, class T>
IRIS_HD C load_as(const T* p) {
  if constexpr (std::is_same_v<T, bf16>)
    return static_cast<C>(p->to_float());
  else
    return static_cast<C>(*p);
}
template <class T, class C>
IRIS_HD void store_as(T* p, C v) {
  if constexpr (std::is_same_v<T, bf16>)
    *p = bf16::from_float(static_cast<float>(v));
  else
    *p = static_cast<T>(v);
}

}  // namespace iris
