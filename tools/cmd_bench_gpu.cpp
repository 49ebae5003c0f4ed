// `iris bench-gpu`: times the U-Net's GPU hot spots on one device, kernel by kernel:
// - GroupNorm+SiLU forward and backward (bf16 NHWC), as bandwidth over the essential traffic (forward:
//   read x, write y; backward: read x and gy, write dx) and over what the kernels actually move (the
//   statistics pass reads x once more);
// - a 3x3 "same" convolution in bf16 (forward, data and weight gradients) with cuDNN's heuristic choice and
//   with its timed search ("find"), in TFLOP/s;
// - the AdamW step and the EMA update over a model-sized set of f32 tensors, per-tensor launches vs the
//   multi-tensor kernels, as bandwidth (AdamW reads p, g, m, v and writes p, m, v: 28 bytes per element).
// Each timing syncs the device before and after every step, so it includes one launch latency per step.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "framework/core/tensor.h"
#include "framework/ops/conv.h"
#include "tools/commands.h"

#ifdef IRIS_WITH_CUDA
#include "framework/core/generator.h"
#include "framework/cuda/conv.h"
#include "framework/cuda/norm.h"
#include "framework/cuda/optim.h"
#include "framework/cuda/runtime.h"
#include "framework/ops/random.h"
#endif

namespace iris::tools {

namespace {

struct BenchGpuOptions {
  int64_t batch = 16, size = 64, channels = 128, groups = 32;
  int64_t tensors = 300, params_m = 100;  // AdamW / EMA: tensors and total parameters (millions)
  int steps = 20, warmup = 3;
};

#ifdef IRIS_WITH_CUDA
struct Timing {
  double median_ms, min_ms;
};

Timing time_ms(const BenchGpuOptions& o, const std::function<void()>& f) {
  for (int i = 0; i < o.warmup; ++i) f();
  cuda::synchronize(0);
  std::vector<double> ms;
  for (int i = 0; i < o.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    cuda::synchronize(0);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  return {n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]), ms.front()};
}

void row_bw(const std::string& what, Timing t, double bytes, double actual_bytes) {
  std::printf("  %-44s %9.3f ms (min %9.3f) | %7.1f GB/s essential, %7.1f GB/s moved (by min)\n",
              what.c_str(), t.median_ms, t.min_ms, bytes / (t.min_ms * 1e-3) / 1e9,
              actual_bytes / (t.min_ms * 1e-3) / 1e9);
}

void row_flops(const std::string& what, Timing t, double flops) {
  std::printf("  %-44s %9.3f ms (min %9.3f) | %7.1f TFLOP/s (by min)\n", what.c_str(), t.median_ms, t.min_ms,
              flops / (t.min_ms * 1e-3) / 1e12);
}

void bench_group_norm(const BenchGpuOptions& o, Generator& gen) {
  const Device dev = Device::cuda(0);
  const int64_t N = o.batch, S = o.size * o.size, C = o.channels, G = o.groups;
  std::printf("group_norm_silu bf16 x [%ld, %ld, %ld, %ld], %ld groups:\n", (long)N, (long)o.size,
              (long)o.size, (long)C, (long)G);
  const Tensor x = randn({N, o.size, o.size, C}, gen, DType::bf16, dev);
  const Tensor gy = randn({N, o.size, o.size, C}, gen, DType::bf16, dev);
  const Tensor gamma = randn({C}, gen, DType::f32, dev), beta = randn({C}, gen, DType::f32, dev);
  Tensor y = Tensor::empty(x.shape(), DType::bf16, dev), mean = Tensor::empty({N, G}, DType::f32, dev),
         rstd = Tensor::empty({N, G}, DType::f32, dev);
  Tensor dx = Tensor::empty(x.shape(), DType::bf16, dev), dgamma = Tensor::empty({C}, DType::f32, dev),
         dbeta = Tensor::empty({C}, DType::f32, dev);
  const double bytes = static_cast<double>(N * S * C) * 2.0;  // one bf16 tensor
  row_bw("forward (stats + apply)",
         time_ms(o, [&] { cuda::group_norm_forward(x, gamma, beta, y, mean, rstd, G, 1e-5, true); }),
         2 * bytes, 3 * bytes);
  row_bw(
      "backward (dx, dgamma, dbeta)",
      time_ms(o,
              [&] { cuda::group_norm_backward(gy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, G, true); }),
      3 * bytes, 5 * bytes);
}

void bench_conv(const BenchGpuOptions& o, Generator& gen) {
  const Device dev = Device::cuda(0);
  const int64_t C = o.channels;
  const ConvParams p =
      make_conv_params({o.batch, o.size, o.size, C}, {C, 3, 3, C}, {1, 1}, {1, 1}, "bench-gpu");
  std::printf("conv2d 3x3 same bf16 x [%ld, %ld, %ld, %ld] -> %ld channels:\n", (long)p.N, (long)p.H,
              (long)p.W, (long)C, (long)C);
  const Tensor x = randn({p.N, p.H, p.W, C}, gen, DType::bf16, dev);
  const Tensor w = randn({C, 3, 3, C}, gen, DType::bf16, dev, 0.0, 0.05);
  const Tensor b = randn({C}, gen, DType::bf16, dev);
  const Tensor gout = randn({p.N, p.Ho, p.Wo, C}, gen, DType::bf16, dev);
  Tensor y = Tensor::empty(gout.shape(), DType::bf16, dev), dx = Tensor::empty(x.shape(), DType::bf16, dev),
         dw = Tensor::empty(w.shape(), DType::bf16, dev);
  const double flops = 2.0 * static_cast<double>(p.macs());
  const cuda::ConvAlgoSearch before = cuda::conv_algo_search();
  for (cuda::ConvAlgoSearch mode : {cuda::ConvAlgoSearch::heuristic, cuda::ConvAlgoSearch::find}) {
    cuda::set_conv_algo_search(mode);
    const std::string m = mode == cuda::ConvAlgoSearch::find ? " [find]" : " [heuristic]";
    row_flops("forward + bias" + m, time_ms(o, [&] { cuda::conv2d_forward(x, w, b, y, p); }), flops);
    row_flops("backward data" + m, time_ms(o, [&] { cuda::conv2d_backward_data(gout, w, dx, p); }), flops);
    row_flops("backward weight" + m, time_ms(o, [&] { cuda::conv2d_backward_weight(gout, x, dw, p); }),
              flops);
  }
  cuda::set_conv_algo_search(before);
  std::printf("  cuDNN plans:\n");
  for (const std::string& d : cuda::conv_plan_descriptions(0)) std::printf("    %s\n", d.c_str());
}

void bench_optim(const BenchGpuOptions& o, Generator& gen) {
  const Device dev = Device::cuda(0);
  // Sizes spread like a U-Net's: many small tensors (biases, norms) and a few large ones.
  const int64_t total = o.params_m * 1000000;
  std::vector<int64_t> sizes(static_cast<size_t>(o.tensors));
  double weight_sum = 0;
  for (int64_t i = 0; i < o.tensors; ++i) weight_sum += (i % 3 == 0) ? 1.0 : 0.001;
  int64_t used = 0;
  for (int64_t i = 0; i < o.tensors; ++i) {
    sizes[i] = std::max<int64_t>(1, static_cast<int64_t>(total * ((i % 3 == 0) ? 1.0 : 0.001) / weight_sum));
    used += sizes[i];
  }
  std::printf("AdamW / EMA over %ld f32 tensors, %.1f M parameters:\n", (long)o.tensors, used / 1e6);
  std::vector<cuda::AdamWTensor> items;
  std::vector<Tensor> shadows, params;
  cpu::AdamWStep step;
  step.lr = 1e-4;
  step.weight_decay = 0.01;
  step.bias_correction1 = 0.1;
  step.bias_correction2 = 0.001;
  for (int64_t n : sizes) {
    items.push_back({randn({n}, gen, DType::f32, dev), randn({n}, gen, DType::f32, dev),
                     Tensor::zeros({n}, DType::f32, dev), Tensor::zeros({n}, DType::f32, dev), step});
    shadows.push_back(randn({n}, gen, DType::f32, dev));
    params.push_back(items.back().param);
  }
  const double bytes = static_cast<double>(used) * 4.0;
  row_bw("AdamW, one launch per tensor",
         time_ms(o,
                 [&] {
                   for (auto& it : items) cuda::adamw_update(it.param, it.grad, it.m, it.v, it.step);
                 }),
         7 * bytes, 7 * bytes);
  row_bw("AdamW, multi-tensor", time_ms(o, [&] { cuda::adamw_update_multi(items); }), 7 * bytes, 7 * bytes);
  row_bw("EMA, multi-tensor", time_ms(o, [&] { cuda::ema_update_multi(shadows, params, 0.9999); }), 3 * bytes,
         3 * bytes);
}
#endif

void run_bench_gpu(const BenchGpuOptions& o) {
#ifdef IRIS_WITH_CUDA
  IRIS_CHECK(cuda_available(), "bench-gpu: no CUDA device");
  IRIS_CHECK(o.channels % o.groups == 0, "bench-gpu: --groups ", o.groups, " must divide --channels ",
             o.channels);
  Generator gen(4321);
  std::printf("bench-gpu: %d warmup + %d timed steps; median and min wall time, device synced per step\n",
              o.warmup, o.steps);
  bench_group_norm(o, gen);
  bench_conv(o, gen);
  bench_optim(o, gen);
#else
  (void)o;
  IRIS_THROW("bench-gpu: this build of Iris has no CUDA support (IRIS_CUDA=OFF)");
#endif
}

}  // namespace

void register_bench_gpu(CLI::App& app) {
  auto opts = std::make_shared<BenchGpuOptions>();
  auto* cmd =
      app.add_subcommand("bench-gpu", "Time GroupNorm+SiLU, 3x3 conv and AdamW/EMA kernels on cuda:0");
  cmd->add_option("--batch", opts->batch, "batch size N")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--size", opts->size, "image height and width")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--channels", opts->channels, "channels")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--groups", opts->groups, "GroupNorm groups")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tensors", opts->tensors, "AdamW/EMA: number of parameter tensors")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--params-m", opts->params_m, "AdamW/EMA: total parameters, millions")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--steps", opts->steps, "timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", opts->warmup, "untimed warm-up steps")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->callback([opts] { run_bench_gpu(*opts); });
}

}  // namespace iris::tools
