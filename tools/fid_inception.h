// `iris fd --inception WEIGHTS`: FID as published, in the features of FID's Inception-v3 computed by Iris
// (diffusion/fid.h), instead of the Fashion-MNIST-sized classifier of plain `iris fd`.
#pragma once

#include <string>

namespace iris::tools {

struct InceptionFdOptions {
  std::string inception;        // weights (tools/scripts/convert_fid_inception.py)
  std::string generated, real;  // image sets (a shard folder, DIR:lowres_<h>, samples.h5, FILE:dataset)
  std::string real_stats;       // the real set's statistics saved before (instead of --real)
  std::string save_real_stats;  // save the real set's statistics here
  std::string device = "auto", json;
  int64_t batch = 50, limit = -1;
  int threads = 0;
};

void run_inception_fd(const InceptionFdOptions& o);

}  // namespace iris::tools
