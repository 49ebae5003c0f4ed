// Communicator: the collectives of data-parallel training, over one process (local), MPI (host tensors)
// or NCCL (CUDA tensors, bootstrapped through MPI).
//
// Launch: `mpirun -np N iris ...`, Slurm `srun` (PMI/PMIx) or a plain process. init_distributed(auto)
// decides from the launcher's environment variables alone, so a plain process never initialises MPI (and
// works on a machine whose MPI is broken or missing). Ranks per node come from the launcher (or from
// MPI_Comm_split_type), never from a constant, and each rank of a node takes the GPU of its local rank.
//
// Every collective must be called by every rank of the communicator in the same order. A collective that
// has not completed after the collective timeout (IRIS_COLLECTIVE_TIMEOUT seconds, default 600; 0 turns the
// watchdog off) ends the whole job through abort_job() with a message naming the operation: a hang inside
// MPI or NCCL cannot be turned into an exception, because the waiting thread never returns.
//
// Failure handling for programs: the library throws iris::Error like everywhere else; the top level of a
// distributed program catches it and calls abort_job(), which prints "rank R: message" and ends every rank
// (MPI_Abort), so that one failing rank never leaves the others waiting forever in a collective.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::dist {

enum class Reduce { sum, avg };  // avg: the sum divided by size(); floating dtypes only
enum class Backend { automatic, local, mpi, nccl };

const char* backend_name(Backend b);                 // "auto", "local", "mpi", "nccl"
Backend backend_from_name(const std::string& name);  // the inverse; throws iris::Error on anything else
const char* reduce_name(Reduce op);

// The handle of a collective started asynchronously. Keeps the tensor it works on alive until completed.
//   MPI:  wait() blocks the host until the reduction is done (and finishes an average); test() polls, which
//         also lets MPI make progress (Open MPI progresses non-blocking collectives only inside MPI calls).
//   NCCL: wait() makes the device's compute stream wait for the comm stream (no host synchronisation);
//         test() asks whether the device has finished; synchronize() blocks the host until it has.
// A default-constructed Work is already complete. Destroying an unfinished Work waits for it (it never
// abandons a buffer that MPI or NCCL is still writing).
class Work {
 public:
  class Impl {
   public:
    virtual ~Impl() = default;
    virtual void wait() = 0;
    virtual bool test() = 0;
    virtual void synchronize() { wait(); }
  };
  Work() = default;
  explicit Work(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  void wait() {
    if (impl_) impl_->wait();
  }
  bool test() { return !impl_ || impl_->test(); }
  void synchronize() {
    if (impl_) impl_->synchronize();
  }

 private:
  std::shared_ptr<Impl> impl_;
};

struct DistOptions {
  // Seconds a collective may take before the job is aborted; < 0: IRIS_COLLECTIVE_TIMEOUT from the
  // environment, else 600. 0 turns the watchdog off.
  double collective_timeout_s = -1;
};

class Watchdog;

class Communicator {
 public:
  virtual ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes of this node
  int local_size() const { return local_size_; }  // processes on this node
  Backend backend() const { return backend_; }
  // Where the tensors this communicator moves must live (the local backend accepts any device).
  Device device() const { return device_; }
  bool is_root() const { return rank_ == 0; }
  std::string describe() const;  // "mpi rank 1 of 4 (local 1 of 2) on cpu"

  // Blocking collectives return once the result is there for every later op: MPI on return, NCCL in the
  // order of the device's compute stream (the host is not synchronised; reading the values on the host does).
  //
  // In place: every rank ends with the sum (or average) over ranks, elementwise. f32/f64/bf16 (bf16 reduced
  // in f32 by MPI, natively by NCCL); i32/i64 for sum only. Any strides (non-contiguous tensors go through a
  // contiguous copy).
  void all_reduce(Tensor& t, Reduce op);
  // The same, started without waiting; `t` must be contiguous and must not be touched until wait().
  Work all_reduce_async(Tensor& t, Reduce op);
  // Every rank ends with root's values. Every dtype.
  void broadcast(Tensor& t, int root);
  // out[r] = `in` of rank r. out: [size(), in.shape...], same dtype and device as `in`. Every dtype.
  void all_gather(const Tensor& in, Tensor& out);
  // Returns once every rank has entered it.
  void barrier();

 protected:
  Communicator(Backend backend, Device device, int rank, int size, int local_rank, int local_size,
               double timeout_s);
  // Backends implement these on validated tensors: contiguous, on device(), dtype accepted by check_dtype.
  virtual Work do_all_reduce_async(Tensor& t, Reduce op) = 0;
  virtual void do_broadcast(Tensor& t, int root) = 0;
  virtual void do_all_gather(const Tensor& in, Tensor& out) = 0;
  virtual void do_barrier() = 0;
  // Blocking all-reduce: the result is there for every later op (MPI: on return; NCCL: in the compute
  // stream's order). By default the asynchronous one, waited for.
  virtual void do_all_reduce(Tensor& t, Reduce op);

  // "all_reduce(avg) f32[1000] #17": how an operation is named in errors and timeout messages.
  std::string op_label(const char* op, const Tensor& t, const std::string& extra = "");
  Watchdog& watchdog() { return *watchdog_; }
  // For asynchronous work that may outlive this communicator.
  const std::shared_ptr<Watchdog>& shared_watchdog() const { return watchdog_; }

 private:
  void check_tensor(const Tensor& t, const char* op, const char* what) const;
  void check_reduce_dtype(const Tensor& t, Reduce op, const char* name) const;

  Backend backend_;
  Device device_;
  int rank_, size_, local_rank_, local_size_;
  uint64_t op_count_ = 0;
  std::shared_ptr<Watchdog> watchdog_;
};

// Chooses and starts a communicator.
//   automatic: MPI (or NCCL when `device` is a CUDA device and Iris was built with NCCL) when a launcher is
//              detected (detect_launcher), else local. A plain process never initialises MPI.
//   local:     one process, no communication, nothing initialised.
//   mpi:       MPI (initialised here, once per process, finalised at exit), host tensors.
//   nccl:      NCCL on a CUDA device; MPI bootstraps it when a launcher is detected or MPI is already
//              initialised (or, with IRIS_RENDEZVOUS_DIR, a file in a shared folder: rendezvous.h), else it
//              is a one-rank NCCL communicator without MPI.
// `device` is where the tensors will live. For CUDA with several ranks on a node, rank i of the node uses
// device cuda_device_for_local_rank(...) (its local rank) whatever index `device` has; with one rank on the
// node the given device is kept. communicator->device() says which was chosen.
// Each call makes a new communicator (for MPI a duplicate of MPI_COMM_WORLD, so that two never mix up
// their messages).
std::shared_ptr<Communicator> init_distributed(Backend backend = Backend::automatic,
                                               Device device = Device::cpu(),
                                               const DistOptions& options = {});

// Prints "rank R: message" to stderr and ends the whole job: MPI_Abort when MPI is initialised (every rank
// of the job is killed by the launcher within seconds), else this process exits with status 1. Only for the
// top level of a program (its catch block) or the collective watchdog: the library itself never exits.
[[noreturn]] void abort_job(const std::string& message);

// ---- launcher detection (pure functions of the environment; `getenv` is replaceable for tests) ----------

using EnvLookup = std::function<const char*(const char*)>;  // like std::getenv: nullptr when unset

struct LauncherInfo {
  std::string name;     // "openmpi", "slurm", "pmi", "pmix" or "" (no launcher: a plain process)
  int world_size = 1;   // -1 when the launcher does not say (PMIx)
  int rank = 0;         // -1 when unknown
  int local_rank = -1;  // -1 when the launcher does not say (then MPI_Comm_split_type decides)
  int local_size = -1;
  bool detected() const { return !name.empty(); }
};

// Reads OMPI_COMM_WORLD_{SIZE,RANK,LOCAL_RANK,LOCAL_SIZE} (Open MPI's mpirun); SLURM_NTASKS, SLURM_PROCID,
// SLURM_LOCALID, SLURM_STEP_ID (Slurm's srun: a batch script alone has no SLURM_STEP_ID and is not a launch);
// PMI_SIZE, PMI_RANK (MPICH/Intel MPI's hydra, PMI-1/2); PMIX_RANK (PMIx). Throws iris::Error naming the
// variable when one is present but not a number.
LauncherInfo detect_launcher(const EnvLookup& getenv_fn = nullptr);

// The CUDA device index for a rank: its local rank when the node has at least local_size visible devices.
// When every rank sees exactly one device because the launcher bound one GPU per rank (CUDA_VISIBLE_DEVICES
// holds one entry), device 0. Otherwise throws iris::Error saying how many devices and local ranks there are.
int cuda_device_for_local_rank(int local_rank, int local_size, int visible_devices,
                               const char* cuda_visible_devices);

// The collective timeout that DistOptions{} means: IRIS_COLLECTIVE_TIMEOUT (seconds, >= 0) when set, else
// 600.
double default_collective_timeout(const EnvLookup& getenv_fn = nullptr);

// ---- helpers for the training loop -----------------------------------------------------------------------

// Averages (or sums) host values over ranks, e.g. the loss and metrics a rank computed on its slice of the
// batch, for logging: a collective (every rank must call it with the same number of values). Reduced in f64.
std::vector<double> reduce_values(Communicator& comm, const std::vector<double>& values,
                                  Reduce op = Reduce::avg);
double average_over_ranks(Communicator& comm, double value);

}  // namespace iris::dist
