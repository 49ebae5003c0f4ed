// How a strided [rows, cols] matrix view is handed to a row-major GEMM without a copy: as is (unit column
// stride) or transposed (unit row stride), with the other stride as the leading dimension. Shared by the CPU
// (OpenBLAS) and CUDA (cuBLASLt) batched GEMMs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace iris {

struct BlasView {
  bool trans;  // the matrix is read through its transpose (unit row stride)
  int64_t ld;  // leading dimension
};

// nullopt when neither stride is 1 (the caller copies the matrix first).
inline std::optional<BlasView> blas_view(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  // The stride of a size-1 axis is never followed (views of one row or column may carry any value there).
  if (cols == 1) cs = 1;
  if (rows == 1) rs = std::max<int64_t>(cols, 1);
  if (cs == 1 && (rs >= std::max<int64_t>(cols, 1) || rows == 1)) return BlasView{false, std::max(rs, cols)};
  if (rs == 1 && (cs >= std::max<int64_t>(rows, 1) || cols == 1)) return BlasView{true, std::max(cs, rows)};
  return std::nullopt;
}

}  // namespace iris
