// A small model, data and training loop shared by the data-parallel tests (test_framework's local
// communicator checks, test_mpi, and the NCCL check in test_gpu): an MLP with SiLU, random regression
// batches, and K steps of AdamW with global-norm clipping, optionally through a GradReducer.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "framework/dist/reducer.h"
#include "tests/common/test_util.h"

namespace iris::test {

// widths[0] inputs -> ... -> widths.back() outputs, SiLU between the Linear layers.
inline std::shared_ptr<nn::Sequential> dp_mlp(uint64_t seed, const std::vector<int64_t>& widths,
                                              DType dtype = DType::f32, Device device = Device::cpu()) {
  Generator gen(seed);
  auto mlp = std::make_shared<nn::Sequential>();
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    mlp->push_back(std::make_shared<nn::Linear>(widths[i], widths[i + 1], gen));
    if (i + 2 < widths.size()) mlp->push_back(std::make_shared<nn::SiLU>());
  }
  if (dtype != DType::f32) mlp->to(dtype);
  if (device != Device::cpu()) mlp->to(device);
  return mlp;
}

// The global batch of step `step`: x [batch, in], y [batch, out].
inline std::pair<Tensor, Tensor> dp_batch(int step, int64_t batch, int64_t in, int64_t out, DType dtype) {
  const uint64_t seed = 1000 + 17 * static_cast<uint64_t>(step);
  return {randn({batch, in}, seed, dtype), randn({batch, out}, seed + 1, dtype)};
}

struct DpRun {
  int steps = 3;
  int64_t batch = 12;      // global batch
  int rank = 0, size = 1;  // this process trains on rows [rank * batch / size, (rank + 1) * batch / size)
  double lr = 1e-2, weight_decay = 0.01, clip = 0.5;
};

// Trains `model` for run.steps steps of AdamW on this rank's rows of each global batch; with a reducer the
// gradients are averaged over ranks (finish()) before clipping and the update. Returns the local losses.
inline std::vector<double> dp_train(nn::Sequential& model, const DpRun& run, dist::GradReducer* reducer,
                                    Device device = Device::cpu()) {
  const auto named = model.named_parameters();
  const int64_t in = named.front().second.size(1), out = named.back().second.size(0);
  const DType dtype = named.front().second.dtype();
  optim::AdamW opt(named, run.lr, {0.9, 0.999}, 1e-8, run.weight_decay);
  std::vector<double> losses;
  const int64_t lo = run.rank * run.batch / run.size, hi = (run.rank + 1) * run.batch / run.size;
  for (int k = 0; k < run.steps; ++k) {
    auto [x, y] = dp_batch(k, run.batch, in, out, dtype);
    x = x.slice(0, lo, hi).contiguous().to(device);
    y = y.slice(0, lo, hi).contiguous().to(device);
    opt.zero_grad();
    Tensor loss = mse_loss(model.forward(x), y);
    loss.backward();
    if (reducer) reducer->finish();
    if (run.clip > 0) optim::clip_grad_norm(model.parameters(), run.clip);
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

// Every parameter, flattened and concatenated, as doubles on the host.
inline std::vector<double> dp_flat_params(const nn::Module& model) {
  std::vector<double> all;
  for (const Tensor& p : model.parameters()) {
    const std::vector<double> v = p.to_vector<double>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

}  // namespace iris::test
