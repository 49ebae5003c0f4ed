// The MPI backend: collectives over host tensors, on a duplicate of MPI_COMM_WORLD.
//
// Sums run in the tensor's own type (f32, f64, i32, i64); bf16, which MPI has no type for, is reduced in f32
// and rounded once at the end. An average is the sum divided by size() on each rank. Counts above what an MPI
// int can hold are split into chunks. Every MPI call is checked (MPI_ERRORS_RETURN on our communicator).
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/cpu/parallel.h"
#include "framework/dist/backends.h"
#include "framework/dist/mpi_util.h"
#include "framework/dist/watchdog.h"

namespace iris::dist::internal {

#ifndef IRIS_WITH_MPI

std::shared_ptr<Communicator> make_mpi_communicator(const LauncherInfo&, double) {
  IRIS_THROW(
      "init_distributed(mpi): Iris was built without MPI (IRIS_MPI=OFF); install an MPI (Debian/Ubuntu: "
      "libopenmpi-dev openmpi-bin) and configure again");
}
int mpi_world_rank_if_initialized() {
  return -1;
}
void mpi_abort_if_initialized(int) {}

#else

namespace {

void finalize_mpi_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

// The largest element count passed to one MPI call (MPI counts are int).
constexpr int64_t kMaxCount = int64_t{1} << 30;

MPI_Datatype mpi_type(DType dt) {
  switch (dt) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
    case DType::u8:
      return MPI_UINT8_T;
    case DType::bf16:
      return MPI_UINT16_T;  // moved as bits (broadcast, all_gather); reduced via f32
  }
  IRIS_THROW("mpi: unsupported dtype");
}

// buf /= size in place (f32 or f64, contiguous, on the host); splits over elements only.
void divide_in_place(Tensor& buf, int size) {
  const int64_t n = buf.numel();
  if (buf.dtype() == DType::f32) {
    float* p = buf.data<float>();
    const float s = static_cast<float>(size);
    cpu::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] /= s;
    });
  } else {
    IRIS_ASSERT(buf.dtype() == DType::f64);
    double* p = buf.data<double>();
    const double s = static_cast<double>(size);
    cpu::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] /= s;
    });
  }
}

// The buffer MPI reduces for `t`: `t` itself, or an f32 copy of a bf16 tensor.
Tensor reduction_buffer(const Tensor& t) {
  return t.dtype() == DType::bf16 ? t.to(DType::f32) : t;
}

// After the sum: divide for an average and write a staging buffer back into the tensor.
void finish_reduction(Tensor& t, Tensor& buf, Reduce op, int size) {
  if (op == Reduce::avg) divide_in_place(buf, size);
  if (!buf.same(t)) t.copy_(buf);
}

class MpiWork final : public Work::Impl {
 public:
  MpiWork(Tensor target, Tensor buf, Reduce op, int size, std::shared_ptr<Watchdog> watchdog,
          uint64_t watch_id)
      : target_(std::move(target)),
        buf_(std::move(buf)),
        op_(op),
        size_(size),
        watchdog_(std::move(watchdog)),
        watch_id_(watch_id) {}
  ~MpiWork() override {
    if (done_) return;
    try {
      wait();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "iris: an unfinished MPI all_reduce failed while its Work was destroyed: %s\n",
                   e.what());
    }
  }
  std::vector<MPI_Request>& requests() { return requests_; }

  void wait() override {
    if (done_) return;
    IRIS_MPI_CHECK(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    finish();
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    IRIS_MPI_CHECK(
        MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE));
    if (flag) finish();
    return done_;
  }

 private:
  void finish() {
    NoGradGuard no_grad;
    finish_reduction(target_, buf_, op_, size_);
    watchdog_->end(watch_id_);
    done_ = true;
  }

  Tensor target_, buf_;
  Reduce op_;
  int size_;
  std::shared_ptr<Watchdog> watchdog_;
  uint64_t watch_id_;
  std::vector<MPI_Request> requests_;
  bool done_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, int rank, int size, NodePlacement node, double timeout_s)
      : Communicator(Backend::mpi, Device::cpu(), rank, size, node.local_rank, node.local_size, timeout_s),
        comm_(comm) {}
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

 protected:
  void do_all_reduce(Tensor& t, Reduce op) override {
    Watchdog::Scope watch(watchdog(),
                          op_label("all_reduce", t, ::iris::detail::cat("(", reduce_name(op), ")")));
    Tensor buf = reduction_buffer(t);
    char* p = static_cast<char*>(buf.data_ptr());
    const size_t es = dtype_size(buf.dtype());
    for (int64_t off = 0; off < buf.numel(); off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, buf.numel() - off));
      IRIS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p + off * es, count, mpi_type(buf.dtype()), MPI_SUM, comm_));
    }
    finish_reduction(t, buf, op, size());
  }

  Work do_all_reduce_async(Tensor& t, Reduce op) override {
    Tensor buf = reduction_buffer(t);
    const uint64_t id =
        watchdog().begin(op_label("all_reduce_async", t, ::iris::detail::cat("(", reduce_name(op), ")")));
    auto work = std::make_shared<MpiWork>(t, buf, op, size(), shared_watchdog(), id);
    char* p = static_cast<char*>(buf.data_ptr());
    const size_t es = dtype_size(buf.dtype());
    for (int64_t off = 0; off < buf.numel(); off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, buf.numel() - off));
      MPI_Request req = MPI_REQUEST_NULL;
      IRIS_MPI_CHECK(
          MPI_Iallreduce(MPI_IN_PLACE, p + off * es, count, mpi_type(buf.dtype()), MPI_SUM, comm_, &req));
      work->requests().push_back(req);
    }
    return Work(work);
  }

  void do_broadcast(Tensor& t, int root) override {
    Watchdog::Scope watch(watchdog(), op_label("broadcast", t, ::iris::detail::cat("(root ", root, ")")));
    char* p = static_cast<char*>(t.data_ptr());
    const size_t es = dtype_size(t.dtype());
    for (int64_t off = 0; off < t.numel(); off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, t.numel() - off));
      IRIS_MPI_CHECK(MPI_Bcast(p + off * es, count, mpi_type(t.dtype()), root, comm_));
    }
  }

  void do_all_gather(const Tensor& in, Tensor& out) override {
    IRIS_CHECK(in.numel() <= INT_MAX, "all_gather: ", in.summary(), " has more elements per rank (",
               in.numel(), ") than one MPI call moves (", INT_MAX, ")");
    Watchdog::Scope watch(watchdog(), op_label("all_gather", in));
    const int count = static_cast<int>(in.numel());
    IRIS_MPI_CHECK(MPI_Allgather(in.data_ptr(), count, mpi_type(in.dtype()), out.data_ptr(), count,
                                 mpi_type(out.dtype()), comm_));
  }

  void do_barrier() override {
    Watchdog::Scope watch(watchdog(), ::iris::detail::cat("barrier (mpi rank ", rank(), " of ", size(), ")"));
    IRIS_MPI_CHECK(MPI_Barrier(comm_));
  }

 private:
  MPI_Comm comm_;
};

}  // namespace

[[noreturn]] void throw_mpi_error(int code, const char* expr, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
    std::snprintf(text, sizeof text, "MPI error %d", code);
  const int rank = mpi_world_rank_if_initialized();
  ::iris::detail::throw_error(::iris::detail::cat("MPI call ", expr, " failed on rank ", rank, ": ", text),
                              file, line);
}

void mpi_ensure_initialized(const LauncherInfo& launcher) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  int initialized = 0, finalized = 0;
  IRIS_MPI_CHECK(MPI_Initialized(&initialized));
  IRIS_MPI_CHECK(MPI_Finalized(&finalized));
  IRIS_CHECK(!finalized, "init_distributed: MPI was already finalised in this process");
  if (!initialized) {
    int provided = 0;
    IRIS_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided));
    std::atexit(finalize_mpi_at_exit);
  }
  IRIS_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  int size = 0, rank = 0;
  IRIS_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  IRIS_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  // The classic failure: mpirun from one MPI and a program linked with another (or srun without PMI
  // support), where every process comes up as a singleton "rank 0 of 1".
  const bool agrees = (launcher.world_size <= 0 || launcher.world_size == size) &&
                      (launcher.rank < 0 || launcher.rank == rank);
  if (launcher.detected() && !agrees) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string lib(version, static_cast<size_t>(std::max(len, 0)));
    lib = lib.substr(0, lib.find_first_of(",\n"));
    IRIS_THROW("init_distributed: the launcher (", launcher.name, ") started ", launcher.world_size,
               " processes and calls this one rank ", launcher.rank, ", but MPI sees rank ", rank, " of ",
               size, ": the launcher does not belong to the MPI library Iris runs with (", lib,
               "), or srun lacks --mpi=pmix/pmi2");
  }
}

NodePlacement mpi_node_placement(MPI_Comm comm, const LauncherInfo& launcher) {
  int rank = 0;
  IRIS_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_Comm node = MPI_COMM_NULL;
  IRIS_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
  NodePlacement p;
  const int free_rc = [&] {
    int lr = 0, ls = 1;
    const int rc1 = MPI_Comm_rank(node, &lr);
    const int rc2 = MPI_Comm_size(node, &ls);
    p.local_rank = lr;
    p.local_size = ls;
    MPI_Comm_free(&node);
    return rc1 != MPI_SUCCESS ? rc1 : rc2;
  }();
  IRIS_MPI_CHECK(free_rc);
  if (launcher.local_rank >= 0) p.local_rank = launcher.local_rank;
  if (launcher.local_size > 0) p.local_size = launcher.local_size;
  IRIS_CHECK(p.local_rank < p.local_size, "init_distributed: local rank ", p.local_rank,
             " is not below the node's process count ", p.local_size, " (launcher ", launcher.name, ")");
  return p;
}

std::shared_ptr<Communicator> make_mpi_communicator(const LauncherInfo& launcher, double timeout_s) {
  mpi_ensure_initialized(launcher);
  MPI_Comm comm = MPI_COMM_NULL;
  IRIS_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm));
  IRIS_MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  int rank = 0, size = 1;
  IRIS_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  IRIS_MPI_CHECK(MPI_Comm_size(comm, &size));
  const NodePlacement node = mpi_node_placement(comm, launcher);
  return std::make_shared<MpiCommunicator>(comm, rank, size, node, timeout_s);
}

int mpi_world_rank_if_initialized() {
  int initialized = 0, finalized = 0;
  if (MPI_Initialized(&initialized) != MPI_SUCCESS || !initialized) return -1;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return -1;
  int rank = -1;
  if (MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS) return -1;
  return rank;
}

void mpi_abort_if_initialized(int code) {
  if (mpi_world_rank_if_initialized() >= 0) MPI_Abort(MPI_COMM_WORLD, code);
}

#endif  // IRIS_WITH_MPI

}  // namespace iris::dist::internal
