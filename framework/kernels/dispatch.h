// Turning runtime choices (op enums, dtypes) into compile-time ones, in one place: kernels of both backends
// instantiate their templates through these. (Choosing the device is the op layer's: IRIS_DISPATCH_DEVICE in
// framework/ops/dispatch.h.)
#pragma once

#include <type_traits>

#include "framework/core/dtype.h"
#include "framework/core/error.h"
#include "framework/kernels/functors.h"

namespace iris {

#define IRIS_UNARY_OPS(X)                                                                                   \
  X(neg) X(abs) X(exp) X(log) X(sqrt) X(rsqrt) X(sin) X(cos) X(sigmoid) X(tanh) X(silu) X(gelu) X(relu) \
      X(square) X(sign) X(add_scalar) X(mul_scalar) X(rsub_scalar) X(rdiv_scalar) X(pow_scalar) X(clamp)
#define IRIS_BINARY_OPS(X)                                                                                  \
  X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum) X(silu_bwd) X(gelu_bwd) X(sigmoid_bwd)        \
      X(tanh_bwd) X(relu_bwd) X(abs_bwd) X(clamp_bwd)
#define IRIS_COMPARE_OPS(X) X(eq) X(ne) X(lt) X(le) X(gt) X(ge)

// f(std::integral_constant<UnaryOp, OP>{}) for the runtime `op`.
template <class F>
void dispatch_unary(UnaryOp op, F&& f) {
  switch (op) {
#define IRIS_CASE(name)                                        \
  case UnaryOp::name:                                          \
    f(std::integral_constant<UnaryOp, UnaryOp::name>{}); \
    return;
    IRIS_UNARY_OPS(IRIS_CASE)
#undef IRIS_CASE
  }
  IRIS_THROW("unknown unary op ", static_cast<int>(op));
}

template <class F>
void dispatch_binary(BinaryOp op, F&& f) {
  switch (op) {
#define IRIS_CASE(name)                                          \
  case BinaryOp::name:                                           \
    f(std::integral_constant<BinaryOp, BinaryOp::name>{}); \
    return;
    IRIS_BINARY_OPS(IRIS_CASE)
#undef IRIS_CASE
  }
  IRIS_THROW("unknown binary op ", static_cast<int>(op));
}

template <class F>
void dispatch_compare(CompareOp op, F&& f) {
  switch (op) {
#define IRIS_CASE(name)                                            \
  case CompareOp::name:                                            \
    f(std::integral_constant<CompareOp, CompareOp::name>{}); \
    return;
    IRIS_COMPARE_OPS(IRIS_CASE)
#undef IRIS_CASE
  }
  IRIS_THROW("unknown compare op ", static_cast<int>(op));
}

// f(T{}) with T the C++ type of a floating dtype (float, double, bf16); throws naming `op` otherwise.
template <class F>
void dispatch_floating(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16: f(bf16{}); return;
    default: IRIS_THROW(op, ": expected a floating tensor (f32, f64 or bf16), got ", dtype_name(dtype));
  }
}

// f(I{}) with I the C++ type of an index dtype (i32 or i64); throws naming `op` otherwise.
template <class F>
void dispatch_index(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::i32: f(int32_t{}); return;
    case DType::i64: f(int64_t{}); return;
    default: IRIS_THROW(op, ": expected i32 or i64 indices, got ", dtype_name(dtype));
  }
}

// f(T{}) for every dtype.
template <class F>
void dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16: f(bf16{}); return;
    case DType::i32: f(int32_t{}); return;
    case DType::i64: f(int64_t{}); return;
    case DType::u8: f(uint8_t{}); return;
  }
}

}  // namespace iris
