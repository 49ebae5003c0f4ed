// dist without MPI: launcher detection from (fake) environments, the GPU-per-rank rule, the local
// communicator's collectives and argument checks, and the gradient reducer's bookkeeping on one rank
// (buckets, launch order, views, parameters without gradient, accumulation). The multi-rank behaviour is in
// tests/mpi (label mpi).
#include <map>
#include <string>

#include "tests/common/dp_model.h"

using namespace iris;
using namespace iris::test;
using namespace iris::dist;

namespace {

std::vector<double> values(const Tensor& t) {
  return t.to_vector<double>();
}

}  // namespace

TEST_CASE("dist launcher detection reads mpirun, srun, PMI and PMIx variables and nothing else") {
  LauncherInfo none =
      detect_launcher(fake_env({{"HOME", "/root"}, {"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "0"}}));
  CHECK_MESSAGE(!none.detected(), "an sbatch script (no SLURM_STEP_ID) is not a launch: ", none.name);
  CHECK(none.world_size == 1);

  LauncherInfo ompi = detect_launcher(fake_env({{"OMPI_COMM_WORLD_SIZE", "6"},
                                                {"OMPI_COMM_WORLD_RANK", "4"},
                                                {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                {"OMPI_COMM_WORLD_LOCAL_SIZE", "3"},
                                                {"SLURM_STEP_ID", "0"},
                                                {"SLURM_PROCID", "1"},
                                                {"SLURM_NTASKS", "2"}}));
  CHECK(ompi.name == "openmpi");  // mpirun inside a Slurm allocation: Open MPI's variables win
  CHECK(ompi.world_size == 6);
  CHECK(ompi.rank == 4);
  CHECK(ompi.local_rank == 1);
  CHECK(ompi.local_size == 3);

  LauncherInfo slurm = detect_launcher(fake_env({{"SLURM_STEP_ID", "0"},
                                                 {"SLURM_PROCID", "5"},
                                                 {"SLURM_NTASKS", "8"},
                                                 {"SLURM_STEP_NUM_TASKS", "7"},
                                                 {"SLURM_LOCALID", "2"}}));
  CHECK(slurm.name == "slurm");
  CHECK(slurm.world_size == 7);  // the step's task count, not the allocation's
  CHECK(slurm.rank == 5);
  CHECK(slurm.local_rank == 2);
  CHECK(slurm.local_size == -1);  // left to MPI_Comm_split_type

  LauncherInfo pmi = detect_launcher(
      fake_env({{"PMI_SIZE", "3"}, {"PMI_RANK", "2"}, {"MPI_LOCALRANKID", "0"}, {"MPI_LOCALNRANKS", "1"}}));
  CHECK(pmi.name == "pmi");
  CHECK(pmi.world_size == 3);
  CHECK(pmi.rank == 2);
  CHECK(pmi.local_rank == 0);
  CHECK(pmi.local_size == 1);

  LauncherInfo pmix = detect_launcher(fake_env({{"PMIX_RANK", "3"}}));
  CHECK(pmix.name == "pmix");
  CHECK(pmix.rank == 3);
  CHECK(pmix.world_size == -1);

  check_throws_with(
      [] {
        detect_launcher(fake_env({{"OMPI_COMM_WORLD_SIZE", "two"}}));
      },
      {"OMPI_COMM_WORLD_SIZE", "two", "not an integer"});
  check_throws_with(
      [] {
        detect_launcher(fake_env({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "2"}}));
      },
      {"rank 2 of 2"});
}

TEST_CASE("dist GPU choice is the local rank and refuses more ranks than GPUs on a node") {
  CHECK(cuda_device_for_local_rank(0, 1, 1, nullptr) == 0);
  CHECK(cuda_device_for_local_rank(3, 4, 8, nullptr) == 3);
  CHECK(cuda_device_for_local_rank(2, 3, 3, "0,1,2") == 2);
  // One GPU bound per task by the launcher: each rank sees exactly its own.
  CHECK(cuda_device_for_local_rank(3, 4, 1, "3") == 0);
  check_throws_with([] { cuda_device_for_local_rank(2, 4, 2, nullptr); },
                    {"4 ranks", "local rank 2", "only 2 CUDA device"});
  check_throws_with([] { cuda_device_for_local_rank(1, 2, 1, "0,1"); },
                    {"2 ranks", "CUDA_VISIBLE_DEVICES=0,1"});
  check_throws_with([] { cuda_device_for_local_rank(1, 2, 0, nullptr); }, {"only 0 CUDA device"});
}

TEST_CASE("dist collective timeout and backend names parse strictly") {
  CHECK(default_collective_timeout(fake_env({})) == 600.0);
  CHECK(default_collective_timeout(fake_env({{"IRIS_COLLECTIVE_TIMEOUT", "2.5"}})) == 2.5);
  CHECK(default_collective_timeout(fake_env({{"IRIS_COLLECTIVE_TIMEOUT", "0"}})) == 0.0);
  check_throws_with(
      [] {
        default_collective_timeout(fake_env({{"IRIS_COLLECTIVE_TIMEOUT", "10s"}}));
      },
      {"IRIS_COLLECTIVE_TIMEOUT", "10s"});
  check_throws_with(
      [] {
        default_collective_timeout(fake_env({{"IRIS_COLLECTIVE_TIMEOUT", "-1"}}));
      },
      {"IRIS_COLLECTIVE_TIMEOUT"});
  for (Backend b : {Backend::automatic, Backend::local, Backend::mpi, Backend::nccl})
    CHECK(backend_from_name(backend_name(b)) == b);
  check_throws_with([] { backend_from_name("gloo"); }, {"gloo", "auto, local, mpi or nccl"});
}

TEST_CASE("dist local communicator: identity collectives and argument checks") {
  auto comm = init_distributed(Backend::local);
  REQUIRE(comm->size() == 1);
  CHECK(comm->rank() == 0);
  CHECK(comm->local_size() == 1);
  CHECK(comm->backend() == Backend::local);
  CHECK(comm->describe() == "local rank 0 of 1 (local 0 of 1) on cpu");

  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    Tensor t = randn({7, 3}, 5, dt);
    const std::vector<double> before = values(t);
    comm->all_reduce(t, Reduce::avg);
    CHECK(values(t) == before);
    Tensor nc = noncontiguous(randn({5}, 6, dt));
    const std::vector<double> nc_before = values(nc);
    comm->all_reduce(nc, Reduce::sum);
    CHECK(values(nc) == nc_before);
    Work w = comm->all_reduce_async(t, Reduce::sum);
    CHECK(w.test());
    w.wait();
    CHECK(values(t) == before);
  }
  Tensor in = Tensor::arange(6, DType::i64).view({2, 3});
  Tensor out = Tensor::zeros({1, 2, 3}, DType::i64);
  comm->all_gather(in, out);
  CHECK(values(out) == values(in));
  Tensor u = Tensor::arange(5, DType::u8);
  comm->broadcast(u, 0);
  CHECK(values(u) == std::vector<double>{0, 1, 2, 3, 4});
  comm->barrier();

  check_throws_with([&] { comm->all_reduce(u, Reduce::sum); }, {"all_reduce", "u8", "wrap"});
  Tensor ints = Tensor::arange(4, DType::i32);
  check_throws_with([&] { comm->all_reduce(ints, Reduce::avg); }, {"all_reduce(avg)", "i32[4]", "floating"});
  check_throws_with([&] { comm->broadcast(u, 1); }, {"broadcast", "root 1", "size 1"});
  Tensor wrong = Tensor::zeros({2, 3}, DType::i64);
  check_throws_with([&] { comm->all_gather(in, wrong); },
                    {"all_gather", "i64[2, 3]", "must be i64[1, 2, 3]"});
  Tensor nc = noncontiguous(randn({5}, 7, DType::f32));
  check_throws_with([&] { comm->all_reduce_async(nc, Reduce::sum); }, {"all_reduce_async", "not contiguous"});
  Tensor undefined;
  check_throws_with([&] { comm->all_reduce(undefined, Reduce::sum); }, {"all_reduce"});
}

TEST_CASE("dist init_distributed(auto) in a plain process is local and average_over_ranks is the value") {
  if (detect_launcher().detected()) {
    MESSAGE("running under a launcher: the plain-process check is done by test_mpi's plain entry instead");
    return;
  }
  auto comm = init_distributed();
  CHECK(comm->backend() == Backend::local);
  CHECK(comm->size() == 1);
  CHECK(average_over_ranks(*comm, 2.5) == 2.5);
  CHECK(reduce_values(*comm, {1.0, -3.0}, Reduce::sum) == std::vector<double>{1.0, -3.0});
#ifndef IRIS_WITH_NCCL
  check_throws_with([] { init_distributed(Backend::nccl, Device::cuda(0)); }, {"nccl"});
#endif
  check_throws_with([] { init_distributed(Backend::mpi, Device::cuda(0)); },
                    {"mpi backend moves CPU tensors"});
}

TEST_CASE("dist reducer on one rank: gradients unchanged, bucket views, buckets launched in order") {
  auto comm = init_distributed(Backend::local);
  auto model = dp_mlp(3, {5, 7, 6, 4}, DType::f64);
  auto reference = dp_mlp(3, {5, 7, 6, 4}, DType::f64);
  // Tiny buckets: one or two parameters each, so that readiness order matters.
  ReducerOptions opt;
  opt.first_bucket_bytes = 8 * 4 * 6;
  opt.bucket_bytes = 8 * 40;
  GradReducer reducer(comm, *model, opt);
  REQUIRE(reducer.num_buckets() >= 3);
  // Buckets hold parameters in reverse registration order.
  std::vector<size_t> order;
  for (size_t b = 0; b < reducer.num_buckets(); ++b)
    for (size_t p : reducer.bucket_params(b)) order.push_back(p);
  const size_t n = model->parameters().size();
  REQUIRE(order.size() == n);
  for (size_t i = 0; i < n; ++i) CHECK(order[i] == n - 1 - i);

  auto [x, y] = dp_batch(0, 9, 5, 4, DType::f64);
  mse_loss(model->forward(x), y).backward();
  reducer.finish();
  mse_loss(reference->forward(x), y).backward();
  const auto params = model->parameters(), ref_params = reference->parameters();
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(params[i].grad().defined());
    CHECK(values(params[i].grad()) == values(ref_params[i].grad()));  // one rank: the average is the value
  }
  std::vector<size_t> expected_launch(reducer.num_buckets());
  for (size_t b = 0; b < expected_launch.size(); ++b) expected_launch[b] = b;
  CHECK(reducer.last_launch_order() == expected_launch);
  CHECK(reducer.stats().steps == 1);
  CHECK(reducer.stats().buckets_launched_in_backward == static_cast<int64_t>(reducer.num_buckets()));

  // The gradients are views into the buckets: scaling one in place (as clip_grad_norm does) is seen there,
  // and the next synced backward overwrites them.
  for (auto& p : model->parameters()) p.set_grad(Tensor());
  auto [x2, y2] = dp_batch(1, 9, 5, 4, DType::f64);
  mse_loss(model->forward(x2), y2).backward();
  reducer.finish();
  for (auto& p : reference->parameters()) p.set_grad(Tensor());
  mse_loss(reference->forward(x2), y2).backward();
  for (size_t i = 0; i < n; ++i) CHECK(values(params[i].grad()) == values(ref_params[i].grad()));
}

TEST_CASE("dist reducer on one rank: out-of-order readiness still launches buckets in index order") {
  auto comm = init_distributed(Backend::local);
  // Parameters registered a, b, c; buckets (one per parameter, reverse order) are [c], [b], [a]. The graph
  // uses a last, so a's gradient (bucket 2) is ready first and c's (bucket 0) last.
  Tensor a = randn({3}, 1).set_requires_grad(), b = randn({3}, 2).set_requires_grad();
  Tensor c = randn({3}, 3).set_requires_grad();
  ReducerOptions opt;
  opt.first_bucket_bytes = opt.bucket_bytes = 8;
  GradReducer reducer(comm, {a, b, c}, opt);
  REQUIRE(reducer.num_buckets() == 3);
  Tensor h = mul(c, 2.0);
  h = mul(h, b);
  h = mul(h, a);
  sum(h).backward();
  reducer.finish();
  CHECK(reducer.last_launch_order() == std::vector<size_t>{0, 1, 2});
  const std::vector<size_t> ready = reducer.last_ready_order();
  REQUIRE(ready.size() == 3);
  CHECK_MESSAGE(ready.front() == 2, "a's bucket should have been ready first");
  CHECK(reducer.stats().buckets_launched_in_backward == 3);
  const auto av = values(a), bv = values(b), cv = values(c);
  const auto ga = values(a.grad()), gb = values(b.grad()), gc = values(c.grad());
  for (int i = 0; i < 3; ++i) {
    CHECK(ga[i] == 2 * cv[i] * bv[i]);
    CHECK(gb[i] == 2 * cv[i] * av[i]);
    CHECK(gc[i] == 2 * bv[i] * av[i]);
  }
}

TEST_CASE("dist reducer on one rank: unused parameters, accumulation, misuse") {
  auto comm = init_distributed(Backend::local);
  Tensor used = randn({4}, 1).set_requires_grad(), unused = randn({2}, 2).set_requires_grad();
  GradReducer reducer(comm, {used, unused});
  sum(square(used)).backward();
  reducer.finish();
  CHECK(used.grad().defined());
  CHECK_MESSAGE(!unused.grad().defined(), "no rank had a gradient: the parameter must stay without one");
  CHECK(reducer.stats().buckets_launched_in_finish + reducer.stats().buckets_launched_in_backward >= 1);

  // Accumulation over two micro-batches: only the last backward is synced.
  used.set_grad(Tensor());
  reducer.set_sync(false);
  sum(square(used)).backward();
  reducer.set_sync(true);
  sum(square(used)).backward();
  reducer.finish();
  const auto u = values(used), g = values(used.grad());
  for (size_t i = 0; i < u.size(); ++i) CHECK(g[i] == 4 * u[i]);

  // A parameter used only in an earlier, unsynced micro-batch keeps its accumulated gradient (it is not a
  // "no gradient on this rank" parameter in the synced pass).
  used.set_grad(Tensor());
  reducer.set_sync(false);
  sum(mul(unused, 3.0)).backward();
  reducer.set_sync(true);
  sum(square(used)).backward();
  reducer.finish();
  REQUIRE_MESSAGE(unused.grad().defined(), "the micro-batch gradient of 'unused' was dropped by finish()");
  for (double v : values(unused.grad())) CHECK(v == 3.0);
  for (size_t i = 0; i < u.size(); ++i) CHECK(values(used.grad())[i] == 2 * u[i]);
  unused.set_grad(Tensor());

  // A second synced backward without finish() is a usage error, named.
  used.set_grad(Tensor());
  sum(used).backward();
  check_throws_with([&] { sum(used).backward(); }, {"GradReducer", "arrived twice before finish()"});
  check_throws_with([&] { reducer.set_sync(false); }, {"set_sync", "finish() first"});
  Tensor not_leaf = mul(used, 2.0);
  check_throws_with([&] { GradReducer r(comm, {not_leaf}); }, {"GradReducer", "not a trainable leaf"});
}

TEST_CASE("dist reducer on one rank: K training steps equal training without it") {
  auto comm = init_distributed(Backend::local);
  auto with = dp_mlp(11, {6, 10, 3});
  auto without = dp_mlp(11, {6, 10, 3});
  GradReducer reducer(comm, *with);
  DpRun run;
  const auto l1 = dp_train(*with, run, &reducer);
  const auto l2 = dp_train(*without, run, nullptr);
  CHECK(l1 == l2);
  CHECK(dp_flat_params(*with) == dp_flat_params(*without));
  CHECK(reducer.stats().steps == run.steps);
  MESSAGE("local reducer: " << reducer.stats().str());
}
