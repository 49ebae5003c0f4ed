// GEMM on the CPU through OpenBLAS, loaded at run time so that Iris can pick its kernels.
//
// Why at run time: Debian's OpenBLAS 0.3.21 misdetects recent AMD CPUs with AVX-512 as "Prescott" and runs
// sgemm ~5x slower than its SkylakeX kernels, which are correct there. OpenBLAS reads OPENBLAS_CORETYPE once,
// when it is loaded; loading it ourselves (dlopen) lets Iris set that variable from the CPU's actual features
// first. A user's own OPENBLAS_CORETYPE is always respected. blas_info() says which path runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace iris::cpu {

// Row-major C[m,n] = alpha * op(A)[m,k] @ op(B)[k,n] + beta * C, with leading dimensions in elements.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

// Eigenvalues (ascending, into `values`) and eigenvectors of the symmetric matrix `a` [n, n] by LAPACK's
// dsyevd from the loaded OpenBLAS: `a` is overwritten with the eigenvectors, eigenvector j in row j
// (LAPACK's column-major columns). False, changing nothing, when that OpenBLAS has no LAPACK.
bool symmetric_eigen_lapack(std::vector<double>& a, int64_t n, std::vector<double>& values);

void blas_set_num_threads(int n);
// Throws iris::Error when this build uses instructions (AVX2, FMA, AVX-512) that the CPU lacks, saying how
// to rebuild (-DIRIS_CPU_ARCH=x86-64). Programs call it first thing.
void check_cpu_support();
int blas_num_threads();  // OpenBLAS's current thread count (1 if it cannot say)

// While alive, each OpenBLAS call runs on its calling thread only, so that code which parallelises over
// independent GEMMs itself (the convolution kernels) neither oversubscribes the cores nor wakes OpenBLAS's
// thread pool; restores the previous count on exit. OpenBLAS's thread count is process-wide: do not hold
// one while another thread relies on multi-threaded BLAS.
class BlasSingleThreadScope {
 public:
  BlasSingleThreadScope();
  ~BlasSingleThreadScope();
  BlasSingleThreadScope(const BlasSingleThreadScope&) = delete;
  BlasSingleThreadScope& operator=(const BlasSingleThreadScope&) = delete;

 private:
  int previous_;
};
// "OpenBLAS 0.3.21 core SkylakeX (chosen by Iris: CPU has AVX-512)", printed by tools at start-up.
std::string blas_info();

}  // namespace iris::cpu
