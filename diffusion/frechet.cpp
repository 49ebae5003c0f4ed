#include "diffusion/frechet.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/core/error.h"
#include "framework/cpu/blas.h"
#include "framework/iris.h"

namespace iris::diffusion {

namespace {

// Up to this size the eigensolver is Iris's own cyclic Jacobi (exact to f64 rounding, fast enough); above,
// LAPACK's.
constexpr int64_t kJacobiMaxDim = 256;

// A matrix symmetric up to rounding (a GEMM's), made exactly so: the eigensolver assumes it.
void symmetrize(std::vector<double>& a, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) a[i * n + j] = a[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
}

}  // namespace

Gaussian fit_gaussian(const Tensor& x) {
  IRIS_CHECK(x.defined() && x.dim() == 2 && x.size(0) >= 2, "fit_gaussian: needs [N, D] with N >= 2, got ",
             x.defined() ? shape_str(x.shape()) : std::string("none"));
  NoGradGuard no_grad;
  const Tensor v = x.cpu().to(DType::f64);
  const Tensor mu = mean(v, {0});  // [D]
  const Tensor centred = sub(v, mu);
  // [D, N] x [N, D] through BLAS: the N x D^2 sum is the cost of fitting many features.
  const Tensor cov = mul(matmul(centred.permute({1, 0}), centred), 1.0 / static_cast<double>(x.size(0) - 1));
  Gaussian g;
  g.dim = x.size(1);
  g.mean = mu.to_vector<double>();
  g.cov = cov.to_vector<double>();
  symmetrize(g.cov, g.dim);
  return g;
}

void symmetric_eigen(const std::vector<double>& a_in, int64_t n, std::vector<double>& values,
                     std::vector<double>& vectors) {
  IRIS_CHECK(n >= 1 && static_cast<int64_t>(a_in.size()) == n * n, "symmetric_eigen: needs an n x n matrix");
  // Large matrices (Inception's 2048 features: a Jacobi sweep there costs minutes) go to LAPACK's dsyevd
  // when the loaded OpenBLAS has it; it returns eigenvector j in row j, transposed here to columns.
  if (n > kJacobiMaxDim) {
    std::vector<double> rows = a_in;
    if (cpu::symmetric_eigen_lapack(rows, n, values)) {
      vectors.assign(static_cast<size_t>(n * n), 0.0);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < n; ++k) vectors[k * n + j] = rows[j * n + k];
      return;
    }
  }
  std::vector<double> a = a_in;
  vectors.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  // Cyclic Jacobi: each rotation zeroes a[p][q]; sweeps until the off-diagonal mass is negligible against
  // the diagonal (quadratic convergence: a handful of sweeps).
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int64_t p = 0; p < n; ++p) {
      diag += a[p * n + p] * a[p * n + p];
      for (int64_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    }
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // columns p and q: A <- A J
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p and q: A <- J^T A
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {  // V <- V J
          const double vkp = vectors[k * n + p], vkq = vectors[k * n + q];
          vectors[k * n + p] = c * vkp - s * vkq;
          vectors[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  // Ascending order, eigenvectors alongside.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return a[i * n + i] < a[j * n + j]; });
  values.resize(static_cast<size_t>(n));
  std::vector<double> sorted(static_cast<size_t>(n * n));
  for (int64_t j = 0; j < n; ++j) {
    values[j] = a[order[j] * n + order[j]];
    for (int64_t k = 0; k < n; ++k) sorted[k * n + j] = vectors[k * n + order[j]];
  }
  vectors = std::move(sorted);
}

namespace {

Tensor square_matrix(const std::vector<double>& a, int64_t n) {
  return Tensor::from_vector<double>(a, {n, n});
}

// The symmetric positive semi-definite square root V diag(sqrt(max(l, 0))) V^T.
Tensor psd_sqrt(const std::vector<double>& a, int64_t n) {
  std::vector<double> l, v;
  symmetric_eigen(a, n, l, v);
  for (double& e : l) e = std::sqrt(std::max(e, 0.0));
  const Tensor vecs = square_matrix(v, n);
  return matmul(mul(vecs, Tensor::from_vector<double>(l, {1, n})), vecs.permute({1, 0}));
}

}  // namespace

double frechet_distance(const Gaussian& a, const Gaussian& b) {
  IRIS_CHECK(a.dim == b.dim && a.dim > 0, "frechet_distance: dimensions differ (", a.dim, " vs ", b.dim, ")");
  const int64_t n = a.dim;
  double d = 0;
  for (int64_t i = 0; i < n; ++i) d += (a.mean[i] - b.mean[i]) * (a.mean[i] - b.mean[i]);
  for (int64_t i = 0; i < n; ++i) d += a.cov[i * n + i] + b.cov[i * n + i];
  NoGradGuard no_grad;
  const Tensor r = psd_sqrt(a.cov, n);
  std::vector<double> m = matmul(matmul(r, square_matrix(b.cov, n)), r).to_vector<double>();
  symmetrize(m, n);
  std::vector<double> l, v;
  symmetric_eigen(m, n, l, v);
  for (double e : l) d -= 2 * std::sqrt(std::max(e, 0.0));
  return std::max(d, 0.0);
}

}  // namespace iris::diffusion
