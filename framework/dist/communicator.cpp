// The Communicator front end (argument checks shared by every backend), the local backend, launcher
// detection, init_distributed and abort_job.
#include "framework/dist/communicator.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "framework/autograd/grad_mode.h"
#include "framework/dist/backends.h"
#include "framework/dist/rendezvous.h"
#include "framework/dist/watchdog.h"

namespace iris::dist {

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::automatic:
      return "auto";
    case Backend::local:
      return "local";
    case Backend::mpi:
      return "mpi";
    case Backend::nccl:
      return "nccl";
  }
  return "?";
}

Backend backend_from_name(const std::string& name) {
  for (Backend b : {Backend::automatic, Backend::local, Backend::mpi, Backend::nccl})
    if (name == backend_name(b)) return b;
  IRIS_THROW("unknown distributed backend '", name, "' (expected auto, local, mpi or nccl)");
}

const char* reduce_name(Reduce op) {
  return op == Reduce::sum ? "sum" : "avg";
}

// ---- Communicator: checks shared by every backend ---------------------------------------------------------

Communicator::Communicator(Backend backend, Device device, int rank, int size, int local_rank, int local_size,
                           double timeout_s)
    : backend_(backend),
      device_(device),
      rank_(rank),
      size_(size),
      local_rank_(local_rank),
      local_size_(local_size),
      watchdog_(std::make_shared<Watchdog>(timeout_s)) {
  IRIS_ASSERT(size >= 1 && rank >= 0 && rank < size && local_rank >= 0 && local_rank < local_size);
}

Communicator::~Communicator() = default;

std::string Communicator::describe() const {
  return detail::cat(backend_name(backend_), " rank ", rank_, " of ", size_, " (local ", local_rank_, " of ",
                     local_size_, ") on ", device_.str());
}

std::string Communicator::op_label(const char* op, const Tensor& t, const std::string& extra) {
  return detail::cat(op, extra, " ", t.summary(), " (collective #", ++op_count_, " of ",
                     backend_name(backend_), " rank ", rank_, " of ", size_, ")");
}

void Communicator::check_tensor(const Tensor& t, const char* op, const char* what) const {
  check_defined(t, op, what);
  if (backend_ != Backend::local)
    IRIS_CHECK(
        t.device() == device_, op, ": the ", backend_name(backend_), " communicator moves tensors on ",
        device_.str(), ", got ", what, " ", t.summary(),
        backend_ == Backend::mpi && t.device().is_cuda() ? " (use the nccl backend for GPU tensors)" : "");
}

void Communicator::check_reduce_dtype(const Tensor& t, Reduce op, const char* name) const {
  const DType dt = t.dtype();
  IRIS_CHECK(dt != DType::u8, name, ": u8 ", t.summary(),
             " cannot be summed over ranks (the values would wrap); broadcast and all_gather take u8");
  IRIS_CHECK(op == Reduce::sum || is_floating(dt), name, "(avg): ", t.summary(),
             " is an integer tensor; an average over ranks needs a floating dtype (use sum)");
}

void Communicator::do_all_reduce(Tensor& t, Reduce op) {
  do_all_reduce_async(t, op).wait();
}

void Communicator::all_reduce(Tensor& t, Reduce op) {
  check_tensor(t, "all_reduce", "tensor");
  check_reduce_dtype(t, op, "all_reduce");
  if (t.numel() == 0) return;
  NoGradGuard no_grad;
  if (t.is_contiguous()) {
    do_all_reduce(t, op);
    t.storage()->bump_version();
    return;
  }
  Tensor tmp = t.contiguous();  // a copy: non-contiguous views go through a packed buffer
  do_all_reduce(tmp, op);
  t.copy_(tmp);
}

Work Communicator::all_reduce_async(Tensor& t, Reduce op) {
  check_tensor(t, "all_reduce_async", "tensor");
  check_reduce_dtype(t, op, "all_reduce_async");
  IRIS_CHECK(t.is_contiguous(), "all_reduce_async: the tensor ", t.summary(), " with strides ",
             shape_str(t.strides()), " is not contiguous (reduce a contiguous buffer and copy it back)");
  if (t.numel() == 0) return Work();
  NoGradGuard no_grad;
  t.storage()->bump_version();
  return do_all_reduce_async(t, op);
}

void Communicator::broadcast(Tensor& t, int root) {
  check_tensor(t, "broadcast", "tensor");
  IRIS_CHECK(root >= 0 && root < size_, "broadcast: root ", root,
             " is not a rank of this communicator (size ", size_, ")");
  if (t.numel() == 0) return;
  NoGradGuard no_grad;
  if (t.is_contiguous()) {
    do_broadcast(t, root);
    t.storage()->bump_version();
    return;
  }
  Tensor tmp = t.contiguous();
  do_broadcast(tmp, root);
  t.copy_(tmp);
}

void Communicator::all_gather(const Tensor& in, Tensor& out) {
  check_tensor(in, "all_gather", "input");
  check_tensor(out, "all_gather", "output");
  Shape expected{size_};
  expected.insert(expected.end(), in.shape().begin(), in.shape().end());
  IRIS_CHECK(out.shape() == expected && out.dtype() == in.dtype() && out.device() == in.device(),
             "all_gather: output ", out.summary(), " must be ", dtype_name(in.dtype()), shape_str(expected),
             " ", in.device().str(), " for input ", in.summary(), " over ", size_, " ranks");
  if (in.numel() == 0) return;
  NoGradGuard no_grad;
  const Tensor src = in.contiguous();
  if (out.is_contiguous()) {
    do_all_gather(src, out);
    out.storage()->bump_version();
    return;
  }
  Tensor tmp = Tensor::empty(out.shape(), out.dtype(), out.device());
  do_all_gather(src, tmp);
  out.copy_(tmp);
}

void Communicator::barrier() {
  do_barrier();
}

// ---- the local backend: one process, nothing to move ------------------------------------------------------

namespace {

class LocalCommunicator final : public Communicator {
 public:
  LocalCommunicator(Device device, double timeout_s)
      : Communicator(Backend::local, device, 0, 1, 0, 1, timeout_s) {}

 protected:
  // Sum and average over one rank are the identity.
  Work do_all_reduce_async(Tensor&, Reduce) override { return Work(); }
  void do_broadcast(Tensor&, int) override {}
  void do_all_gather(const Tensor& in, Tensor& out) override { out.view(in.shape()).copy_(in); }
  void do_barrier() override {}
};

// Parses a whole decimal integer; throws naming the variable otherwise.
bool env_int(const EnvLookup& get, const char* key, int& out) {
  const char* v = get(key);
  if (!v || !*v) return false;
  const char* end = v + std::strlen(v);
  int value = 0;
  const auto [ptr, ec] = std::from_chars(v, end, value);
  IRIS_CHECK(ec == std::errc() && ptr == end, "launcher environment variable ", key, "='", v,
             "' is not an integer");
  out = value;
  return true;
}

EnvLookup or_getenv(const EnvLookup& fn) {
  if (fn) return fn;
  return [](const char* k) -> const char* { return std::getenv(k); };
}

}  // namespace

namespace internal {
std::shared_ptr<Communicator> make_local_communicator(Device device, double timeout_s) {
  return std::make_shared<LocalCommunicator>(device, timeout_s);
}
}  // namespace internal

// ---- launcher detection -----------------------------------------------------------------------------------

LauncherInfo detect_launcher(const EnvLookup& getenv_fn) {
  const EnvLookup get = or_getenv(getenv_fn);
  LauncherInfo info;
  int v = 0;
  // Open MPI first: its mpirun inside a Slurm allocation starts its daemons with srun, so the processes may
  // also carry SLURM_* variables that describe the daemons, not the ranks.
  if (env_int(get, "OMPI_COMM_WORLD_SIZE", v)) {
    info.name = "openmpi";
    info.world_size = v;
    info.rank = env_int(get, "OMPI_COMM_WORLD_RANK", v) ? v : -1;
    if (env_int(get, "OMPI_COMM_WORLD_LOCAL_RANK", v)) info.local_rank = v;
    if (env_int(get, "OMPI_COMM_WORLD_LOCAL_SIZE", v)) info.local_size = v;
  } else if (get("SLURM_STEP_ID") && env_int(get, "SLURM_PROCID", v)) {
    info.name = "slurm";
    info.rank = v;
    info.world_size = env_int(get, "SLURM_STEP_NUM_TASKS", v) || env_int(get, "SLURM_NTASKS", v) ? v : -1;
    if (env_int(get, "SLURM_LOCALID", v)) info.local_rank = v;
    const char* per_node = get("SLURM_STEP_TASKS_PER_NODE");
    if (per_node && env_int(get, "SLURM_NODEID", v)) {
      const int n = slurm_tasks_on_node(per_node, v);
      if (n > 0) info.local_size = n;
    }
  } else if (env_int(get, "PMI_SIZE", v)) {
    info.name = "pmi";
    info.world_size = v;
    info.rank = env_int(get, "PMI_RANK", v) ? v : -1;
    if (env_int(get, "MPI_LOCALRANKID", v)) info.local_rank = v;  // MPICH / Intel MPI hydra
    if (env_int(get, "MPI_LOCALNRANKS", v)) info.local_size = v;
  } else if (env_int(get, "PMIX_RANK", v)) {
    info.name = "pmix";
    info.rank = v;
    info.world_size = -1;
  }
  if (info.detected()) {
    IRIS_CHECK(info.world_size == -1 || info.world_size >= 1, "launcher ", info.name, " says the job has ",
               info.world_size, " processes");
    IRIS_CHECK(info.rank == -1 || info.world_size == -1 || (info.rank >= 0 && info.rank < info.world_size),
               "launcher ", info.name, " says this is rank ", info.rank, " of ", info.world_size);
  }
  return info;
}

int cuda_device_for_local_rank(int local_rank, int local_size, int visible_devices,
                               const char* cuda_visible_devices) {
  IRIS_CHECK(local_rank >= 0 && local_rank < local_size, "local rank ", local_rank, " is not below the ",
             local_size, " processes of this node");
  if (visible_devices >= local_size) return local_rank;
  // A launcher that binds one GPU per task (srun --gpus-per-task=1, or a wrapper script) leaves each process
  // exactly one visible device: that one is ours. (Two ranks given the same GPU this way are refused by NCCL
  // at initialisation: "Duplicate GPU detected".)
  const bool one_listed =
      cuda_visible_devices && *cuda_visible_devices && std::strchr(cuda_visible_devices, ',') == nullptr;
  if (visible_devices == 1 && one_listed) return 0;
  IRIS_THROW("this node runs ", local_size, " ranks (this is local rank ", local_rank, ") but only ",
             visible_devices, " CUDA device(s) are visible",
             cuda_visible_devices ? detail::cat(" (CUDA_VISIBLE_DEVICES=", cuda_visible_devices, ")") : "",
             ": start at most one rank per GPU on each node");
}

double default_collective_timeout(const EnvLookup& getenv_fn) {
  const EnvLookup get = or_getenv(getenv_fn);
  const char* v = get("IRIS_COLLECTIVE_TIMEOUT");
  if (!v || !*v) return 600.0;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  IRIS_CHECK(end && *end == '\0' && s >= 0 && s < 1e9, "IRIS_COLLECTIVE_TIMEOUT='", v,
             "' must be a number of seconds >= 0 (0: no timeout)");
  return s;
}

// ---- init_distributed -------------------------------------------------------------------------------------

std::shared_ptr<Communicator> init_distributed(Backend backend, Device device, const DistOptions& options) {
  const double timeout =
      options.collective_timeout_s >= 0 ? options.collective_timeout_s : default_collective_timeout();
  const LauncherInfo launcher = detect_launcher();
  if (backend == Backend::automatic) {
    if (!launcher.detected())
      backend = Backend::local;
    else
      backend = device.is_cuda() ? Backend::nccl : Backend::mpi;
  }
  switch (backend) {
    case Backend::local:
      return internal::make_local_communicator(device, timeout);
    case Backend::mpi:
      IRIS_CHECK(device.is_cpu(), "init_distributed: the mpi backend moves CPU tensors, got device ",
                 device.str(), " (use nccl for GPUs)");
      return internal::make_mpi_communicator(launcher, timeout);
    case Backend::nccl:
      IRIS_CHECK(device.is_cuda(), "init_distributed: the nccl backend needs a CUDA device, got ",
                 device.str());
      return internal::make_nccl_communicator(launcher, device, timeout);
    case Backend::automatic:
      break;
  }
  IRIS_THROW("init_distributed: unknown backend");
}

// ---- abort_job --------------------------------------------------------------------------------------------

[[noreturn]] void abort_job(const std::string& message) {
  int rank = internal::mpi_world_rank_if_initialized();
  if (rank < 0) {
    const LauncherInfo l = [] {
      try {
        return detect_launcher();
      } catch (...) {
        return LauncherInfo{};
      }
    }();
    rank = l.rank >= 0 ? l.rank : 0;
  }
  std::fflush(stdout);
  std::fprintf(stderr, "rank %d: %s\n", rank, message.c_str());
  std::fflush(stderr);
  internal::mpi_abort_if_initialized(1);
  // Without MPI (or if MPI_Abort returned): end this process now. _Exit, not exit: other threads (the
  // watchdog, OpenMP workers) may be running, and static destructors must not race with them.
  std::_Exit(1);
}

// ---- helpers ----------------------------------------------------------------------------------------------

std::vector<double> reduce_values(Communicator& comm, const std::vector<double>& values, Reduce op) {
  if (comm.size() == 1) return values;
  const Device dev = comm.backend() == Backend::local ? Device::cpu() : comm.device();
  Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, DType::f64, Device::cpu());
  if (dev.is_cuda()) t = t.to(dev);
  comm.all_reduce(t, op);
  return t.to_vector<double>();
}

double average_over_ranks(Communicator& comm, double value) {
  return reduce_values(comm, {value})[0];
}

}  // namespace iris::dist
