// `iris bench-conv`: times conv2d on the CPU in f32 (forward, and forward + backward for x, w and bias)
// against the raw sgemm of the same sizes, so that the cost of im2col / col2im and of everything around the
// GEMMs is visible.
//
// FLOPs: one convolution GEMM is 2 * N*Ho*Wo * Cout * kh*kw*Cin. The forward is one such GEMM, the backward
// two (data and weight gradients), so forward + backward counts three.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/cpu/blas.h"
#include "framework/cpu/conv.h"
#include "framework/cpu/conv_onednn.h"
#include "framework/cpu/parallel.h"
#include "framework/ops/conv.h"
#include "framework/ops/random.h"
#include "tools/commands.h"

namespace iris::tools {

namespace {

struct BenchConvOptions {
  int64_t batch = 8, size = 32, cin = 64, cout = 64, kernel = 3, stride = 1;
  int steps = 20, warmup = 3, threads = 0;
  int64_t tile_rows = 0;  // 0: the library's default
  double band_mb = 0;     // 0: the library's default
  std::string method = "auto";  // auto (oneDNN when built with it), onednn or im2col
};

struct Timing {
  double median_ms, min_ms, cpu_ms;  // cpu_ms: process CPU time (all threads) per step
};

double process_cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-3;
}

// Median and fastest wall time of `f` over `steps` runs after `warmup` untimed ones. The minimum is what the
// code can do; the median also shows interference from other processes on a shared machine.
Timing time_ms(int warmup, int steps, const std::function<void()>& f) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> ms;
  const double cpu0 = process_cpu_ms();
  for (int i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  return {n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]), ms.front(),
          (process_cpu_ms() - cpu0) / steps};
}

void print_row(const std::string& what, Timing t, double flops) {
  std::printf("  %-46s %8.3f ms %6.1f GFLOP/s | min %8.3f ms %6.1f GFLOP/s | cpu %8.3f ms\n", what.c_str(),
              t.median_ms, flops / (t.median_ms * 1e-3) / 1e9, t.min_ms, flops / (t.min_ms * 1e-3) / 1e9,
              t.cpu_ms);
}

void run_bench_conv(const BenchConvOptions& o) {
  IRIS_CHECK(o.steps >= 1 && o.warmup >= 0, "bench-conv: --steps must be >= 1 and --warmup >= 0");
  if (o.threads > 0) set_num_threads(o.threads);
  cpu::ConvCpuTuning tuning = cpu::conv_cpu_tuning();
  if (o.tile_rows > 0) tuning.tile_rows = o.tile_rows;
  if (o.band_mb > 0) tuning.band_bytes = static_cast<int64_t>(o.band_mb * (1 << 20));
  cpu::apply_conv_method(tuning, o.method, "bench-conv: --method");
  cpu::set_conv_cpu_tuning(tuning);
  const int64_t pad = o.kernel / 2;  // "same" padding for odd kernels
  const ConvParams p = make_conv_params({o.batch, o.size, o.size, o.cin}, {o.cout, o.kernel, o.kernel, o.cin},
                                        {o.stride, o.stride}, {pad, pad}, "bench-conv");
  const double gemm_flops = 2.0 * static_cast<double>(p.macs());

  std::printf(
      "bench-conv: x [%ld, %ld, %ld, %ld] -> [%ld, %ld, %ld, %ld] f32, kernel %ldx%ld stride %ld pad %ld\n",
      (long)p.N, (long)p.H, (long)p.W, (long)p.Cin, (long)p.N, (long)p.Ho, (long)p.Wo, (long)p.Cout,
      (long)p.kh, (long)p.kw, (long)p.sh, (long)p.ph);
  const std::string kernel = tuning.onednn ? cpu::onednn::forward_implementation(p, tuning.winograd) : "";
  std::printf("cpu: %d threads; forward convolution: %s; BLAS: %s\n", num_threads(),
              kernel.empty() ? "im2col + GEMM" : ("oneDNN " + kernel).c_str(), cpu::blas_info().c_str());
  const int64_t tile = cpu::conv_tile_rows(p, sizeof(float));
  std::printf(
      "tiles of %ld rows%s; data-gradient bands of %.1f MiB; %d warmup + %d timed steps: median | fastest | "
      "CPU time per step (all threads)\n",
      (long)tile, tuning.tile_rows > 0 ? "" : " (automatic)",
      static_cast<double>(tuning.band_bytes) / (1 << 20), o.warmup, o.steps);

  Generator gen(1234);
  const double wscale = 1.0 / std::sqrt(static_cast<double>(p.cols()));
  Tensor x = randn({p.N, p.H, p.W, p.Cin}, gen);
  Tensor w = randn({p.Cout, p.kh, p.kw, p.Cin}, gen, DType::f32, Device::cpu(), 0.0, wscale);
  Tensor b = randn({p.Cout}, gen);
  const Tensor gout = randn({p.N, p.Ho, p.Wo, p.Cout}, gen);

  // Baseline: the three GEMMs a convolution of these sizes performs, on plain contiguous buffers.
  const int64_t M = p.rows(), K = p.cols(), Co = p.Cout;
  const Tensor col = randn({M, K}, gen), dcol = Tensor::empty({M, K}), out = Tensor::empty({M, Co}),
               dw = Tensor::empty({Co, K});
  const float* colp = col.data<float>();
  const float* wp = w.data<float>();
  const float* gp = gout.data<float>();
  std::printf("raw sgemm (one call each):\n");
  const Timing g_fwd = time_ms(o.warmup, o.steps, [&] {
    cpu::gemm(false, true, M, Co, K, 1.f, colp, K, wp, K, 0.f, out.data<float>(), Co);
  });
  print_row("forward-shaped  [" + std::to_string(M) + ", " + std::to_string(K) + "] @ [" + std::to_string(K) +
                ", " + std::to_string(Co) + "]",
            g_fwd, gemm_flops);
  const Timing g_data = time_ms(o.warmup, o.steps, [&] {
    cpu::gemm(false, false, M, K, Co, 1.f, gp, Co, wp, K, 0.f, dcol.data<float>(), K);
  });
  print_row("data-grad-shaped  [" + std::to_string(M) + ", " + std::to_string(Co) + "] @ [" +
                std::to_string(Co) + ", " + std::to_string(K) + "]",
            g_data, gemm_flops);
  const Timing g_weight = time_ms(o.warmup, o.steps, [&] {
    cpu::gemm(true, false, Co, K, M, 1.f, gp, Co, colp, K, 0.f, dw.data<float>(), K);
  });
  print_row("weight-grad-shaped  [" + std::to_string(Co) + ", " + std::to_string(M) + "] @ [" +
                std::to_string(M) + ", " + std::to_string(K) + "]",
            g_weight, gemm_flops);
  const Timing g_sum{g_fwd.median_ms + g_data.median_ms + g_weight.median_ms,
                     g_fwd.min_ms + g_data.min_ms + g_weight.min_ms,
                     g_fwd.cpu_ms + g_data.cpu_ms + g_weight.cpu_ms};
  print_row("sum of the three", g_sum, 3 * gemm_flops);

  std::printf("conv2d kernels (cpu::conv2d_*):\n");
  Tensor y = Tensor::empty({p.N, p.Ho, p.Wo, p.Cout}), dx = Tensor::empty_like(x),
         dwk = Tensor::empty_like(w);
  print_row("forward (im2col + GEMM + bias)",
            time_ms(o.warmup, o.steps, [&] { cpu::conv2d_forward(x, w, b, y, p); }), gemm_flops);
  print_row("backward data (GEMM + col2im)",
            time_ms(o.warmup, o.steps, [&] { cpu::conv2d_backward_data(gout, w, dx, p); }), gemm_flops);
  print_row("backward weight (im2col + GEMM)",
            time_ms(o.warmup, o.steps, [&] { cpu::conv2d_backward_weight(gout, x, dwk, p); }), gemm_flops);

  std::printf("conv2d op (with autograd):\n");
  const Timing fwd = time_ms(o.warmup, o.steps, [&] {
    NoGradGuard ng;
    (void)conv2d(x, w, b, {o.stride, o.stride}, {pad, pad});
  });
  print_row("forward", fwd, gemm_flops);
  x.set_requires_grad();
  w.set_requires_grad();
  b.set_requires_grad();
  const Timing fwd_bwd = time_ms(o.warmup, o.steps, [&] {
    x.set_grad(Tensor());
    w.set_grad(Tensor());
    b.set_grad(Tensor());
    conv2d(x, w, b, {o.stride, o.stride}, {pad, pad}).backward(gout);
  });
  print_row("forward + backward (x, w, bias)", fwd_bwd, 3 * gemm_flops);
  std::printf(
      "forward + backward runs at %.0f%% of the raw sgemm rate (sum of the three GEMMs) by medians, %.0f%% "
      "by minima\n",
      100.0 * g_sum.median_ms / fwd_bwd.median_ms, 100.0 * g_sum.min_ms / fwd_bwd.min_ms);
}

}  // namespace

void register_bench_conv(CLI::App& app) {
  auto opts = std::make_shared<BenchConvOptions>();
  auto* cmd = app.add_subcommand("bench-conv", "Time conv2d forward and forward+backward on the CPU (f32)");
  const CLI::Range positive(1, 1 << 20), non_negative(0, 1 << 20);
  cmd->add_option("--batch", opts->batch, "batch size N")->capture_default_str()->check(positive);
  cmd->add_option("--size", opts->size, "image height and width")->capture_default_str()->check(positive);
  cmd->add_option("--cin", opts->cin, "input channels")->capture_default_str()->check(positive);
  cmd->add_option("--cout", opts->cout, "output channels")->capture_default_str()->check(positive);
  cmd->add_option("--kernel", opts->kernel, "square kernel size (padding kernel/2)")
      ->capture_default_str()
      ->check(positive);
  cmd->add_option("--stride", opts->stride, "stride")->capture_default_str()->check(positive);
  cmd->add_option("--steps", opts->steps, "timed steps")->capture_default_str()->check(positive);
  cmd->add_option("--warmup", opts->warmup, "untimed warm-up steps")
      ->capture_default_str()
      ->check(non_negative);
  cmd->add_option("--threads", opts->threads, "CPU threads (0: all)")
      ->capture_default_str()
      ->check(non_negative);
  cmd->add_option("--method", opts->method,
                  "auto (IRIS_CPU_CONV, else winograd when built with oneDNN), winograd (oneDNN, Winograd where it "
                  "applies), direct (oneDNN's direct method) or im2col")
      ->capture_default_str();
  cmd->add_option("--tile-rows", opts->tile_rows, "rows per im2col tile (0: automatic, about 1 MiB)")
      ->capture_default_str()
      ->check(non_negative);
  cmd->add_option("--band-mb", opts->band_mb,
                  "data-gradient band of column rows per thread, MiB (0: default 4)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 64.0));
  cmd->callback([opts] { run_bench_conv(*opts); });
}

}  // namespace iris::tools
