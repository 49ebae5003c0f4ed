// The op table's runner: inputs, the float64 reference, one backend column, and the comparisons.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "tests/common/test_util.h"
#include "tests/ops/op_table.h"

namespace iris::optable {

const char* backend_name(Backend b) {
  switch (b) {
    case cpu_f32:
      return "cpu f32";
    case cpu_bf16:
      return "cpu bf16";
    case cuda_f32:
      return "cuda f32";
    case cuda_bf16:
      return "cuda bf16";
    case cuda_autocast:
      return "cuda f32 under bf16 autocast";
  }
  return "?";
}

Arg N(Shape shape, double std) {
  Arg a;
  a.kind = Arg::normal;
  a.shape = std::move(shape);
  a.a = std;
  return a;
}
Arg U(Shape shape, double lo, double hi) {
  Arg a;
  a.kind = Arg::uniform;
  a.shape = std::move(shape);
  a.a = lo;
  a.b = hi;
  return a;
}
Arg P(Shape shape) {
  return U(std::move(shape), 0.5, 2.0);
}
Arg Ties(Shape shape) {
  Arg a;
  a.kind = Arg::ties;
  a.shape = std::move(shape);
  return a;
}
Arg Idx(Shape shape, int64_t n, DType dtype) {
  Arg a;
  a.kind = Arg::index;
  a.shape = std::move(shape);
  a.a = static_cast<double>(n);
  a.int_dtype = dtype;
  return a;
}
Arg Mask(Shape shape) {
  Arg a;
  a.kind = Arg::mask;
  a.shape = std::move(shape);
  return a;
}

namespace {

// How one run of a row is set up.
struct Setting {
  Device device;
  DType dtype;    // floating inputs (f32 for keep_f32 ones when this is bf16)
  DType quant;    // the dtype the float64 values are rounded through first
  bool autocast;  // run inside AutocastGuard(bf16)
  bool layouts;   // apply the rows' layouts (else contiguous)
};

struct Column {
  Backend backend;
  Setting setting;
  bool bf16_tol;
  const Column* cpu_twin;  // for rows marked `bits`: the CPU run in the same dtype
};

const Column kCpuF32{cpu_f32, {Device::cpu(), DType::f32, DType::f32, false, true}, false, nullptr};
const Column kCpuBf16{cpu_bf16, {Device::cpu(), DType::bf16, DType::bf16, false, true}, true, nullptr};

Column column(Backend b) {
  switch (b) {
    case cpu_f32:
      return kCpuF32;
    case cpu_bf16:
      return kCpuBf16;
    case cuda_f32:
      return {b, {Device::cuda(0), DType::f32, DType::f32, false, true}, false, &kCpuF32};
    case cuda_bf16:
      return {b, {Device::cuda(0), DType::bf16, DType::bf16, false, true}, true, &kCpuBf16};
    case cuda_autocast:
      return {b, {Device::cuda(0), DType::f32, DType::bf16, true, true}, true, nullptr};
  }
  throw std::logic_error("op table: unknown backend");
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The float64 (or integer) values of input i of a row: the same on every run of the row.
Tensor master(const OpCase& row, size_t i) {
  const Arg& a = row.args[i];
  const uint64_t seed = fnv1a(row.name) + 7919 * (i + 1);
  switch (a.kind) {
    case Arg::normal:
      return test::randn(a.shape, seed, DType::f64, a.a);
    case Arg::uniform:
      return test::uniform(a.shape, seed, a.a, a.b, DType::f64);
    case Arg::ties: {
      std::vector<double> v = test::uniform(a.shape, seed, -1.75, 1.75, DType::f64).to_vector<double>();
      for (double& x : v) x = std::round(x * 2) / 2;
      return Tensor::from_vector(v, a.shape, DType::f64, Device::cpu());
    }
    case Arg::index: {
      std::vector<double> v = test::uniform(a.shape, seed, 0.0, a.a, DType::f64).to_vector<double>();
      for (double& x : v) x = std::min(std::floor(x), a.a - 1);
      return Tensor::from_vector(v, a.shape, a.int_dtype, Device::cpu());
    }
    case Arg::mask: {
      std::vector<double> v = test::uniform(a.shape, seed, 0.0, 1.0, DType::f64).to_vector<double>();
      for (double& x : v) x = x < 0.5 ? 0.0 : 1.0;
      return Tensor::from_vector(v, a.shape, DType::u8, Device::cpu());
    }
  }
  throw std::logic_error("op table: unknown input kind");
}

Tensor apply_layout(const Tensor& t, Layout layout) {
  NoGradGuard ng;
  switch (layout) {
    case Layout::contiguous:
      return t;
    case Layout::strided:
      return test::noncontiguous(t);
    case Layout::transposed: {
      if (t.dim() < 2) return t;
      return t.transpose(-1, -2).contiguous().transpose(-1, -2);
    }
    case Layout::offset: {
      Tensor buf = Tensor::zeros({t.numel() + 1}, t.dtype(), t.device());
      Tensor view = buf.slice(0, 1, t.numel() + 1).view(t.shape());
      view.copy_(t);
      return view;
    }
  }
  return t;
}

// Fills the device allocator's cache with NaN and frees it, so that what an op forgets to write is visible.
void poison_pool(Device dev) {
  if (!dev.is_cuda()) return;
  Tensor t = Tensor::full({int64_t{1} << 24}, std::nan(""), DType::f32, dev);
  (void)t;
}

struct RunResult {
  Ins inputs;
  Outs outs;
  std::vector<Tensor> grads;  // per input; undefined where none
  bool had_history = false;   // some floating output carries autograd history
};

// One run of `row`: inputs in the setting's dtypes and layouts, forward, then backward of
// sum_j <out_j, w_j> with w_j rounded through the setting's quant dtype.
RunResult run_row(const OpCase& row, const std::vector<Tensor>& masters, const Setting& s) {
  RunResult r;
  for (size_t i = 0; i < row.args.size(); ++i) {
    const Arg& a = row.args[i];
    Tensor t = masters[i];
    if (a.floating()) {
      const DType q = a.keep_f32 && s.quant == DType::bf16 ? DType::f32 : s.quant;
      const DType dt = a.keep_f32 && s.dtype == DType::bf16 ? DType::f32 : s.dtype;
      t = t.to(q).to(dt);
    }
    t = apply_layout(t.to(s.device), s.layouts ? a.layout : Layout::contiguous);
    if (a.floating() && a.grad && row.differentiable) t.set_requires_grad();
    r.inputs.push_back(t);
  }
  poison_pool(s.device);
  {
    AutocastGuard ac(s.autocast, DType::bf16);
    r.outs = row.fn(r.inputs, Ctx{s.dtype, s.device});
  }
  if (!row.differentiable) return r;
  Tensor total;
  for (size_t j = 0; j < r.outs.size(); ++j) {
    const Tensor& o = r.outs[j];
    if (!o.defined() || !is_floating(o.dtype()) || !o.requires_grad()) continue;
    r.had_history = true;
    const Tensor w = test::randn(o.shape(), fnv1a(row.name) + 104729 * (j + 1), DType::f64)
                         .to(s.quant)
                         .to(o.dtype())
                         .to(s.device);
    const Tensor term = sum(mul(o, w));
    total = total.defined() ? add(total, term) : term;
  }
  if (total.defined()) total.backward();
  for (const Tensor& t : r.inputs) r.grads.push_back(t.requires_grad() ? t.grad() : Tensor());
  return r;
}

using test::describe;

// CHECKs `got` against the float64 reference: shape, NaN/inf only where the reference has them, relative L2
// error within tol (exact equality for integer results).
void compare(const Tensor& got, const Tensor& ref, double tol, const std::string& what) {
  if (!got.defined() || !ref.defined()) {
    CHECK_MESSAGE(got.defined() == ref.defined(), what, ": ", describe(got), " but the reference is ",
                  describe(ref));
    return;
  }
  if (is_floating(ref.dtype())) {
    test::check_rel_l2(got, ref, tol, what);
    return;
  }
  CHECK_MESSAGE(got.dtype() == ref.dtype(), what, ": dtype ", std::string(dtype_name(got.dtype())),
                " vs reference ", std::string(dtype_name(ref.dtype())));
  test::check_same_values(got, ref, what);
}

// CHECKs that two results in the same dtype have the same bits.
void compare_bits(const Tensor& got, const Tensor& cpu, const std::string& what) {
  if (!got.defined() || !cpu.defined()) {
    CHECK_MESSAGE(got.defined() == cpu.defined(), what, ": ", describe(got), " vs cpu ", describe(cpu));
    return;
  }
  if (got.shape() != cpu.shape() || got.dtype() != cpu.dtype()) {
    FAIL_CHECK(what, ": ", describe(got), " vs cpu ", describe(cpu));
    return;
  }
  const Tensor a = got.cpu().contiguous(), b = cpu.contiguous();
  const size_t es = dtype_size(a.dtype());
  const auto* pa = static_cast<const unsigned char*>(a.data_ptr());
  const auto* pb = static_cast<const unsigned char*>(b.data_ptr());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::memcmp(pa + i * es, pb + i * es, es) != 0 && bad++ == 0) first = i;
  CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", a.numel(),
                " elements differ in their bits from the CPU's (first at ", first, ")");
}

void check_row(const OpCase& row, const Column& col) {
  const std::string where = std::string("[") + backend_name(col.backend) + "] " + row.name;
  std::vector<Tensor> masters;
  for (size_t i = 0; i < row.args.size(); ++i) masters.push_back(master(row, i));
  const Setting ref_setting{Device::cpu(), DType::f64, col.setting.quant, false, false};
  const RunResult ref = run_row(row, masters, ref_setting);
  const RunResult got = run_row(row, masters, col.setting);
  const double tol = col.bf16_tol ? row.tol_bf16 : row.tol_f32;

  if (got.outs.size() != ref.outs.size()) {
    FAIL_CHECK(where, ": ", got.outs.size(), " outputs, the reference ", ref.outs.size());
    return;
  }
  for (size_t j = 0; j < ref.outs.size(); ++j) {
    const std::string what = where + ": output " + std::to_string(j);
    const Tensor& o = got.outs[j];
    if (o.defined()) CHECK_MESSAGE(o.device() == col.setting.device, what, " is on ", o.device().str());
    if (col.backend == cuda_autocast && j == 0 && o.defined())
      CHECK_MESSAGE(o.dtype() == DType::bf16, what, ": expected bf16 under autocast, got ", describe(o));
    compare(o, ref.outs[j], tol, what);
  }
  if (row.differentiable) {
    CHECK_MESSAGE(ref.had_history, where,
                  ": marked differentiable, but no floating output has autograd history");
    for (size_t i = 0; i < row.args.size(); ++i) {
      if (!ref.inputs[i].requires_grad()) continue;
      const std::string what = where + ": gradient of input " + std::to_string(i);
      const Tensor& g = got.grads[i];
      if (g.defined()) {
        CHECK_MESSAGE(g.dtype() == got.inputs[i].dtype(), what, " is ", describe(g), " for input ",
                      describe(got.inputs[i]));
        CHECK_MESSAGE(g.device() == col.setting.device, what, " is on ", g.device().str());
      }
      const double gtol = col.bf16_tol && row.args[i].grad_tol_bf16 > 0 ? row.args[i].grad_tol_bf16 : tol;
      compare(g, ref.grads[i], gtol, what);
    }
  }
  // CUDA against the CPU in the same dtype: the same result dtypes, and for rows marked `bits` the same bits.
  if (col.cpu_twin) {
    const RunResult twin = run_row(row, masters, col.cpu_twin->setting);
    for (size_t j = 0; j < got.outs.size() && j < twin.outs.size(); ++j) {
      const std::string what = where + ": output " + std::to_string(j);
      const Tensor &o = got.outs[j], &c = twin.outs[j];
      if (o.defined() && c.defined())
        CHECK_MESSAGE(o.dtype() == c.dtype(), what, " is ", describe(o), " but on the CPU ", describe(c));
      if (row.bits != Bits::none) compare_bits(o, c, what);
    }
    if (row.bits == Bits::all && row.differentiable)
      for (size_t i = 0; i < got.grads.size() && i < twin.grads.size(); ++i)
        if (got.inputs[i].requires_grad())
          compare_bits(got.grads[i], twin.grads[i], where + ": gradient of input " + std::to_string(i));
  }
}

}  // namespace

int run_column(Backend b) {
  const Column col = column(b);
  const char* filter = std::getenv("IRIS_OP_TABLE_ROWS");
  int run = 0;
  std::vector<std::pair<double, std::string>> times;
  for (const OpCase& row : op_cases()) {
    if (!row.runs_on(b)) continue;
    if (filter && row.name.find(filter) == std::string::npos) continue;
    ++run;
    const std::clock_t start = std::clock();  // CPU time of the process (all threads): load-independent
    try {
      check_row(row, col);
    } catch (const std::exception& e) {
      const std::string what = std::string("[") + backend_name(b) + "] " + row.name + ": threw " + e.what();
      FAIL_CHECK(what);
    }
    times.emplace_back(static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC, row.name);
  }
  double total = 0;
  for (const auto& t : times) total += t.first;
  std::sort(times.rbegin(), times.rend());
  std::string slowest;
  for (size_t i = 0; i < times.size() && i < 5; ++i)
    slowest += "\n  " + std::to_string(times[i].first) + " s  " + times[i].second;
  const std::string head = std::string("[") + backend_name(b) + "] ";
  MESSAGE(head << run << " rows in " << total << " s of CPU time; the slowest:" << slowest);
  return run;
}

}  // namespace iris::optable
