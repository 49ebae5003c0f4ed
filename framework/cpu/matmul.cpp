#include "framework/kernels/matmul.h"

#include "framework/cpu/blas.h"
#include "framework/kernels/elementwise.h"
#include "framework/cpu/parallel.h"
#include "framework/kernels/blas_view.h"
#include "framework/kernels/dispatch.h"

namespace iris::cpu {

void bmm(const Tensor& a_in, const Tensor& b_in, Tensor& out, double alpha, double beta) {
  const int64_t B = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a_in.shape()[2];
  if (out.numel() == 0) return;
  if (K == 0) {  // an empty sum: out = beta * out (BLAS rejects the leading dimensions of empty operands)
    if (beta == 0.0)
      fill(out, 0.0);
    else
      unary(UnaryOp::mul_scalar, out, out, beta, 0.0);
    return;
  }
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
    // Tiles of the output, each one single-threaded GEMM over the full K, run on Iris's threads. The tile
    // shape depends only on (M, N), so every output element is computed the same way whatever the thread
    // count (OpenBLAS's own threading splits K differently with 1 and 2 threads).
    const int64_t tm = std::max<int64_t>(64, (M + 7) / 8), tn = M >= 256 ? N : std::max<int64_t>(256, (N + 7) / 8);
    const int64_t tiles_m = (M + tm - 1) / tm, tiles_n = (N + tn - 1) / tn;
    const int64_t tiles = B * tiles_m * tiles_n;
    const int threads = static_cast<int>(std::min<int64_t>(num_threads(), tiles));
    run_parallel(tiles, threads, [&](int64_t t, int) {
      const int64_t i = t / (tiles_m * tiles_n), r = t % (tiles_m * tiles_n);
      const int64_t m0 = (r / tiles_n) * tm, n0 = (r % tiles_n) * tn;
      const int64_t m = std::min(tm, M - m0), n = std::min(tn, N - n0);
      // Row m0 of op(A) and column n0 of op(B), in the stored (possibly transposed) layouts.
      const T* at = ap + i * sa + (va->trans ? m0 : m0 * va->ld);
      const T* bt = bp + i * sb + (vb->trans ? n0 * vb->ld : n0);
      gemm(va->trans, vb->trans, m, n, K, static_cast<T>(alpha), at, va->ld, bt, vb->ld, static_cast<T>(beta),
           op + i * M * N + m0 * N + n0, N);
    });
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
