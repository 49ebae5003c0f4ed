#include "framework/cpu/matmul.h"

#include <optional>

#include "framework/cpu/blas.h"
#include "framework/ops/dispatch.h"

namespace iris::cpu {

namespace {
// How a [rows, cols] matrix with strides (rs, cs) is passed to row-major BLAS: as is (cs == 1) or
// transposed (rs == 1); ld is the other stride.
struct BlasView {
  bool trans;
  int64_t ld;
};
std::optional<BlasView> blas_view(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  if (cs == 1 && (rs >= std::max<int64_t>(cols, 1) || rows == 1)) return BlasView{false, std::max(rs, cols)};
  if (rs == 1 && (cs >= std::max<int64_t>(rows, 1) || cols == 1)) return BlasView{true, std::max(cs, rows)};
  return std::nullopt;
}
}  // namespace

void bmm(const Tensor& a_in, const Tensor& b_in, Tensor& out, double alpha, double beta) {
  const int64_t B = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a_in.shape()[2];
  Tensor a = a_in, b = b_in;
  auto va = blas_view(M, K, a.strides()[1], a.strides()[2]);
  if (!va) {
    a = a.detach().contiguous();
    va = blas_view(M, K, a.strides()[1], a.strides()[2]);
  }
  auto vb = blas_view(K, N, b.strides()[1], b.strides()[2]);
  if (!vb) {
    b = b.detach().contiguous();
    vb = blas_view(K, N, b.strides()[1], b.strides()[2]);
  }
  const int64_t sa = a.strides()[0], sb = b.strides()[0];
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* op = out.data<T>();
    for (int64_t i = 0; i < B; ++i)
      gemm(va->trans, vb->trans, M, N, K, static_cast<T>(alpha), ap + i * sa, va->ld, bp + i * sb, vb->ld,
           static_cast<T>(beta), op + i * M * N, N);
  };
  switch (out.dtype()) {
    case DType::f32: run(float{}); break;
    case DType::f64: run(double{}); break;
    case DType::bf16: {
      // The CPU has no bf16 GEMM here: compute in f32 and round once.
      Tensor a32 = a.detach().to(DType::f32), b32 = b.detach().to(DType::f32);
      Tensor o32 = beta != 0.0 ? out.detach().to(DType::f32) : Tensor::empty(out.shape(), DType::f32);
      bmm(a32, b32, o32, alpha, beta);
      out.copy_(o32);
      break;
    }
    default: IRIS_THROW("matmul: expected a floating dtype, got ", dtype_name(out.dtype()));
  }
}

}  // namespace iris::cpu
