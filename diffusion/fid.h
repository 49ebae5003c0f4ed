// FID as published (Heusel et al. 2017, as pytorch-fid computes it): the Fréchet distance between Gaussians
// fitted to the 2048 pool3 features of FID's Inception-v3 (diffusion/inception.h) over generated and real
// images. The real set's statistics can be computed once and saved (HDF5, below), as pytorch-fid's .npz
// files are.
//
// Statistics file (HDF5, readable by h5py): /mu f64 [2048], /sigma f64 [2048, 2048] (the unbiased
// covariance, divided by N - 1, as numpy.cov); root attributes format = "iris-fid-stats", count (images),
// source (the image set), inception (the weights file they were computed with).
#pragma once

#include <functional>
#include <string>

#include "diffusion/frechet.h"
#include "diffusion/inception.h"

namespace iris::diffusion {

struct FidStats {
  Gaussian gaussian;
  int64_t count = 0;
  std::string source, inception;
};

// The Gaussian of the pool3 features of `images` (u8 [N, H, W, C], C = 1 or 3, N >= 2), in batches of
// `batch` on the network's device; `on_batch(done, total)` reports progress. The covariance is accumulated
// in f64 around the first batch's mean (a shift that keeps the sums from cancelling), so memory stays at
// one batch of images plus 2048 x 2048.
Gaussian inception_statistics(const FidInception& net, const Tensor& images, int64_t batch,
                              const std::function<void(int64_t, int64_t)>& on_batch = nullptr);

void save_fid_stats(const std::string& path, const FidStats& stats);
// Throws iris::Error naming the file when it is not a statistics file or is damaged.
FidStats load_fid_stats(const std::string& path);

}  // namespace iris::diffusion
