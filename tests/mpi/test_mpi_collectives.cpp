// MPI collectives on every rank: exact values for every dtype and odd sizes (sum, avg, async, broadcast,
// all_gather), results identical on every rank, barrier, node placement, and the plain-process rule.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "tests/mpi/mpi_test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::dist;
using namespace iris::mpitest;

namespace {

// Small integers, exactly representable in every dtype (bf16 too) and in every sum over a few ranks.
double value(int rank, int64_t i) {
  return static_cast<double>((i * 7 + rank * 13) % 29) - 14.0;
}

Tensor rank_tensor(int rank, int64_t n, DType dt) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = value(rank, i);
  return Tensor::from_vector(v, {n}, dt, Device::cpu());
}

// What an exact sum over ranks, then (for avg) a division in the dtype's own arithmetic, gives.
std::vector<double> expected_reduce(int size, int64_t n, DType dt, Reduce op) {
  std::vector<double> e(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int r = 0; r < size; ++r) s += value(r, i);
    if (op == Reduce::avg) {
      if (dt == DType::f64)
        s = s / size;
      else if (dt == DType::f32)
        s = static_cast<float>(s) / static_cast<float>(size);
      else  // bf16: reduced and divided in f32, rounded once
        s = bf16::from_float(static_cast<float>(s) / static_cast<float>(size)).to_float();
    }
    e[static_cast<size_t>(i)] = s;
  }
  return e;
}

}  // namespace

TEST_CASE("mpi all_reduce sum and avg are exact for every dtype at odd sizes, blocking and async") {
  auto comm = world();
  REQUIRE(comm->backend() == Backend::mpi);
  const int rank = comm->rank(), size = comm->size();
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1001}, int64_t{65537}}) {
      for (Reduce op : {Reduce::sum, Reduce::avg}) {
        if (op == Reduce::avg && !is_floating(dt)) continue;
        Tensor t = rank_tensor(rank, n, dt);
        comm->all_reduce(t, op);
        CHECK_MESSAGE(t.to_vector<double>() == expected_reduce(size, n, dt, op), std::string(dtype_name(dt)),
                      " n=", n, " ", reduce_name(op));
      }
    }
    // Several asynchronous reductions in flight at once, waited for in reverse order.
    std::vector<Tensor> ts;
    std::vector<Work> works;
    for (int64_t n : {int64_t{3}, int64_t{4097}, int64_t{129}}) {
      ts.push_back(rank_tensor(rank, n, dt));
      works.push_back(comm->all_reduce_async(ts.back(), is_floating(dt) ? Reduce::avg : Reduce::sum));
    }
    for (size_t k = works.size(); k-- > 0;) works[k].wait();
    for (const Tensor& t : ts)
      CHECK_MESSAGE(t.to_vector<double>() ==
                        expected_reduce(size, t.numel(), dt, is_floating(dt) ? Reduce::avg : Reduce::sum),
                    "async ", std::string(dtype_name(dt)), " n=", t.numel());
    // A strided view is reduced through a packed copy and written back in place; its gaps stay untouched.
    Tensor base = Tensor::full({22}, 100.0, dt);
    Tensor view = base.slice(0, 1, 22, 2);  // 11 elements, stride 2
    {
      NoGradGuard ng;
      view.copy_(rank_tensor(rank, 11, dt));
    }
    comm->all_reduce(view, Reduce::sum);
    CHECK(view.to_vector<double>() == expected_reduce(size, 11, dt, Reduce::sum));
    CHECK(base.slice(0, 0, 22, 2).to_vector<double>() == std::vector<double>(11, 100.0));
  }
}

TEST_CASE("mpi all_reduce of random floats gives bit-identical results on every rank") {
  auto comm = world();
  const int size = comm->size();
  for (DType dt : {DType::f32, DType::bf16}) {
    const int64_t n = 3001;
    Tensor t = randn({n}, 40 + comm->rank(), dt);
    comm->all_reduce(t, Reduce::avg);
    const auto all = gather_all(*comm, t.to_vector<double>());
    for (int r = 1; r < size; ++r)
      CHECK_MESSAGE(all[r] == all[0], std::string(dtype_name(dt)), ": rank ", r, " differs from 0");
    // And it is the average, up to rounding in the dtype.
    std::vector<double> exact(static_cast<size_t>(n), 0.0);
    for (int r = 0; r < size; ++r) {
      const auto v = randn({n}, 40 + r, dt).to_vector<double>();
      for (int64_t i = 0; i < n; ++i) exact[i] += v[i] / size;
    }
    Tensor ref = Tensor::from_vector(exact, {n}, DType::f64, Device::cpu());
    CHECK(rel_l2(t.to(DType::f64), ref) < (dt == DType::f32 ? 1e-6 : 1e-2));
  }
}

TEST_CASE("mpi broadcast from every root and all_gather, every dtype") {
  auto comm = world();
  const int rank = comm->rank(), size = comm->size();
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64, DType::u8}) {
    auto val = [&](int r, int64_t i) { return dt == DType::u8 ? (value(r, i) + 14.0) : value(r, i); };
    auto make = [&](int r, int64_t n) {
      std::vector<double> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[i] = val(r, i);
      return Tensor::from_vector(v, {n}, dt, Device::cpu());
    };
    for (int root = 0; root < size; ++root) {
      Tensor t = make(rank, 1003);
      comm->broadcast(t, root);
      CHECK_MESSAGE(t.to_vector<double>() == make(root, 1003).to_vector<double>(),
                    std::string(dtype_name(dt)), " root ", root);
    }
    // all_gather of a [3, 5] tensor into [size, 3, 5]; also into a non-contiguous output.
    Tensor in = make(rank, 15).view({3, 5});
    Tensor out = Tensor::zeros({size, 3, 5}, dt);
    comm->all_gather(in, out);
    Tensor wide = Tensor::zeros({size, 3, 10}, dt);
    Tensor strided = wide.slice(2, 0, 10, 2);
    comm->all_gather(in, strided);
    for (int r = 0; r < size; ++r) {
      const auto want = make(r, 15).to_vector<double>();
      CHECK_MESSAGE(out.select(0, r).to_vector<double>() == want, std::string(dtype_name(dt)),
                    " all_gather slot ", r);
      CHECK_MESSAGE(strided.select(0, r).to_vector<double>() == want, std::string(dtype_name(dt)),
                    " strided slot ", r);
    }
    CHECK(wide.slice(2, 1, 10, 2).to_vector<double>() ==
          std::vector<double>(static_cast<size_t>(size) * 15, 0.0));
  }
}

TEST_CASE("mpi barrier holds every rank until the last one arrives") {
  auto comm = world();
  comm->barrier();
  const auto t0 = std::chrono::steady_clock::now();
  if (comm->rank() == comm->size() - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  comm->barrier();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_MESSAGE(waited >= 0.25, "rank ", comm->rank(), " left the barrier after ", waited,
                " s although the last rank arrived after 0.3 s");
}

TEST_CASE("mpi ranks know their node placement and the averaging helper") {
  auto comm = world();
  const char* lr = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  const char* ls = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (lr && ls) {
    CHECK(comm->local_rank() == std::atoi(lr));
    CHECK(comm->local_size() == std::atoi(ls));
  }
  const auto ranks =
      gather_all(*comm, {static_cast<double>(comm->rank()), static_cast<double>(comm->local_rank())});
  for (int r = 0; r < comm->size(); ++r) CHECK(ranks[r][0] == r);
  CHECK(average_over_ranks(*comm, comm->rank() + 1.0) == (comm->size() + 1) / 2.0);
  const auto sums = reduce_values(*comm, {1.0, static_cast<double>(comm->rank())}, Reduce::sum);
  CHECK(sums[0] == comm->size());
  CHECK(sums[1] == comm->size() * (comm->size() - 1) / 2.0);
  CHECK(comm->describe().find("mpi rank " + std::to_string(comm->rank())) == 0);
}

TEST_CASE("mpi two communicators keep their messages apart and argument errors come before communication") {
  auto a = world();
  auto b = init_distributed(Backend::mpi);
  CHECK(b->size() == a->size());
  CHECK(b->rank() == a->rank());
  Tensor ta = Tensor::full({5}, 1.0), tb = Tensor::full({5}, 2.0);
  Work wa = a->all_reduce_async(ta, Reduce::sum);
  Work wb = b->all_reduce_async(tb, Reduce::sum);
  wb.wait();
  wa.wait();
  CHECK(ta.to_vector<double>() == std::vector<double>(5, a->size()));
  CHECK(tb.to_vector<double>() == std::vector<double>(5, 2.0 * a->size()));
  // Misuse throws on every rank alike, without leaving any rank inside a collective.
  Tensor in = Tensor::zeros({4});
  Tensor bad = Tensor::zeros({a->size() + 1, 4});
  check_throws_with([&] { a->all_gather(in, bad); }, {"all_gather", "must be f32["});
  check_throws_with([&] { a->broadcast(in, a->size()); }, {"broadcast", "root"});
  Tensor u = Tensor::zeros({3}, DType::u8);
  check_throws_with([&] { a->all_reduce(u, Reduce::sum); }, {"u8", "wrap"});
  a->barrier();  // still in step
}

TEST_CASE("plain process: init_distributed(auto) is local and never initialises MPI" *
          doctest::test_suite("plain")) {
  if (detect_launcher().detected()) {
    FAIL("this case must run without a launcher (ctest runs it as a plain process)");
    return;
  }
  auto comm = init_distributed();
  CHECK(comm->backend() == Backend::local);
  CHECK(comm->size() == 1);
  Tensor t = Tensor::full({3}, 2.0);
  comm->all_reduce(t, Reduce::avg);
  CHECK(t.to_vector<double>() == std::vector<double>(3, 2.0));
  CHECK(average_over_ranks(*comm, 4.0) == 4.0);
  int initialized = 1;
  REQUIRE(MPI_Initialized(&initialized) == MPI_SUCCESS);
  CHECK_MESSAGE(initialized == 0, "a plain process must never initialise MPI");
}
