// The NCCL communicator with one rank (no launcher, so no MPI): collectives on device tensors of every dtype,
// argument checks, and the data-parallel equivalence check of test_mpi on the GPU: K AdamW steps through a
// GradReducer on the NCCL communicator equal the same steps without it (exactly: the average over one rank
// is the value) and the CPU run within GPU rounding. Skipped without a device, and in builds without NCCL.
#include "tests/common/dp_model.h"
#include "tests/gpu/gpu_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::dist;
using namespace iris::gputest;

namespace {
#ifdef IRIS_WITH_NCCL
constexpr bool kNccl = true;
#else
constexpr bool kNccl = false;
#endif
}  // namespace

#define IRIS_NCCL_TEST_BEGIN()                \
  IRIS_GPU_TEST_BEGIN();                      \
  do {                                        \
    if (!kNccl) {                             \
      MESSAGE("skipped: built without NCCL"); \
      return;                                 \
    }                                         \
  } while (0)

TEST_CASE("gpu nccl one-rank communicator: collectives on device tensors") {
  IRIS_NCCL_TEST_BEGIN();
  auto comm = init_distributed(Backend::nccl, gpu());
  REQUIRE(comm->backend() == Backend::nccl);
  CHECK(comm->size() == 1);
  CHECK(comm->rank() == 0);
  CHECK(comm->device() == gpu());
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64}) {
    const Tensor host =
        is_floating(dt) ? randn({1001}, 3, dt) : Tensor::arange(1001, dt, Device::cpu(), -500);
    for (Reduce op : {Reduce::sum, Reduce::avg}) {
      if (op == Reduce::avg && !is_floating(dt)) continue;
      Tensor t = host.to(gpu());
      comm->all_reduce(t, op);
      expect_equal(t, host, std::string("all_reduce ") + dtype_name(dt) + " " + reduce_name(op));
      // Produced by a kernel on the compute stream just before: the comm stream must wait for it.
      Tensor u = host.to(gpu()).clone();
      Work w = comm->all_reduce_async(u, op);
      w.wait();
      Tensor after = u.clone();  // ordered after the collective on the compute stream
      expect_equal(after, host, std::string("all_reduce_async ") + dtype_name(dt));
      CHECK(w.test());
    }
  }
  Tensor in = Tensor::arange(15, DType::u8).view({3, 5}).to(gpu());
  Tensor out = Tensor::zeros({1, 3, 5}, DType::u8, gpu());
  comm->all_gather(in, out);
  expect_equal(out.view({3, 5}), in, "all_gather u8");
  Tensor b = randn({7}, 4, DType::bf16).to(gpu());
  const Tensor b0 = b.clone();
  comm->broadcast(b, 0);
  expect_equal(b, b0, "broadcast bf16");
  comm->barrier();
  CHECK(average_over_ranks(*comm, 3.5) == 3.5);

  Tensor on_cpu = Tensor::zeros({4});
  check_throws_with([&] { comm->all_reduce(on_cpu, Reduce::sum); }, {"all_reduce", "cuda:0", "f32[4] cpu"});
  Tensor u8 = Tensor::zeros({4}, DType::u8, gpu());
  check_throws_with([&] { comm->all_reduce(u8, Reduce::sum); }, {"u8", "wrap"});
  check_throws_with([&] { init_distributed(Backend::nccl, Device::cpu()); }, {"nccl", "CUDA device"});
}

TEST_CASE("gpu nccl one-rank reducer: K AdamW steps equal the steps without it and the CPU run") {
  IRIS_NCCL_TEST_BEGIN();
  auto comm = init_distributed(Backend::nccl, gpu());
  DpRun run;
  run.steps = 4;
  const std::vector<int64_t> widths{5, 16, 16, 3};
  auto with = dp_mlp(21, widths, DType::f32, gpu());
  auto without = dp_mlp(21, widths, DType::f32, gpu());
  auto cpu_model = dp_mlp(21, widths, DType::f32);
  broadcast_parameters(*comm, *with);
  ReducerOptions opt;
  opt.first_bucket_bytes = 64 * 4;  // several buckets, launched from the hooks during backward
  opt.bucket_bytes = 300 * 4;
  opt.host_timing = true;
  GradReducer reducer(comm, *with, opt);
  REQUIRE(reducer.num_buckets() >= 3);
  const auto l_with = dp_train(*with, run, &reducer, gpu());
  const auto l_without = dp_train(*without, run, nullptr, gpu());
  const auto l_cpu = dp_train(*cpu_model, run, nullptr);
  CHECK(l_with == l_without);
  CHECK(dp_flat_params(*with) == dp_flat_params(*without));
  const auto p = dp_flat_params(*with), c = dp_flat_params(*cpu_model);
  double diff = 0;
  for (size_t i = 0; i < p.size(); ++i) diff = std::max(diff, std::abs(p[i] - c[i]));
  // GPU and CPU differ by f32 rounding in the GEMMs and reductions (TF32 is off by default).
  CHECK_MESSAGE(diff < 1e-5, "GPU (NCCL reducer) vs CPU parameters differ by ", diff);
  CHECK(reducer.stats().steps == run.steps);
  CHECK(reducer.stats().buckets_launched_in_backward ==
        run.steps * static_cast<int64_t>(reducer.num_buckets()));
  CHECK(reducer.stats().comm_s > 0);
  MESSAGE("nccl reducer, one rank: max |gpu - cpu| = " << diff << "; " << reducer.stats().str());
}
