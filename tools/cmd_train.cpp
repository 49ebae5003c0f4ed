// `iris train`: trains a stage (SR3, class-conditional base, or SR with conditioning augmentation) as its
// config says, on the GPU when there is one, else the CPU; resumable; SIGTERM/SIGINT finish the current
// step, write a checkpoint and exit 0 (cluster preemption).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "diffusion/trainer.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/communicator.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace iris::tools {

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) {
  g_stop.store(true);
}

struct TrainOptions {
  std::string config, run, resume, device;
  std::vector<std::string> sets;
  int threads = 0;
  int64_t stop_after = -1;
  double time_limit_minutes = 0;
};

void run_train(const TrainOptions& o) {
  Config cfg = Config::load(o.config);
  for (const auto& s : o.sets) cfg.set(s);
  if (!o.device.empty()) cfg.set("train.device=" + o.device);
  if (o.threads > 0) set_num_threads(o.threads);
  Device device = resolve_device(cfg.get_string("train.device"));
  diffusion::TrainerOptions t;
  // Under mpirun/srun: one rank per process, each on its node-local GPU (a plain process stays local and
  // never initialises MPI).
  t.comm = launch_communicator(device);
  const bool report = !t.comm || t.comm->rank() == 0;  // rank 0 reports; errors reach stderr from any rank
  t.run_dir = o.run.empty()
                  ? (std::filesystem::path("runs") / std::filesystem::path(o.config).stem()).string()
                  : o.run;
  t.resume = o.resume;
  t.device = device;
  t.stop_after = o.stop_after;
  t.time_limit_seconds = o.time_limit_minutes * 60.0;
  t.stop_flag = &g_stop;
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  if (report)
    std::printf("iris train: %s -> %s\n%s\n# resolved configuration\n%s\n", o.config.c_str(),
                t.run_dir.c_str(), compute_banner(device).c_str(), cfg.to_toml().c_str());
  std::fflush(stdout);
  diffusion::Trainer trainer(cfg, t);
  const diffusion::TrainResult r = trainer.run();
  if (!report) return;
  if (r.stopped_early)
    std::printf("stopped at step %lld (%s); resume with --resume auto\n", static_cast<long long>(r.step),
                r.stop_reason.c_str());
  else if (r.steps_run == 0)
    std::printf("done: nothing to train (already at step %lld), checkpoint %s\n",
                static_cast<long long>(r.step), r.last_checkpoint.c_str());
  else
    std::printf("done: step %lld, last loss %.4f, checkpoint %s\n", static_cast<long long>(r.step),
                r.last_loss, r.last_checkpoint.c_str());
}

}  // namespace

void register_train(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", "Train a diffusion model (SR3, base, cascade stage) from a config");
  cmd->add_option("--config", o->config, "config file (TOML; see configs/ and `iris config --keys`)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", o->sets, "override a config key: --set train.lr=2e-4 (repeatable)");
  cmd->add_option("--run", o->run,
                  "run folder for checkpoints, samples and metrics (default runs/<config name>)");
  cmd->add_option("--resume", o->resume,
                  "auto (newest valid checkpoint in the run folder) or a checkpoint path");
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N (default: the config's train.device)");
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--stop-after", o->stop_after,
                  "stop (with a checkpoint) after this many steps in this process")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option(
         "--time-limit", o->time_limit_minutes,
         "stop (with a checkpoint) after this many minutes of training in this process (job time limits)")
      ->check(CLI::PositiveNumber);
  cmd->callback([o] { run_train(*o); });
}

}  // namespace iris::tools
