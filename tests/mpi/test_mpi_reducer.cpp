// The gradient reducer across ranks: averages with buckets that become ready out of order, parameters used
// on some ranks only, broadcast_parameters, and the main check: K AdamW steps with `size` ranks of B/size
// samples give the parameters of one process with the whole batch B.
#include <chrono>
#include <cmath>

#include "tests/mpi/mpi_test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::dist;
using namespace iris::mpitest;

namespace {

double max_abs(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("mpi reducer averages gradients when buckets become ready out of order") {
  auto comm = world();
  const int size = comm->size();
  // Registered a, b, c: buckets [c], [b], [a]. The graph uses a last, so a's bucket (2) is ready first.
  Tensor a = randn({5}, 1).set_requires_grad(), b = randn({5}, 2).set_requires_grad();
  Tensor c = randn({5}, 3).set_requires_grad();
  ReducerOptions opt;
  opt.first_bucket_bytes = opt.bucket_bytes = 8;
  GradReducer reducer(comm, {a, b, c}, opt);
  REQUIRE(reducer.num_buckets() == 3);
  auto weights = [](int r) { return randn({5}, 100 + r); };  // each rank's own "data"
  for (int step = 0; step < 2; ++step) {
    for (Tensor* p : {&a, &b, &c}) p->set_grad(Tensor());
    const Tensor w = weights(comm->rank());
    sum(mul(mul(mul(c, w), b), a)).backward();
    reducer.finish();
    CHECK(reducer.last_launch_order() == std::vector<size_t>{0, 1, 2});
    CHECK(reducer.last_ready_order().front() == 2);
    // Expected: the mean over ranks of each rank's gradient, computed here for all ranks.
    const auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
    std::vector<double> ga(5, 0.0), gb(5, 0.0), gc(5, 0.0);
    for (int r = 0; r < size; ++r) {
      const auto wv = weights(r).to_vector<double>();
      for (int i = 0; i < 5; ++i) {
        ga[i] += cv[i] * wv[i] * bv[i] / size;
        gb[i] += cv[i] * wv[i] * av[i] / size;
        gc[i] += wv[i] * bv[i] * av[i] / size;
      }
    }
    CHECK(max_abs(a.grad().to_vector<double>(), ga) < 1e-14);
    CHECK(max_abs(b.grad().to_vector<double>(), gb) < 1e-14);
    CHECK(max_abs(c.grad().to_vector<double>(), gc) < 1e-14);
  }
  CHECK(reducer.stats().steps == 2);
  CHECK(reducer.stats().buckets_launched_in_backward == 6);
}

TEST_CASE("mpi reducer: a parameter used on some ranks only, and one used nowhere") {
  auto comm = world();
  const int size = comm->size();
  Tensor shared = randn({4}, 5).set_requires_grad();
  Tensor rank0_only = randn({3}, 6).set_requires_grad();
  Tensor nowhere = randn({2}, 7).set_requires_grad();
  GradReducer reducer(comm, {shared, rank0_only, nowhere});
  Tensor loss = sum(square(shared));
  if (comm->rank() == 0) loss = add(loss, sum(square(rank0_only)));
  loss.backward();
  reducer.finish();
  REQUIRE(shared.grad().defined());
  REQUIRE_MESSAGE(rank0_only.grad().defined(), "rank ", comm->rank(),
                  ": a gradient that one rank has must reach every rank");
  CHECK_MESSAGE(!nowhere.grad().defined(), "rank ", comm->rank(), ": no rank had a gradient");
  const auto s = shared.to_vector<double>(), gs = shared.grad().to_vector<double>();
  const auto p = rank0_only.to_vector<double>(), gp = rank0_only.grad().to_vector<double>();
  for (size_t i = 0; i < s.size(); ++i) CHECK(std::abs(gs[i] - 2 * s[i]) < 1e-15);  // (3 x 2s) / 3
  for (size_t i = 0; i < p.size(); ++i) CHECK(std::abs(gp[i] - 2 * p[i] / size) < 1e-15);
  CHECK(reducer.stats().buckets_launched_in_finish == 1);  // one bucket, completed only by finish()
}

TEST_CASE("mpi broadcast_parameters makes differently initialised ranks equal and refuses different models") {
  auto comm = world();
  auto model = dp_mlp(100 + comm->rank(), {4, 6, 3});
  auto rank0_model = dp_mlp(100, {4, 6, 3});
  if (comm->size() > 1)
    CHECK((comm->rank() == 0) == (dp_flat_params(*model) == dp_flat_params(*rank0_model)));
  broadcast_parameters(*comm, *model);
  CHECK(dp_flat_params(*model) == dp_flat_params(*rank0_model));
  // The last rank builds a wider hidden layer: every rank throws, naming it, and nothing is broadcast.
  const int last = comm->size() - 1;
  auto odd = dp_mlp(7, {4, comm->rank() == last && last > 0 ? 7 : 6, 3});
  const auto before = dp_flat_params(*odd);
  if (last > 0) {
    check_throws_with([&] { broadcast_parameters(*comm, *odd); },
                      {"broadcast_parameters", "rank " + std::to_string(last), "different model"});
    CHECK(dp_flat_params(*odd) == before);
  }
  comm->barrier();
}

// The data-parallel equivalence: every rank also trains a reference model on the whole batch without any
// communication, and the parameters must agree.
//
// Tolerance. In f64 the only difference is the order of the reductions over the batch (a matmul over
// B/size rows per rank, then the mean of the rank means, instead of one matmul over B rows): a relative
// difference of ~1e-16 per step in the gradients. AdamW's update m/(sqrt(v)+eps) passes it on at the same
// relative scale, and clipping's norm too, so after K = 4 steps of lr 1e-2 the parameters (of size ~0.3)
// agree to a few ulps (seen: 1.1e-16); we allow 1e-13. In f32 the same argument with rounding ~6e-8 gives a
// few ulps of the parameters (seen: 6e-8); we allow 1e-6 absolute, 1e-4 of one update. Anything wrong in the
// averaging (a missing division, a stale bucket, a wrong slice) moves parameters by ~lr = 1e-2.
TEST_CASE("mpi K steps with size ranks x B/size samples equal one process with the batch B") {
  auto comm = world();
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-13 : 1e-6;
    DpRun run;
    run.steps = 4;
    run.batch = 12;  // divisible by 1, 2, 3 and 4 ranks
    REQUIRE(run.batch % comm->size() == 0);
    auto reference = dp_mlp(21, {5, 16, 16, 3}, dt);
    const auto ref_losses = dp_train(*reference, run, nullptr);

    auto model = dp_mlp(21 + 1000 * comm->rank(), {5, 16, 16, 3}, dt);  // deliberately different
    broadcast_parameters(*comm, *model);
    ReducerOptions opt;
    opt.first_bucket_bytes = 64 * dtype_size(dt);  // several buckets, so that some overlap backward
    opt.bucket_bytes = 300 * dtype_size(dt);
    GradReducer reducer(comm, *model, opt);
    CHECK(reducer.num_buckets() >= 3);
    DpRun mine = run;
    mine.rank = comm->rank();
    mine.size = comm->size();
    const auto losses = dp_train(*model, mine, &reducer);
    const auto params = dp_flat_params(*model), ref = dp_flat_params(*reference);
    const double diff = max_abs(params, ref);
    CHECK_MESSAGE(diff <= tol, std::string(dtype_name(dt)),
                  ": parameters differ from the one-process run by ", diff);
    // The rank-averaged loss of a step is the whole batch's loss.
    const double loss0 = average_over_ranks(*comm, losses[0]);
    CHECK(std::abs(loss0 - ref_losses[0]) <= 1e3 * tol * std::abs(ref_losses[0]));
    // Every rank holds bit-identical parameters.
    const auto all = gather_all(*comm, params);
    for (int r = 1; r < comm->size(); ++r)
      CHECK_MESSAGE(all[r] == all[0], "rank ", r, " drifted from rank 0");
    CHECK(reducer.stats().steps == run.steps);
    CHECK(reducer.stats().buckets_launched_in_backward ==
          run.steps * static_cast<int64_t>(reducer.num_buckets()));
    if (comm->rank() == 0)
      MESSAGE(std::string(dtype_name(dt)), ": max |p - p_ref| = ", diff, "; ", reducer.stats().str());
  }
}

namespace {

// Mean wall time of a training step (forward, backward, finish, clip, AdamW) over `steps` steps after two
// warm-up steps, averaged over ranks, with its phases; prints it with the reducer's overlap statistics on
// rank 0.
void time_steps(const char* what, const std::vector<int64_t>& widths, int64_t global_batch,
                const ReducerOptions& opt, int steps) {
  auto comm = world();
  const int warmup = 2;
  auto model = dp_mlp(5, widths);
  broadcast_parameters(*comm, *model);
  GradReducer reducer(comm, *model, opt);
  optim::AdamW adam(model->named_parameters(), 1e-3);
  const int64_t local = global_batch / comm->size();
  using Clock = std::chrono::steady_clock;
  auto sec = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  std::vector<double> phases(4, 0.0);  // forward+backward (with hooks), finish, clip+AdamW, whole step
  for (int k = 0; k < steps + warmup; ++k) {
    if (k == warmup) reducer.reset_stats();
    auto [x, y] = dp_batch(k, local, widths.front(), widths.back(), DType::f32);
    comm->barrier();
    const auto t0 = Clock::now();
    adam.zero_grad();
    Tensor loss = mse_loss(model->forward(x), y);
    loss.backward();
    const auto t1 = Clock::now();
    reducer.finish();
    const auto t2 = Clock::now();
    optim::clip_grad_norm(model->parameters(), 1.0);
    adam.step();
    const auto t3 = Clock::now();
    if (k >= warmup) {
      phases[0] += sec(t0, t1);
      phases[1] += sec(t1, t2);
      phases[2] += sec(t2, t3);
      phases[3] += sec(t0, t3);
    }
  }
  for (double& p : phases) p /= steps;
  const std::vector<double> ms = reduce_values(*comm, phases);
  if (comm->rank() == 0) {
    MESSAGE(std::string(what) << ": " << comm->size() << " rank(s), global batch " << global_batch << " ("
                              << local << " per rank), " << model->num_parameters() << " parameters in "
                              << reducer.num_buckets() << " buckets: " << 1e3 * ms[3]
                              << " ms/step (forward+backward " << 1e3 * ms[0] << ", finish " << 1e3 * ms[1]
                              << ", clip+AdamW " << 1e3 * ms[2]
                              << "); rank 0 reducer: " << reducer.stats().str());
  }
  CHECK(ms[3] > 0);
}

}  // namespace

// Not a test: the CPU step time and the share of all-reduce hidden under backward, for the report. Run with
//   mpirun -np N test_mpi -tc="mpi timing*" --no-skip     (OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)
TEST_CASE("mpi timing of data-parallel steps on the CPU" * doctest::skip()) {
  ReducerOptions small;  // the equivalence test's model and buckets
  small.first_bucket_bytes = 64 * 4;
  small.bucket_bytes = 300 * 4;
  time_steps("equivalence MLP", {5, 16, 16, 3}, 12, small, 200);
  ReducerOptions big;
  big.bucket_bytes = size_t{4} << 20;
  time_steps("MLP 256-1024-1024-1024-256", {256, 1024, 1024, 1024, 256}, 64, big, 12);
  time_steps("MLP 256-1024-1024-1024-256", {256, 1024, 1024, 1024, 256}, 512, big, 6);
}
