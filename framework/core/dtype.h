// Element types and the bfloat16 storage type.
//
// f32 is the working type; bf16 is a storage type (computed in f32); f64 exists on the CPU so that tests can
// check every op against a float64 reference and by float64 finite differences.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#if defined(__CUDACC__)
#define IRIS_HD __host__ __device__ __forceinline__
#else
#define IRIS_HD inline
#endif

namespace iris {

enum class DType : uint8_t { f32, f64, bf16, i32, i64, u8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
inline bool is_floating(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::bf16; }
// The type two floating operands compute in: the wider of the two (bf16 < f32 < f64).
DType promote_floating(DType a, DType b);

// bfloat16: the top 16 bits of an IEEE float32. Conversion from f32 rounds to nearest, ties to even;
// NaN stays NaN (quiet), infinities stay infinite.
struct bf16 {
  uint16_t bits = 0;

  IRIS_HD static bf16 from_bits(uint16_t b) {
    bf16 r;
    r.bits = b;
    return r;
  }
  IRIS_HD static bf16 from_float(float f) {
    uint32_t u;
#if defined(__CUDA_ARCH__)
    u = __float_as_uint(f);
#else
    std::memcpy(&u, &f, 4);
#endif
    if ((u & 0x7fffffffu) > 0x7f800000u) return from_bits(static_cast<uint16_t>((u >> 16) | 0x0040u));  // NaN
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;  // round to nearest, ties to even
    return from_bits(static_cast<uint16_t>(u >> 16));
  }
  IRIS_HD float to_float() const {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
  }
};
static_assert(sizeof(bf16) == 2);

// Maps a C++ element type to its DType tag.
template <class T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct dtype_of<uint8_t> {
  static constexpr DType value = DType::u8;
};

}  // namespace iris
