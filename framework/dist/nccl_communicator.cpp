// The NCCL backend: collectives over CUDA tensors on the device's comm stream.
//
// Ordering without host synchronisation (the llm.c pattern): before a collective, an event recorded on the
// compute stream makes the comm stream wait for the kernels that produced the data; after it, an event on the
// comm stream marks completion, and Work::wait() makes the compute stream wait on that event. The host never
// blocks except in barrier() and Work::synchronize().
//
// Bootstrap: with a launcher (or MPI already initialised), rank 0 makes the ncclUniqueId and MPI_Bcast sends
// its bytes to every rank; the local rank (launcher variables or MPI_Comm_split_type) picks the GPU. With
// IRIS_RENDEZVOUS_DIR set, MPI is not used at all: the launcher's variables give rank and placement and a
// file in that shared folder carries the id (framework/dist/rendezvous.h). Without a launcher, a one-rank
// NCCL communicator is made without MPI.
//
// Errors: every NCCL call is checked and reported with the rank and the operation, with NCCL's last error
// text. The watchdog polls each collective's completion event and ncclCommGetAsyncError, so that an
// asynchronous NCCL failure or a hung kernel also ends the job with a message.
#include "framework/dist/backends.h"

#ifdef IRIS_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "framework/cuda/check.h"
#include "framework/cuda/context.h"
#include "framework/dist/mpi_util.h"
#include "framework/dist/rendezvous.h"
#include "framework/dist/watchdog.h"
#endif

namespace iris::dist::internal {

#ifndef IRIS_WITH_NCCL

std::shared_ptr<Communicator> make_nccl_communicator(const LauncherInfo&, Device, double) {
  IRIS_THROW(
      "init_distributed(nccl): Iris was built without NCCL (IRIS_NCCL=OFF; it needs IRIS_CUDA, IRIS_MPI "
      "and the NCCL library)");
}

#else

namespace {

ncclDataType_t nccl_type(DType dt) {
  switch (dt) {
    case DType::f32:
      return ncclFloat32;
    case DType::f64:
      return ncclFloat64;
    case DType::bf16:
      return ncclBfloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
    case DType::u8:
      return ncclUint8;
  }
  IRIS_THROW("nccl: unsupported dtype");
}

using EventPtr = std::shared_ptr<CUevent_st>;

EventPtr make_event() {
  cudaEvent_t e = nullptr;
  IRIS_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  // Destroying an event whose record is still pending is allowed: the runtime releases it once it fires.
  return EventPtr(e, [](cudaEvent_t ev) { cudaEventDestroy(ev); });
}

// True once the event fired; false while pending; throws on a CUDA error.
bool event_done(cudaEvent_t e) {
  const cudaError_t q = cudaEventQuery(e);
  if (q == cudaSuccess) return true;
  if (q == cudaErrorNotReady) return false;
  IRIS_CUDA_CHECK(q);
  return false;
}

class NcclWork final : public Work::Impl {
 public:
  NcclWork(EventPtr done, int device, Tensor keep)
      : done_(std::move(done)), device_(device), keep_(std::move(keep)) {}
  ~NcclWork() override {
    if (waited_) return;
    try {
      wait();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "iris: ordering an unfinished NCCL collective failed: %s\n", e.what());
    }
  }
  void wait() override {
    if (waited_) return;
    cuda::DeviceGuard guard(device_);
    IRIS_CUDA_CHECK(cudaStreamWaitEvent(cuda::context(device_).compute, done_.get(), 0));
    waited_ = true;
    // The compute stream now waits for the collective, so freeing the buffer (stream-ordered on compute)
    // can no longer overtake it.
    keep_ = Tensor();
  }
  bool test() override { return event_done(done_.get()); }
  void synchronize() override {
    wait();
    IRIS_CUDA_CHECK(cudaEventSynchronize(done_.get()));
  }

 private:
  EventPtr done_;
  int device_;
  Tensor keep_;
  bool waited_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int device, int rank, int size, NodePlacement node, double timeout_s)
      : Communicator(Backend::nccl, Device::cuda(device), rank, size, node.local_rank, node.local_size,
                     timeout_s),
        dev_(device) {}

  ~NcclCommunicator() override {
    watchdog().clear();  // no poll may touch the communicator once it is gone
    if (comm_) {
      const ncclResult_t r = ncclCommDestroy(comm_);
      if (r != ncclSuccess)
        std::fprintf(stderr, "iris: ncclCommDestroy failed on rank %d: %s\n", rank(), ncclGetErrorString(r));
    }
  }

  void init(const ncclUniqueId& id) {
    cuda::DeviceGuard guard(dev_);
    (void)cuda::context(dev_);  // creates the streams before NCCL starts
    Watchdog::Scope watch(watchdog(), ::iris::detail::cat("ncclCommInitRank (rank ", rank(), " of ", size(),
                                                          " on cuda:", dev_, ")"));
    check(ncclCommInitRank(&comm_, size(), id, rank()), "ncclCommInitRank");
  }

 protected:
  Work do_all_reduce_async(Tensor& t, Reduce op) override {
    const std::string label = op_label("all_reduce", t, ::iris::detail::cat("(", reduce_name(op), ")"));
    void* p = t.data_ptr();
    EventPtr done = launch(label, [&](cudaStream_t s) {
      return ncclAllReduce(p, p, static_cast<size_t>(t.numel()), nccl_type(t.dtype()),
                           op == Reduce::avg ? ncclAvg : ncclSum, comm_, s);
    });
    return Work(std::make_shared<NcclWork>(std::move(done), dev_, t));
  }

  void do_broadcast(Tensor& t, int root) override {
    const std::string label = op_label("broadcast", t, ::iris::detail::cat("(root ", root, ")"));
    void* p = t.data_ptr();
    EventPtr done = launch(label, [&](cudaStream_t s) {
      return ncclBroadcast(p, p, static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root, comm_, s);
    });
    NcclWork(std::move(done), dev_, t).wait();
  }

  void do_all_gather(const Tensor& in, Tensor& out) override {
    const std::string label = op_label("all_gather", in);
    EventPtr done = launch(label, [&](cudaStream_t s) {
      return ncclAllGather(in.data_ptr(), out.data_ptr(), static_cast<size_t>(in.numel()),
                           nccl_type(in.dtype()), comm_, s);
    });
    // `in` may be a temporary of the caller: the compute stream waits before anything can free it.
    NcclWork(std::move(done), dev_, in).wait();
  }

  void do_barrier() override {
    if (!scratch_.defined()) scratch_ = Tensor::zeros({1}, DType::f32, device());
    const std::string label = op_label("barrier", scratch_);
    void* p = scratch_.data_ptr();
    EventPtr done =
        launch(label, [&](cudaStream_t s) { return ncclAllReduce(p, p, 1, ncclFloat32, ncclSum, comm_, s); });
    NcclWork w(std::move(done), dev_, scratch_);
    w.synchronize();  // a barrier holds the host until every rank has reached it
  }

 private:
  // Orders `call` (an NCCL collective on the comm stream) after the work queued on the compute stream, and
  // returns an event that fires when it is done. The watchdog follows the event.
  template <class F>
  EventPtr launch(const std::string& label, F&& call) {
    cuda::DeviceGuard guard(dev_);
    cuda::Context& ctx = cuda::context(dev_);
    IRIS_CUDA_CHECK(cudaEventRecord(ctx.compute_event, ctx.compute));
    IRIS_CUDA_CHECK(cudaStreamWaitEvent(ctx.comm, ctx.compute_event, 0));
    check(call(ctx.comm), label);
    EventPtr done = make_event();
    IRIS_CUDA_CHECK(cudaEventRecord(done.get(), ctx.comm));
    if (cuda::sync_debug()) IRIS_CUDA_CHECK(cudaEventSynchronize(done.get()));
    ncclComm_t comm = comm_;
    const int r = rank(), n = size();
    watchdog().begin(label, [done, comm, r, n, label]() -> bool {
      ncclResult_t async = ncclSuccess;
      const ncclResult_t q = ncclCommGetAsyncError(comm, &async);
      if (q != ncclSuccess || (async != ncclSuccess && async != ncclInProgress))
        IRIS_THROW("NCCL reported an asynchronous error on rank ", r, " of ", n, " during ", label, ": ",
                   ncclGetErrorString(q != ncclSuccess ? q : async), ": ", ncclGetLastError(comm));
      return event_done(done.get());
    });
    return done;
  }

  void check(ncclResult_t r, const std::string& op) const {
    if (r == ncclSuccess) return;
    IRIS_THROW("NCCL ", op, " failed on rank ", rank(), " of ", size(), " (cuda:", dev_,
               "): ", ncclGetErrorString(r),
               comm_ ? ::iris::detail::cat(": ", ncclGetLastError(comm_)) : std::string());
  }

  int dev_;
  ncclComm_t comm_ = nullptr;
  Tensor scratch_;  // one float for barrier()
};

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(const LauncherInfo& launcher, Device device,
                                                     double timeout_s) {
  IRIS_CHECK(cuda_available(), "init_distributed(nccl): no CUDA device is visible");
  int mpi_initialized = 0;
  IRIS_MPI_CHECK(MPI_Initialized(&mpi_initialized));
  // Without MPI (IRIS_RENDEZVOUS_DIR): the launcher's variables place this rank and a shared file carries
  // the NCCL id. Otherwise MPI does both whenever there is a launcher.
  const RendezvousConfig rendezvous = rendezvous_from_env();
  const bool use_file = rendezvous.enabled() && launcher.detected() && !mpi_initialized;
  const bool use_mpi = !use_file && (launcher.detected() || mpi_initialized);
  int rank = 0, size = 1;
  NodePlacement node;
  MPI_Comm comm = MPI_COMM_NULL;
  if (use_file) {
    IRIS_CHECK(launcher.rank >= 0 && launcher.world_size >= 1 && launcher.local_rank >= 0 &&
                   launcher.local_size >= 1,
               "IRIS_RENDEZVOUS_DIR: the launcher (", launcher.name,
               ") must give this process's rank, the world "
               "size and its local rank and size (Slurm: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, "
               "SLURM_STEP_TASKS_PER_NODE with SLURM_NODEID); got rank ",
               launcher.rank, " of ", launcher.world_size, ", local ", launcher.local_rank, " of ",
               launcher.local_size);
    rank = launcher.rank;
    size = launcher.world_size;
    node.local_rank = launcher.local_rank;
    node.local_size = launcher.local_size;
  } else if (use_mpi) {
    mpi_ensure_initialized(launcher);
    IRIS_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm));
    IRIS_MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
    IRIS_MPI_CHECK(MPI_Comm_rank(comm, &rank));
    IRIS_MPI_CHECK(MPI_Comm_size(comm, &size));
    node = mpi_node_placement(comm, launcher);
  }
  // Free the bootstrap communicator however we leave.
  struct CommFree {
    MPI_Comm* c;
    ~CommFree() {
      if (*c != MPI_COMM_NULL) MPI_Comm_free(c);
    }
  } comm_free{&comm};

  int dev = device.index;
  const int visible = cuda_device_count();
  if (node.local_size > 1)
    dev = cuda_device_for_local_rank(node.local_rank, node.local_size, visible,
                                     std::getenv("CUDA_VISIBLE_DEVICES"));
  IRIS_CHECK(dev >= 0 && dev < visible, "init_distributed(nccl): device cuda:", dev, " does not exist (",
             visible, " visible)");

  ncclUniqueId id{};
  if (rank == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    IRIS_CHECK(r == ncclSuccess, "NCCL ncclGetUniqueId failed on rank 0: ", ncclGetErrorString(r));
  }
  if (use_mpi) IRIS_MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm));
  if (use_file && size > 1) {
    const auto* p = reinterpret_cast<const uint8_t*>(&id);
    const std::vector<uint8_t> got =
        rendezvous_exchange(rendezvous, rank, std::vector<uint8_t>(p, p + sizeof id), sizeof id, timeout_s);
    std::memcpy(&id, got.data(), sizeof id);
  }

  auto nccl = std::make_shared<NcclCommunicator>(dev, rank, size, node, timeout_s);
  nccl->init(id);
  // ncclCommInitRank returns once every rank has joined, so every rank has read the file by now.
  if (use_file && rank == 0) rendezvous_remove(rendezvous);
  return nccl;
}

#endif  // IRIS_WITH_NCCL

}  // namespace iris::dist::internal
