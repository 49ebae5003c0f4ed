// The op-case table (after ggml's test-backend-ops): one list of cases, each built from the public op API
// (framework/ops/*.h), run on every backend against the CPU float64 run of the same case.
//
// A row names the op it covers, describes its inputs (shape, value distribution, memory layout: contiguous,
// strided, transposed, or starting one element into its buffer), and calls the op. For each backend column
// (CPU f32, CPU bf16, CUDA f32 with TF32 off, CUDA bf16, CUDA f32 under bf16 autocast) the runner
//   - draws the inputs in float64, rounds them through the column's dtype, and runs the row in float64 on the
//     CPU with contiguous inputs: the reference (exact inputs, so only the op's own rounding is measured);
//   - runs the row on the column's device and dtype with the row's layouts;
//   - compares every output (relative L2 error within the row's tolerance; integer outputs exactly), then the
//     gradient of sum_j <out_j, w_j> (w_j fixed random, exact in the column's dtype) w.r.t. every floating
//     input, on both sides;
//   - on CUDA, also runs the row on the CPU in the same dtype: the results' dtypes must agree, and for rows
//     marked `bits` (data movement, Philox draws) their bits too.
// The float64 reference is trusted because tests/framework checks every op against hand-written float64
// formulas and gradcheck.
//
// Adding an op: add its row(s) to tests/ops/op_cases.cpp. test_ops's coverage check fails for a public op
// without a row, or without a row that runs on CUDA (unless kNoCudaCase lists it with the reason).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "framework/iris.h"

namespace iris::optable {

// The backend columns, as bits of OpCase::backends.
enum Backend : unsigned {
  cpu_f32 = 1,
  cpu_bf16 = 2,
  cuda_f32 = 4,       // TF32 off
  cuda_bf16 = 8,      // bf16 tensors
  cuda_autocast = 16  // f32 tensors under AutocastGuard(bf16); only rows marked `autocasts`
};
constexpr unsigned kCpu = cpu_f32 | cpu_bf16;
constexpr unsigned kCuda = cuda_f32 | cuda_bf16 | cuda_autocast;
constexpr unsigned kAll = kCpu | kCuda;
constexpr unsigned kNoBf16 = cpu_f32 | cuda_f32 | cuda_autocast;
const char* backend_name(Backend b);

// How an input is laid out in memory on the backend under test (the reference is always contiguous).
enum class Layout {
  contiguous,
  strided,     // every other element of a buffer twice as long in the last axis
  transposed,  // the transpose of a contiguous buffer (unit stride in the second-to-last axis)
  offset       // contiguous, but starting one element into its buffer (not 16-byte aligned)
};

// One input of a row.
struct Arg {
  enum Kind { normal, uniform, ties, index, mask } kind = normal;
  Shape shape;
  double a = 1, b = 0;           // normal: std a; uniform: [a, b); index: [0, a)
  DType int_dtype = DType::i64;  // index
  Layout layout = Layout::contiguous;
  bool keep_f32 = false;     // stays f32 in bf16 columns (e.g. GroupNorm's affine parameters with bf16 data)
  bool grad = true;          // floating inputs: differentiate w.r.t. it (when the row is differentiable)
  double grad_tol_bf16 = 0;  // when > 0: a tighter tolerance for its gradient in the bf16 columns

  bool floating() const { return kind == normal || kind == uniform || kind == ties; }
  Arg strided() const { return with(Layout::strided); }
  Arg transposed() const { return with(Layout::transposed); }
  Arg offset() const { return with(Layout::offset); }
  Arg f32() const {
    Arg r = *this;
    r.keep_f32 = true;
    return r;
  }
  Arg gtol_bf16(double tol) const {
    Arg r = *this;
    r.grad_tol_bf16 = tol;
    return r;
  }
  Arg nograd() const {
    Arg r = *this;
    r.grad = false;
    return r;
  }

 private:
  Arg with(Layout l) const {
    Arg r = *this;
    r.layout = l;
    return r;
  }
};
// N(0, std^2); U[lo, hi); positive U[0.5, 2); values on the grid {-1.5, -1, ..., 1.5} (exact in every
// floating dtype, so comparisons see ties); integers in [0, n); a u8 0/1 mask.
Arg N(Shape shape, double std = 1.0);
Arg U(Shape shape, double lo, double hi);
Arg P(Shape shape);
Arg Ties(Shape shape);
Arg Idx(Shape shape, int64_t n, DType dtype = DType::i64);
Arg Mask(Shape shape);

// What a row's function sees besides its inputs: the column's floating dtype (f64 for the reference) and
// device (for ops that create tensors, e.g. rand).
struct Ctx {
  DType dtype;
  Device device;
};

using Ins = std::vector<Tensor>;
using Outs = std::vector<Tensor>;
using Fn = std::function<Outs(const Ins&, const Ctx&)>;

// Which results must equal the CPU's bit for bit on CUDA (same dtype, same layouts).
enum class Bits { none, forward, all };

struct OpCase {
  std::string
      op;  // coverage key: the op's name, name(types) for an overloaded name (e.g. "add(Tensor,double)",
           // types without const/&/std::), or "Tensor::method" for tensor methods (not checked)
  std::string name;  // unique: op and what the row exercises
  std::vector<Arg> args;
  Fn fn;
  unsigned backends = kAll;
  double tol_f32 = 1e-5, tol_bf16 = 2e-2;  // relative L2, outputs and gradients
  bool differentiable = true;
  bool autocasts = false;  // runs in bf16 under autocast on CUDA (GEMM, convolution, attention)
  Bits bits = Bits::none;

  bool runs_on(Backend b) const { return (backends & b) && (b != cuda_autocast || autocasts); }
};

// The table (tests/ops/op_cases.cpp).
const std::vector<OpCase>& op_cases();

// Public functions of framework/ops/*.h that are not ops (no row needed), and ops that cannot have a CUDA
// case; each with the reason.
struct Exclusion {
  std::string key, reason;
};
const std::vector<Exclusion>& not_ops();
const std::vector<Exclusion>& no_cuda_case();

// Runs every row that runs on `b` and CHECKs it against the reference. CUDA columns need a device (and
// TF32 off, which the caller arranges). Returns the number of rows run. The environment variable
// IRIS_OP_TABLE_ROWS=<text> keeps only the rows whose name contains <text> (e.g. while adding an op).
int run_column(Backend b);

}  // namespace iris::optable
