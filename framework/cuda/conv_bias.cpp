// The convolution bias gradient on the GPU: the same column reduction the reduce kernels do.
#include "framework/kernels/conv.h"
#include "framework/kernels/reduce.h"

namespace iris::cuda {

void conv2d_backward_bias(const Tensor& gout, Tensor& db, const ConvParams& p, Stream stream) {
  const Tensor rows = gout.detach().view({p.rows(), p.Cout});
  reduce(ReduceOp::sum, rows, db, {0}, 0, stream);
}

}  // namespace iris::cuda
