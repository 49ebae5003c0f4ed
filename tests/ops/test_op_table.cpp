// The op table on the CPU backends (f32 and bf16 against the float64 reference), its coverage of the public
// ops declared in framework/ops/*.h, and the coverage check itself. The CUDA columns run in test_gpu
// (tests/gpu/test_gpu_op_table.cpp).
#include <map>
#include <set>

#include "tests/common/test_util.h"
#include "tests/ops/op_coverage.h"

using namespace iris;
using namespace iris::optable;

TEST_CASE("op table: CPU f32 matches the float64 reference forward and backward") {
  CHECK(run_column(cpu_f32) > 0);
}

TEST_CASE("op table: CPU bf16 matches the float64 reference forward and backward") {
  CHECK(run_column(cpu_bf16) > 0);
}

TEST_CASE("op table: every public op of framework/ops has a row and a CUDA case") {
  const std::vector<OpDecl> decls = public_ops(read_headers(IRIS_OPS_HEADER_DIR));
  // The parse must find the ops (a parser that finds nothing would make the check pass vacuously).
  std::set<std::string> keys;
  for (const OpDecl& d : decls) keys.insert(d.key);
  for (const char* k : {"conv2d", "add(Tensor,Tensor)", "add(Tensor,double)", "split", "attention", "rand",
                        "group_norm_silu", "gather_last", "autocast_input"})
    CHECK_MESSAGE(keys.count(k), "the op headers' parse lacks ", k);
  CHECK(decls.size() >= 60);
  CHECK_MESSAGE(!keys.count("operator+"), "operators are not ops");
  const std::vector<std::string> problems = coverage_problems(decls, op_cases(), not_ops(), no_cuda_case());
  for (const std::string& p : problems) FAIL_CHECK(p);
  std::map<std::string, int> rows_per_op;
  for (const OpCase& r : op_cases()) ++rows_per_op[r.op];
  MESSAGE(decls.size() << " public ops, " << op_cases().size() << " rows for " << rows_per_op.size()
                       << " ops and tensor methods");
}

TEST_CASE("op table: rows are well formed") {
  std::set<std::string> names;
  for (const OpCase& r : op_cases()) {
    CHECK_MESSAGE(names.insert(r.name).second, "two rows are named '", r.name, "'");
    CHECK_MESSAGE(static_cast<bool>(r.fn), r.name, ": no function");
    CHECK_MESSAGE((r.backends & cpu_f32), r.name, ": every row runs on the CPU f32 column (CI has no GPU)");
    if (r.autocasts)
      CHECK_MESSAGE(r.runs_on(cuda_autocast), r.name, ": autocasts but skips the autocast column");
    for (const Arg& a : r.args) {
      if (a.layout == Layout::transposed)
        CHECK_MESSAGE(a.shape.size() >= 2, r.name, ": a transposed input needs 2 axes");
      if (a.layout == Layout::strided)
        CHECK_MESSAGE((!a.shape.empty() && a.shape.back() > 1), r.name,
                      ": a strided input needs a last axis > 1");
    }
  }
}

TEST_CASE("op table: the coverage check reads declarations and flags what the table misses") {
  const std::string header = R"(
// A comment naming Tensor commented_out(const Tensor& x);
#pragma once
#include "framework/core/tensor.h"
namespace iris {
struct Params {
  Tensor member(const Tensor& x) const;  // a member, not an op
  int64_t rows() const { return 1; }
};
Tensor covered(const Tensor& x);
Tensor twice(const Tensor& a, double s = 1.0);
Tensor twice(const Tensor& a,
             const Tensor& b);
std::vector<Tensor> pieces(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);
Tensor conv(const Tensor& x, std::array<int64_t, 2> stride = {1, 1}, const Tensor& bias = Tensor());
inline Tensor helper(const Tensor& t) {
  Tensor inner(const Tensor& y);
  return t;
}
Tensor cpu_only(const Tensor& x);
Tensor no_row(const Tensor& x);
/* Tensor block_commented(const Tensor& x); */
int64_t not_a_tensor(const Tensor& x);
void set_mode(const std::string& mode);
namespace detail {
Tensor covered(const Tensor& x, const char* op);
}
inline Tensor operator+(const Tensor& a, const Tensor& b) { return twice(a, b); }
}  // namespace iris
namespace iris::detail {
Tensor also_hidden(const Tensor& x);
}
)";
  const std::vector<OpDecl> decls = public_ops({{"fake.h", header}});
  std::vector<std::string> keys;
  for (const OpDecl& d : decls) keys.push_back(d.key);
  CHECK(keys == std::vector<std::string>{"covered", "twice(Tensor,double)", "twice(Tensor,Tensor)", "pieces",
                                         "conv", "helper", "cpu_only", "no_row"});
  REQUIRE(decls.size() == 8);
  CHECK(decls[4].params == std::vector<std::string>{"Tensor", "array<int64_t,2>", "Tensor"});
  CHECK(decls[3].params == std::vector<std::string>{"Tensor", "vector<int64_t>", "int64_t"});

  auto row = [](const std::string& op, unsigned backends) {
    OpCase c;
    c.op = op;
    c.name = op + " row";
    c.backends = backends;
    return c;
  };
  const std::vector<OpCase> rows = {row("covered", kAll),
                                    row("twice(Tensor,double)", kAll),
                                    row("twice(Tensor,Tensor)", kAll),
                                    row("pieces", cpu_f32 | cuda_f32),
                                    row("conv", kAll),
                                    row("cpu_only", kCpu),
                                    row("twice", kAll),
                                    row("Tensor::reshape", kAll)};
  const std::vector<Exclusion> not_ops = {{"helper", "a helper"}, {"gone", "removed since"}};
  const std::vector<Exclusion> no_cuda = {{"conv", "no reason needed, but it has a CUDA row"}};
  const std::vector<std::string> problems = coverage_problems(decls, rows, not_ops, no_cuda);
  auto flagged = [&](const std::string& start) {
    for (const std::string& p : problems)
      if (p.rfind(start, 0) == 0) return true;
    return false;
  };
  CHECK(flagged("no_row (framework/ops/fake.h) has no row"));
  CHECK(flagged("cpu_only (framework/ops/fake.h) has no row that runs on CUDA"));
  CHECK(flagged("row 'twice row' is keyed 'twice'"));
  CHECK(flagged("not_ops() lists 'gone', which no header declares"));
  CHECK(flagged("no_cuda_case() lists 'conv', which has a row that runs on CUDA"));
  CHECK_MESSAGE(problems.size() == 5, "problems: ", problems.size());
  for (const std::string& p : problems) MESSAGE(p);

  // Listing cpu_only with a reason, dropping the stale entries and the bad row leaves only the op without a
  // row.
  std::vector<OpCase> fixed = rows;
  fixed.erase(fixed.begin() + 6);
  const std::vector<std::string> rest =
      coverage_problems(decls, fixed, {{"helper", "a helper"}}, {{"cpu_only", "no CUDA kernel"}});
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].rfind("no_row ", 0) == 0);
}
