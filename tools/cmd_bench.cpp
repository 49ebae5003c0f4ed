// `iris bench`: times the training step or the sampling step of tools/bench/SR3_BENCH.md on any U-Net
// config.
//
// train: forward, L1 loss between the prediction and the target noise, backward, AdamW update of every
// parameter (f32 state); sample: one U-Net forward without gradients (an SR3 refinement step). Inputs are
// random and two input sets alternate (never zeros). Warm-up steps, then each step timed with device events
// (the steady clock on the CPU); the median is reported with img/s, TFLOP/s and the peak memory, in a table
// and a final JSON line. The host's time to queue each step is measured too: the step never waits for the
// device, so on a GPU a host time close to the step time means the step is bound by the host (launches,
// dispatch), not by the GPU.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "diffusion/config.h"
#include "diffusion/unet.h"
#include "framework/core/kernel_profile.h"
#include "framework/core/profiling.h"
#include "framework/core/replay_graph.h"
#include "framework/cpu/conv.h"
#include "framework/iris.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace iris::tools {

namespace {

struct BenchOptions {
  std::string config, mode = "train", precision = "f32", device = "auto";
  int64_t batch = 0;  // 0: the config's train.batch_size
  int steps = 20, warmup = 5, threads = 0;
  std::string cpu_conv = "auto";  // auto (IRIS_CPU_CONV, else winograd with oneDNN), winograd, direct or im2col
  bool profile = false;           // CPU: time every kernel over the timed steps and print the table
  bool graphs = false;            // sample on a CUDA device: the forward through a captured CUDA graph
  std::vector<std::string> sets;  // --set KEY=VALUE overrides of the config
};

struct Inputs {
  Tensor x, gamma, target;
  Tensor labels;  // class-conditional models: i64 [batch] (undefined otherwise)
};

// The kernel table of `iris bench --profile`: per step, each CPU kernel's calls and time and its share of the
// step; the rest of the step is the framework's own time (autograd, bookkeeping, allocation).
void print_kernel_profile(const std::vector<double>& step_ms, int steps) {
  double total = 0;
  for (double m : step_ms) total += m;
  const double per_step = total / steps;
  double in_kernels = 0;
  std::printf("\n%-34s %10s %10s %7s   (per step, mean of %d steps of %.1f ms)\n", "kernel", "calls", "ms",
              "share", steps, per_step);
  for (const KernelProfileRow& r : kernel_profile()) {
    in_kernels += r.ms / steps;
    std::printf("%-34s %10.1f %10.2f %6.1f%%\n", r.kernel.c_str(), static_cast<double>(r.calls) / steps,
                r.ms / steps, 100.0 * r.ms / total);
  }
  std::printf("%-34s %10s %10.2f %6.1f%%\n", "(outside kernels)", "", per_step - in_kernels,
              100.0 * (per_step - in_kernels) / per_step);
}

void run_bench(const BenchOptions& o) {
  IRIS_CHECK(o.mode == "train" || o.mode == "sample", "bench: --mode must be train or sample, got '", o.mode,
             "'");
  IRIS_CHECK(o.precision == "f32" || o.precision == "tf32" || o.precision == "bf16",
             "bench: --precision must be f32, tf32 or bf16, got '", o.precision, "'");
  IRIS_CHECK(o.steps >= 1 && o.warmup >= 0, "bench: --steps must be at least 1 and --warmup at least 0");
  if (o.threads > 0) set_num_threads(o.threads);
  cpu::ConvCpuTuning tuning = cpu::conv_cpu_tuning();
  cpu::apply_conv_method(tuning, o.cpu_conv, "bench: --cpu-conv");
  cpu::set_conv_cpu_tuning(tuning);
  const std::string cpu_conv = cpu::conv_method_name(tuning);
  // The process's resident memory before the model exists: the CPU's peak is reported above it, as
  // tools/scripts/bench_pytorch.py reports PyTorch's.
  const size_t rss_start = memory_usage(Device::cpu()).current;
  Config cfg = Config::load(o.config);
  for (const auto& kv : o.sets) cfg.set(kv);
  const Device device = resolve_device(o.device);
  const int64_t batch = o.batch > 0 ? o.batch : cfg.get_int("train.batch_size");
  set_tf32_enabled(o.precision == "tf32");
  set_conv_search(cfg.get_string("train.conv_search"), "train.conv_search");

  Generator init(0);
  diffusion::UNet net(diffusion::UNetConfig::from_config(cfg), init);
  net.to(device);
  const auto& u = net.config();
  optim::AdamW opt(net.named_parameters(), 1e-4);

  Generator data(1);
  std::vector<Inputs> inputs(2);
  for (auto& in : inputs) {
    in.x = randn({batch, u.resolution, u.resolution, u.in_channels}, data, DType::f32, device);
    in.gamma = rand({batch}, data, DType::f32, device, 0.01, 0.99);
    in.target = randn({batch, u.resolution, u.resolution, u.out_channels}, data, DType::f32, device);
    if (u.num_classes > 0) {  // every class in turn, the two input sets shifted by one
      std::vector<int64_t> labels(static_cast<size_t>(batch));
      for (int64_t i = 0; i < batch; ++i) labels[i] = (i + (&in - inputs.data())) % u.num_classes;
      in.labels = Tensor::from_vector(labels, {batch}, device);
    }
  }
  const bool train = o.mode == "train";
  net.train(train);
  IRIS_CHECK(!o.graphs || (!train && device.is_cuda()),
             "bench: --graphs is for --mode sample on a CUDA device (training steps are not captured yet)");
  // --graphs: the forward captured once (after one eager warm-up run) and replayed (replay_graph.h); the
  // timed step then includes copying the inputs into the graph's and its output out, as in sampling.
  GraphedFunction graphed("bench", o.graphs ? cuda_graph_capturer() : nullptr);

  auto step = [&](const Inputs& in) {
    AutocastGuard autocast(o.precision == "bf16");
    if (train) {
      Tensor loss = l1_loss(net.forward(in.x, in.gamma, in.labels).to(DType::f32), in.target);
      loss.backward();
      opt.step();
      opt.zero_grad();
    } else {
      NoGradGuard ng;
      (void)graphed({in.x, in.gamma, in.labels}, o.precision, [&net](const std::vector<Tensor>& v) {
        return net.forward(v[0], v[1], v[2]);
      });
    }
  };

  std::printf("iris bench: %s, %s\n", o.config.c_str(), compute_banner(device).c_str());
  for (int i = 0; i < o.warmup; ++i) step(inputs[i % 2]);
  synchronize(device);
  reset_peak_memory(device);
  reset_host_storage_peak();
  set_kernel_profiling(o.profile && device.is_cpu());
  reset_kernel_profile();
  DeviceTimer timer(device);
  std::vector<double> ms, host_ms;
  for (int i = 0; i < o.steps; ++i) {
    timer.start();
    const auto queued_from = std::chrono::steady_clock::now();
    step(inputs[i % 2]);
    host_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - queued_from).count());
    ms.push_back(timer.stop_ms());
  }
  const auto median_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  set_kernel_profiling(false);
  const double median = median_of(ms);
  const double host_median = median_of(host_ms);
  const auto [fastest, slowest] = std::minmax_element(ms.begin(), ms.end());
  const double flops =
      (train ? net.train_flops_per_sample() : net.flops_per_sample()) * static_cast<double>(batch);
  const double img_s = static_cast<double>(batch) * 1000.0 / median;
  const double tflops = flops / (median / 1000.0) / 1e12;
  // GPU: the allocator's peak; CPU: the peak of live tensor storage (exact, and reset above, unlike the RSS).
  const MemoryUsage mem = memory_usage(device);
  const size_t peak = device.is_cpu() ? host_storage_bytes().peak : mem.peak;

  std::printf("\n%-12s %s parameters, %.1f GFLOP per image (%s)\n", "model",
              with_commas(net.num_parameters()).c_str(),
              (train ? net.train_flops_per_sample() : net.flops_per_sample()) / 1e9,
              train ? "forward + backward" : "forward");
  const std::string search = device.is_cuda() ? ", convolution algorithms: " + conv_search() : "";
  std::printf("%-12s %s, %s, batch %lld, %d steps after %d warm-up%s\n", "step", o.mode.c_str(),
              o.precision.c_str(), static_cast<long long>(batch), o.steps, o.warmup, search.c_str());
  if (device.is_cpu())
    std::printf("%-12s %s\n", "convolutions",
                cpu_conv == "im2col" ? "im2col + GEMM"
                                     : ("oneDNN (" + cpu_conv +
                                        " where it applies, see framework/cpu/conv_onednn.h), else im2col + GEMM")
                                           .c_str());
  std::printf("%-12s median %.2f  (min %.2f, max %.2f)\n", "ms/step", median, *fastest, *slowest);
  if (device.is_cuda())
    std::printf("%-12s median %.2f ms to queue a step (%.0f%% of the step: near 100%% means host-bound)\n",
                "host", host_median, 100.0 * host_median / median);
  std::printf("%-12s %.1f\n", "img/s", img_s);
  std::printf("%-12s %.2f\n", "TFLOP/s", tflops);
  const std::string what = device.is_cpu() ? " (tensor storage; process peak RSS " +
                                                 human_bytes(static_cast<double>(mem.peak)) + ")"
                                           : std::string(" (allocator peak)");
  std::printf("%-12s %s%s\n", "peak memory", human_bytes(static_cast<double>(peak)).c_str(), what.c_str());
  if (o.profile && device.is_cpu()) print_kernel_profile(ms, o.steps);
  nlohmann::json j = {{"params", net.num_parameters()},
                      {"batch", batch},
                      {"mode", o.mode},
                      {"precision", o.precision},
                      {"device", device.str()},
                      {"step_ms", median},
                      {"host_ms", host_median},
                      {"steps_ms", ms},
                      {"img_per_s", img_s},
                      {"tflops", tflops},
                      {"peak_bytes", peak}};
  if (device.is_cuda()) j["conv_search"] = conv_search();
  if (o.graphs) {
    const GraphedFunction::Stats& g = graphed.stats();
    std::printf("%-12s %lld captured, %lld replays, %lld failed%s%s\n", "CUDA graphs",
                static_cast<long long>(g.captures), static_cast<long long>(g.replays),
                static_cast<long long>(g.failed), g.failed ? ": " : "", graphed.last_failure().c_str());
    j["graphs"] = {{"captures", g.captures}, {"replays", g.replays}, {"failed", g.failed}};
  }
  if (device.is_cpu()) {
    j["cpu_conv"] = cpu_conv;
    j["threads"] = num_threads();
    j["peak_rss_bytes"] = mem.peak > rss_start ? mem.peak - rss_start : 0;
  }
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace

void register_bench(CLI::App& app) {
  auto opts = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand(
      "bench", "Time the U-Net training or sampling step of a config (see tools/bench/SR3_BENCH.md)");
  cmd->add_option("--config", opts->config, "model config (TOML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--mode", opts->mode, "train (forward, L1, backward, AdamW) or sample (forward only)");
  cmd->add_option("--precision", opts->precision, "f32, tf32 or bf16 (autocast)");
  cmd->add_option("--batch", opts->batch, "batch size (default: the config's train.batch_size)");
  cmd->add_option("--steps", opts->steps, "timed steps (the median is reported)");
  cmd->add_option("--warmup", opts->warmup, "untimed steps first");
  cmd->add_option("--device", opts->device, "auto, cpu, cuda or cuda:N");
  cmd->add_option("--threads", opts->threads, "CPU threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cpu-conv", opts->cpu_conv,
                  "CPU convolutions: auto (IRIS_CPU_CONV, else winograd when built with oneDNN), winograd (oneDNN, Winograd where it "
                  "applies), direct (oneDNN's direct method) or im2col (im2col + OpenBLAS)");
  cmd->add_flag("--graphs", opts->graphs,
                "--mode sample on a GPU: run the forward through a captured CUDA graph (one launch per step)");
  cmd->add_flag("--profile", opts->profile,
               "CPU: time every kernel over the timed steps and print where the step's time goes");
  cmd->add_option("--set", opts->sets,
                  "override a config key, e.g. --set model.checkpoint_res_blocks=true (repeatable)");
  cmd->callback([opts] { run_bench(*opts); });
}

}  // namespace iris::tools
