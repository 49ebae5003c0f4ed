// The Fréchet distance between two Gaussians, the statistic behind FID (Heusel et al. 2017):
//   d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)),
// with tr((S_a S_b)^(1/2)) computed as tr((R S_b R)^(1/2)), R = S_a^(1/2): symmetric throughout, so two
// symmetric eigendecompositions (cyclic Jacobi, f64) suffice and no general matrix square root is needed.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::diffusion {

struct Gaussian {
  int64_t dim = 0;
  std::vector<double> mean;  // [dim]
  std::vector<double> cov;   // [dim, dim] row-major, the unbiased sample covariance (divided by N - 1)
};

// The mean and covariance of the rows of `x` [N, D] (any floating dtype, any device; N >= 2).
Gaussian fit_gaussian(const Tensor& x);

// d^2 above (>= 0; rounding below zero is clamped). Throws unless the dimensions agree.
double frechet_distance(const Gaussian& a, const Gaussian& b);

// Eigenvalues (ascending) and eigenvectors (columns of `vectors`, row-major [n, n]) of the symmetric matrix
// `a` [n, n] by cyclic Jacobi rotations, to f64 rounding. For tests and frechet_distance.
void symmetric_eigen(const std::vector<double>& a, int64_t n, std::vector<double>& values,
                     std::vector<double>& vectors);

}  // namespace iris::diffusion
