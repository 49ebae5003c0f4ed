#include "framework/cpu/blas.h"

#include <vector>

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "framework/core/error.h"

namespace iris::cpu {

namespace {

// CBLAS enums (values fixed by the CBLAS standard).
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

using sgemm_t = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                         float*, int);
using dgemm_t = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int, double,
                         double*, int);
using set_threads_t = void (*)(int);
using get_threads_t = int (*)();
using get_str_t = char* (*)();
// LAPACK's dsyevd (Fortran calling convention; the trailing lengths of the two character arguments).
using dsyevd_t = void (*)(const char*, const char*, const int*, double*, const int*, double*, double*,
                          const int*, int*, const int*, int*, size_t, size_t);

struct Blas {
  sgemm_t sgemm = nullptr;
  dgemm_t dgemm = nullptr;
  set_threads_t set_threads = nullptr;
  get_threads_t get_threads = nullptr;
  get_str_t corename = nullptr;
  get_str_t config = nullptr;
  dsyevd_t dsyevd = nullptr;
  std::string choice;
};

// The OpenBLAS core type the CPU supports best, or "" to let OpenBLAS decide.
std::string preferred_coretype() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

Blas load() {
  Blas b;
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  if (user && *user) {
    b.choice = std::string("OPENBLAS_CORETYPE=") + user + " from the environment";
  } else {
    const std::string core = preferred_coretype();
    if (!core.empty()) {
      setenv("OPENBLAS_CORETYPE", core.c_str(), 0);
      b.choice = "chosen by Iris from the CPU's features";
    } else {
      b.choice = "chosen by OpenBLAS";
    }
  }
  void* h = nullptr;
  for (const char* name : {"libopenblas.so.0", "libopenblas.so", "libopenblasp-r0.so"}) {
    h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (h) break;
  }
  IRIS_CHECK(h != nullptr, "cannot load OpenBLAS (libopenblas.so.0): ", dlerror(),
             "; install it with tools/setup.sh (Debian package libopenblas0)");
  b.sgemm = reinterpret_cast<sgemm_t>(dlsym(h, "cblas_sgemm"));
  b.dgemm = reinterpret_cast<dgemm_t>(dlsym(h, "cblas_dgemm"));
  b.set_threads = reinterpret_cast<set_threads_t>(dlsym(h, "openblas_set_num_threads"));
  b.get_threads = reinterpret_cast<get_threads_t>(dlsym(h, "openblas_get_num_threads"));
  b.corename = reinterpret_cast<get_str_t>(dlsym(h, "openblas_get_corename"));
  b.config = reinterpret_cast<get_str_t>(dlsym(h, "openblas_get_config"));
  b.dsyevd = reinterpret_cast<dsyevd_t>(dlsym(h, "dsyevd_"));  // OpenBLAS builds with LAPACK have it
  IRIS_CHECK(b.sgemm && b.dgemm, "the loaded OpenBLAS lacks cblas_sgemm/cblas_dgemm");
  // Every GEMM call is single-threaded: Iris splits the work over its own threads (results then do not
  // depend on the thread count, and no second pool of spinning threads competes for the cores).
  if (b.set_threads) b.set_threads(1);
  return b;
}

Blas& blas() {
  static Blas b = load();
  return b;
}

int to_int(int64_t v, const char* what) {
  IRIS_CHECK(v >= 0 && v <= INT32_MAX, "gemm: ", what, " = ", v, " exceeds the 32-bit BLAS interface");
  return static_cast<int>(v);
}

}  // namespace

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  blas().sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, to_int(m, "m"), to_int(n, "n"),
               to_int(k, "k"), alpha, a, to_int(lda, "lda"), b, to_int(ldb, "ldb"), beta, c,
               to_int(ldc, "ldc"));
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  blas().dgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, to_int(m, "m"), to_int(n, "n"),
               to_int(k, "k"), alpha, a, to_int(lda, "lda"), b, to_int(ldb, "ldb"), beta, c,
               to_int(ldc, "ldc"));
}

bool symmetric_eigen_lapack(std::vector<double>& a, int64_t n, std::vector<double>& values) {
  const dsyevd_t f = blas().dsyevd;
  if (!f) return false;
  const int ni = to_int(n, "n");
  values.assign(static_cast<size_t>(n), 0.0);
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  f("V", "L", &ni, a.data(), &ni, values.data(), &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
  IRIS_CHECK(info == 0, "LAPACK dsyevd: workspace query failed (info ", info, ")");
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  f("V", "L", &ni, a.data(), &ni, values.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  IRIS_CHECK(info == 0, "LAPACK dsyevd: the eigensolver did not converge (info ", info, ") on a ", n, "x", n,
             " matrix");
  return true;
}

void check_cpu_support() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  auto need = [](bool have, const char* isa) {
    IRIS_CHECK(have, "this build of Iris uses ", isa,
               " instructions, which this CPU lacks: rebuild with -DIRIS_CPU_ARCH=x86-64 (or native)");
  };
#if defined(__AVX2__)
  need(__builtin_cpu_supports("avx2"), "AVX2");
#endif
#if defined(__FMA__)
  need(__builtin_cpu_supports("fma"), "FMA");
#endif
#if defined(__AVX512F__)
  need(__builtin_cpu_supports("avx512f"), "AVX-512");
#endif
#endif
}

void blas_set_num_threads(int n) {
  if (blas().set_threads) blas().set_threads(n);
}

int blas_num_threads() {
  return blas().get_threads ? blas().get_threads() : 1;
}

BlasSingleThreadScope::BlasSingleThreadScope() : previous_(blas_num_threads()) {
  if (previous_ != 1) blas_set_num_threads(1);
}

BlasSingleThreadScope::~BlasSingleThreadScope() {
  if (previous_ != 1) blas_set_num_threads(previous_);
}

std::string blas_info() {
  Blas& b = blas();
  std::string s = b.config ? b.config() : "OpenBLAS";
  if (b.corename) s += std::string(", core ") + b.corename();
  return s + " (" + b.choice + ")";
}

}  // namespace iris::cpu
