// CUDA convolution through cuDNN's convolution API (framework/kernels/conv.h, framework/cuda/conv.h),
// plus the bias kernel.
//
// Descriptors: x and y are NHWC tensor descriptors (cudnnSetTensor4dDescriptor with CUDNN_TENSOR_NHWC, whose
// dimensions are given in N, C, H, W order), the weight an NHWC filter descriptor (KRSC: [Cout, kh, kw, Cin]
// in memory, exactly Iris's layout), the convolution a cross-correlation with the problem's padding and
// stride. Data type bf16 / f32 / f64 with compute type f32 (f64 for f64); math type CUDNN_TENSOR_OP_MATH for
// bf16, CUDNN_FMA_MATH for strict f32 (cuDNN's default math would allow TF32), CUDNN_DEFAULT_MATH for f32
// with TF32 enabled and for f64. The descriptor's math type is never changed after planning.
//
// Plans: every (direction, problem, dtype, math, search mode, alignment class of the three pointers) gets a
// plan, built once and cached in the device's context: the descriptors and the ranked list of candidate
// algorithms (successful, within kConvWorkspaceCap, deterministic ones first). A launch runs the current
// candidate; if cuDNN refuses it at run time (a "not supported" status, e.g. for an alignment the heuristic
// could not see), the next candidate is tried and kept. If no NHWC algorithm exists at all, the plan falls
// back to NCHW copies (transposed on the way in and out) — slower, but it always has an algorithm.
//
// Workspaces are temporary tensors from the caching allocator (stream-ordered, no cudaMalloc, no sync).
#include "framework/cuda/conv.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>

#include "framework/core/numerics.h"
#include "framework/cuda/loops.cuh"
#include "framework/kernels/dispatch.h"
#include "framework/kernels/elementwise.h"

namespace iris::cuda {

namespace {

// ---- bias -------------------------------------------------------------------------------------------------

// y [rows, C] += bias [C], read as vectors of V channels (C % V == 0 when V > 1).
template <class T, int V, class I>
__global__ void add_bias_kernel(T* __restrict__ y, const T* __restrict__ bias, I nvec, I cvec) {
  using C = compute_t<T>;
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += step) {
    const I c0 = (i % cvec) * V;
    if constexpr (V == 1) {
      store_as(y + i, load_as<C>(y + i) + load_as<C>(bias + c0));
    } else {
      auto* yv = reinterpret_cast<Vec<T, V>*>(y) + i;
      Vec<T, V> r = *yv;
      const Vec<T, V> b = *reinterpret_cast<const Vec<T, V>*>(bias + c0);
#pragma unroll
      for (int j = 0; j < V; ++j) store_as(&r.v[j], load_as<C>(&r.v[j]) + load_as<C>(&b.v[j]));
      *yv = r;
    }
  }
}

// y [..., C] (contiguous) += bias [C] (contiguous, y's dtype).
void add_bias(Tensor& y, const Tensor& bias, Context& ctx, Stream stream) {
  const int64_t C = y.shape().back(), n = y.numel();
  if (n == 0) return;
  dispatch_floating(y.dtype(), "conv2d (bias)", [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = 16 / sizeof(T);
    T* yp = y.data<T>();
    const T* bp = bias.data<T>();
    const bool vec = C % V == 0 && aligned16(yp) && aligned16(bp);
    const int64_t nvec = vec ? n / V : n, cvec = vec ? C / V : C;
    auto launch = [&](auto v, auto i) {
      constexpr int VV = decltype(v)::value;
      using I = decltype(i);
      add_bias_kernel<T, VV, I><<<grid_for(nvec, ctx), kThreads, 0, stream>>>(
          yp, bp, static_cast<I>(nvec), static_cast<I>(cvec));
    };
    if (vec) {
      if (nvec <= INT32_MAX)
        launch(std::integral_constant<int, V>{}, uint32_t{});
      else
        launch(std::integral_constant<int, V>{}, uint64_t{});
    } else {
      if (nvec <= INT32_MAX)
        launch(std::integral_constant<int, 1>{}, uint32_t{});
      else
        launch(std::integral_constant<int, 1>{}, uint64_t{});
    }
    IRIS_CUDA_CHECK_LAUNCH("cuda::conv2d_forward (bias)");
  });
}

// ---- plans ------------------------------------------------------------------------------------------------

enum class Dir : int { fwd = 0, bwd_data = 1, bwd_filter = 2 };

const char* dir_name(Dir d) {
  switch (d) {
    case Dir::fwd:
      return "forward";
    case Dir::bwd_data:
      return "backward data";
    case Dir::bwd_filter:
      return "backward weight";
  }
  return "?";
}

const char* algo_name(Dir d, int algo) {
  static const char* fwd[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
                              "WINOGRAD",      "WINOGRAD_NONFUSED"};
  static const char* bwd_data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* bwd_filter[] = {"ALGO_0",    "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                     "FFT_TILING"};
  if (algo < 0) return "?";
  if (d == Dir::fwd) return algo < 8 ? fwd[algo] : "?";
  if (d == Dir::bwd_data) return algo < 6 ? bwd_data[algo] : "?";
  return algo < 7 ? bwd_filter[algo] : "?";
}

const char* math_name(int m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH:
      return "DEFAULT";
    case CUDNN_TENSOR_OP_MATH:
      return "TENSOR_OP";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
      return "TENSOR_OP_ALLOW_CONVERSION";
    case CUDNN_FMA_MATH:
      return "FMA";
  }
  return "?";
}

// The largest power of two (at most 256) dividing the address.
uint32_t alignment_of(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

struct ConvKey {
  int dir = 0, dtype = 0, math = 0, search = 0;
  std::array<int64_t, 13> geom{};   // the ConvParams fields
  std::array<uint32_t, 3> align{};  // alignment classes of the three operands, in the call's order
  auto operator<=>(const ConvKey&) const = default;
};

struct Candidate {
  int algo = -1;         // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  size_t workspace = 0;  // bytes the algorithm needs
  bool deterministic = true;
  int math = 0;           // the math type cuDNN reported for it (informative)
  float time_ms = -1.0f;  // measured in "find" mode, -1 otherwise
};

// cuDNN descriptors of one problem, destroyed with the plan (plans live as long as the context).
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descriptors() = default;
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
  ~Descriptors() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

struct ConvPlan {
  Dir dir = Dir::fwd;
  bool nchw = false;    // the descriptors describe NCHW copies (fallback), not the NHWC tensors themselves
  bool upcast = false;  // bf16 problem run on f32 copies (last fallback: no bf16 algorithm at all)
  std::unique_ptr<Descriptors> desc;
  std::vector<Candidate> candidates;  // best first; never empty once built
  std::atomic<size_t> current{0};     // the candidate in use (advanced when one fails to run)
  std::string problem;                // "bf16 x[2, 17, 19, 3] w[5, 3, 3, 3] stride [1, 1] pad [1, 1] ..."
};

struct ConvPlans {
  PlanCache<ConvKey, std::shared_ptr<ConvPlan>> cache;
  std::mutex mutex;
  std::vector<std::shared_ptr<ConvPlan>> all;  // for conv_plan_descriptions
};

int to_int(int64_t v, const ConvParams& p) {
  IRIS_CHECK(v >= 0 && v <= INT_MAX, "conv2d: dimension ", v, " does not fit cuDNN's 32-bit descriptors (x [",
             p.N, ", ", p.H, ", ", p.W, ", ", p.Cin, "], weight [", p.Cout, ", ", p.kh, ", ", p.kw, ", ",
             p.Cin, "])");
  return static_cast<int>(v);
}

cudnnDataType_t cudnn_type(DType dt) {
  switch (dt) {
    case DType::f32:
      return CUDNN_DATA_FLOAT;
    case DType::bf16:
      return CUDNN_DATA_BFLOAT16;
    case DType::f64:
      return CUDNN_DATA_DOUBLE;
    default:
      IRIS_THROW("conv2d: the CUDA convolution supports f32, bf16 and f64, got ", dtype_name(dt));
  }
}

cudnnMathType_t math_for(DType dt) {
  if (dt == DType::bf16) return CUDNN_TENSOR_OP_MATH;
  if (dt == DType::f32) return tf32_enabled() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  return CUDNN_DEFAULT_MATH;
}

std::string problem_text(const ConvParams& p, DType dt, cudnnMathType_t math) {
  std::ostringstream os;
  os << dtype_name(dt) << " x [" << p.N << ", " << p.H << ", " << p.W << ", " << p.Cin << "] w [" << p.Cout
     << ", " << p.kh << ", " << p.kw << ", " << p.Cin << "] stride [" << p.sh << ", " << p.sw << "] pad ["
     << p.ph << ", " << p.pw << "] -> [" << p.N << ", " << p.Ho << ", " << p.Wo << ", " << p.Cout << "] math "
     << math_name(math);
  return os.str();
}

std::unique_ptr<Descriptors> make_descriptors(const ConvParams& p, DType dt, cudnnMathType_t math,
                                              bool nchw) {
  auto d = std::make_unique<Descriptors>();
  const cudnnDataType_t type = cudnn_type(dt);
  const cudnnDataType_t compute = dt == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  const cudnnTensorFormat_t fmt = nchw ? CUDNN_TENSOR_NCHW : CUDNN_TENSOR_NHWC;
  IRIS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d->x));
  IRIS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d->x, fmt, type, to_int(p.N, p), to_int(p.Cin, p),
                                              to_int(p.H, p), to_int(p.W, p)));
  IRIS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d->y));
  IRIS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d->y, fmt, type, to_int(p.N, p), to_int(p.Cout, p),
                                              to_int(p.Ho, p), to_int(p.Wo, p)));
  IRIS_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d->w));
  IRIS_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d->w, type, fmt, to_int(p.Cout, p), to_int(p.Cin, p),
                                              to_int(p.kh, p), to_int(p.kw, p)));
  IRIS_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d->conv));
  IRIS_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d->conv, to_int(p.ph, p), to_int(p.pw, p), to_int(p.sh, p),
                                                   to_int(p.sw, p), 1, 1, CUDNN_CROSS_CORRELATION, compute));
  IRIS_CUDNN_CHECK(cudnnSetConvolutionMathType(d->conv, math));
  // cuDNN's idea of the output shape must be ours (a descriptor mistake shows up here, not as wrong values).
  int n = 0, c = 0, h = 0, w = 0;
  IRIS_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(d->conv, d->x, d->w, &n, &c, &h, &w));
  IRIS_CHECK(n == p.N && c == p.Cout && h == p.Ho && w == p.Wo, "conv2d: cuDNN computes the output [", n,
             ", ", h, ", ", w, ", ", c, "] but Iris expects [", p.N, ", ", p.Ho, ", ", p.Wo, ", ", p.Cout,
             "] for ", problem_text(p, dt, math));
  return d;
}

// The successful results among `count` perf records, as candidates; `workspace_of(algo, &bytes)` asks cuDNN
// for an algorithm's workspace (a candidate whose query fails is dropped).
template <class Perf, class WorkspaceOf>
std::vector<Candidate> collect(const Perf* perf, int count, bool timed, WorkspaceOf workspace_of) {
  std::vector<Candidate> out;
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    const int algo = static_cast<int>(perf[i].algo);
    size_t ws = 0;
    if (workspace_of(algo, &ws) != CUDNN_STATUS_SUCCESS) continue;
    ws = std::max(ws, perf[i].memory);
    if (ws > kConvWorkspaceCap) continue;
    bool dup = false;  // cuDNN may list an algorithm once per math type: keep its first (best) entry
    for (const Candidate& c : out) dup = dup || c.algo == algo;
    if (dup) continue;
    out.push_back(Candidate{algo, ws, perf[i].determinism == CUDNN_DETERMINISTIC,
                            static_cast<int>(perf[i].mathType), timed ? perf[i].time : -1.0f});
  }
  // Deterministic algorithms first, each group in cuDNN's order (heuristic rank or measured time).
  std::stable_partition(out.begin(), out.end(), [](const Candidate& c) { return c.deterministic; });
  return out;
}

// The raw operand pointers of a call, in the direction's order: fwd (x, w, y), bwd data (dy, w, dx), bwd
// filter (x, dy, dw). Only "find" mode uses them (it runs the algorithms on them).
struct Operands {
  const void* a = nullptr;
  const void* b = nullptr;
  void* out = nullptr;
};

// cuDNN's own workspace query for one algorithm of `dir`, as collect() wants it. Find's perf.memory alone is
// not enough: on an H200 (cuDNN 9.19) Find reported 0 B for backward-data ALGO_1 on a bf16 problem with 3
// input channels, and running it with no workspace failed with "workSpaceSizeInBytes < requiredWorkspace".
auto workspace_query(Dir dir, cudnnHandle_t h, const Descriptors& d) {
  return [dir, h, &d](int algo, size_t* ws) {
    if (dir == Dir::fwd)
      return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y,
                                                     static_cast<cudnnConvolutionFwdAlgo_t>(algo), ws);
    if (dir == Dir::bwd_data)
      return cudnnGetConvolutionBackwardDataWorkspaceSize(
          h, d.w, d.y, d.conv, d.x, static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), ws);
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h, d.x, d.y, d.conv, d.w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), ws);
  };
}

std::vector<Candidate> heuristic_candidates(Dir dir, cudnnHandle_t h, const Descriptors& d) {
  if (dir == Dir::fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    IRIS_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y,
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    return collect(perf, count, false, workspace_query(dir, h, d));
  }
  if (dir == Dir::bwd_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    IRIS_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        h, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    return collect(perf, count, false, workspace_query(dir, h, d));
  }
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int count = 0;
  IRIS_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      h, d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
  return collect(perf, count, false, workspace_query(dir, h, d));
}

// Statuses after which another algorithm may still work (the candidate is not usable for this call).
bool retryable(cudnnStatus_t st) {
  return CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED ||
         st == CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER ||
         st == CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED;
}

// cudnnFind*AlgorithmEx: runs every algorithm on the call's own tensors (the output is overwritten, which
// the contract allows) with a kConvWorkspaceCap workspace, and ranks them by time. Empty when cuDNN finds
// the problem unsupported (the heuristic path then has its say).
std::vector<Candidate> find_candidates(Dir dir, cudnnHandle_t h, const Descriptors& d, const Operands& o,
                                       int device) {
  Tensor ws = Tensor::empty({static_cast<int64_t>(kConvWorkspaceCap)}, DType::u8, Device::cuda(device));
  void* wp = ws.data_ptr();
  const size_t cap = kConvWorkspaceCap;
  // The larger of Find's perf.memory and cuDNN's workspace query (see workspace_query).
  const auto fits = workspace_query(dir, h, d);
  if (dir == Dir::fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    const cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithmEx(
        h, d.x, o.a, d.w, o.b, d.conv, d.y, o.out, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf, wp, cap);
    if (retryable(st)) return {};
    IRIS_CUDNN_CHECK(st);
    return collect(perf, count, true, fits);
  }
  if (dir == Dir::bwd_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    const cudnnStatus_t st = cudnnFindConvolutionBackwardDataAlgorithmEx(
        h, d.w, o.b, d.y, o.a, d.conv, d.x, o.out, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf, wp,
        cap);
    if (retryable(st)) return {};
    IRIS_CUDNN_CHECK(st);
    return collect(perf, count, true, fits);
  }
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int count = 0;
  const cudnnStatus_t st = cudnnFindConvolutionBackwardFilterAlgorithmEx(
      h, d.x, o.a, d.y, o.b, d.conv, d.w, o.out, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf, wp,
      cap);
  if (retryable(st)) return {};
  IRIS_CUDNN_CHECK(st);
  return collect(perf, count, true, fits);
}

std::shared_ptr<ConvPlan> make_plan(Dir dir, const ConvParams& p, DType dt, cudnnMathType_t math,
                                    ConvAlgoSearch search, const Operands& ops, Context& ctx) {
  auto plan = std::make_shared<ConvPlan>();
  plan->dir = dir;
  plan->problem = problem_text(p, dt, math);
  cudnnHandle_t h = ctx.cudnn();
  // Strict f32 (no TF32): cuDNN's FMA kernels for NHWC were measured ~20x slower than its NCHW ones on an
  // H200 (a U-Net training step of 2.6 s), so f32 convolutions run on NCHW copies there.
  const bool prefer_nchw = dt == DType::f32 && math == CUDNN_FMA_MATH;
  if (prefer_nchw) {
    plan->desc = make_descriptors(p, dt, math, true);
    plan->nchw = true;
    plan->candidates = heuristic_candidates(dir, h, *plan->desc);
    if (!plan->candidates.empty()) return plan;
    plan->nchw = false;
  }
  plan->desc = make_descriptors(p, dt, math, false);
  if (search == ConvAlgoSearch::find)
    plan->candidates = find_candidates(dir, h, *plan->desc, ops, ctx.device);
  if (plan->candidates.empty()) plan->candidates = heuristic_candidates(dir, h, *plan->desc);
  if (plan->candidates.empty()) {  // no NHWC algorithm at all: NCHW copies
    plan->desc = make_descriptors(p, dt, math, true);
    plan->nchw = true;
    plan->candidates = heuristic_candidates(dir, h, *plan->desc);
  }
  if (plan->candidates.empty() && dt == DType::bf16) {
    // No bf16 algorithm in either layout: f32 copies of the operands, NHWC. TF32 math is allowed there
    // because bf16 values (8 significant bits) are exact in TF32 (11): products stay exact, sums are f32.
    plan->desc = make_descriptors(p, DType::f32, CUDNN_DEFAULT_MATH, false);
    plan->nchw = false;
    plan->upcast = true;
    plan->candidates = heuristic_candidates(dir, h, *plan->desc);
  }
  IRIS_CHECK(!plan->candidates.empty(), "conv2d ", dir_name(dir), ": cuDNN offers no algorithm (NHWC, NCHW",
             dt == DType::bf16 ? " or f32 copies" : "", ", workspace <= ", kConvWorkspaceCap >> 20,
             " MiB) for ", plan->problem);
  return plan;
}

ConvPlan& plan_for(Context& ctx, Dir dir, const ConvParams& p, DType dt, const Operands& ops) {
  const cudnnMathType_t math = math_for(dt);
  const ConvAlgoSearch search = conv_algo_search();
  ConvKey key;
  key.dir = static_cast<int>(dir);
  key.dtype = static_cast<int>(dt);
  key.math = static_cast<int>(math);
  key.search = static_cast<int>(search);
  key.geom = {p.N, p.H, p.W, p.Cin, p.Cout, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.Ho, p.Wo};
  key.align = {alignment_of(ops.a), alignment_of(ops.b), alignment_of(ops.out)};
  ConvPlans& plans = ctx.slot<ConvPlans>();
  return *plans.cache.get(key, [&] {
    std::shared_ptr<ConvPlan> plan = make_plan(dir, p, dt, math, search, ops, ctx);
    std::lock_guard<std::mutex> lock(plans.mutex);
    plans.all.push_back(plan);
    return plan;
  });
}

std::string candidate_text(const ConvPlan& plan, const Candidate& c) {
  std::ostringstream os;
  os << algo_name(plan.dir, c.algo) << " (" << c.algo << "), workspace " << c.workspace << " B, "
     << (c.deterministic ? "deterministic" : "non-deterministic") << ", reported math " << math_name(c.math);
  if (c.time_ms >= 0) os << ", " << c.time_ms << " ms";
  return os.str();
}

// Runs the plan's current candidate: run(algo, workspace, bytes) -> cudnnStatus_t. A candidate cuDNN
// refuses is skipped for good; any other error throws.
template <class Run>
void execute(ConvPlan& plan, Context& ctx, Run&& run) {
  std::string refused;
  for (size_t i = plan.current.load(); i < plan.candidates.size(); ++i) {
    const Candidate& c = plan.candidates[i];
    Tensor ws;
    if (c.workspace > 0)
      ws = Tensor::empty({static_cast<int64_t>(c.workspace)}, DType::u8, Device::cuda(ctx.device));
    const cudnnStatus_t st = run(c.algo, ws.defined() ? ws.data_ptr() : nullptr, c.workspace);
    if (st == CUDNN_STATUS_SUCCESS) {
      debug_sync("cuDNN convolution", __FILE__, __LINE__);
      if (i != plan.current.load()) plan.current.store(i);
      return;
    }
    if (!retryable(st))
      throw_cudnn_error(st,
                        (std::string("conv2d ") + dir_name(plan.dir) + " with " + candidate_text(plan, c) +
                         " for " + plan.problem)
                            .c_str(),
                        __FILE__, __LINE__);
    char msg[256] = {0};
    cudnnGetLastErrorString(msg, sizeof(msg));
    refused += std::string("; ") + algo_name(plan.dir, c.algo) + ": " + cudnnGetErrorString(st) + " " + msg;
  }
  IRIS_THROW("conv2d ", dir_name(plan.dir), ": cuDNN refused every candidate algorithm for ", plan.problem,
             refused);
}

// Scaling factors of the cuDNN calls (out = 1 * conv + 0 * out): double for f64 data, float otherwise.
struct Scalars {
  float f1 = 1.0f, f0 = 0.0f;
  double d1 = 1.0, d0 = 0.0;
  bool dbl;
  explicit Scalars(DType dt) : dbl(dt == DType::f64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : &f0; }
};

// A fresh contiguous copy of t in dtype dt (converted as Tensor::to does), made on `stream`.
Tensor fresh_copy(const Tensor& t, DType dt, Stream stream) {
  Tensor out = Tensor::empty(t.shape(), dt, t.device());
  copy(t, out, stream);
  return out;
}

// The operand itself when 16-byte aligned, else an aligned copy (fresh allocations are 256-byte aligned).
Tensor aligned_operand(const Tensor& t, Stream stream) {
  return aligned16(t.data_ptr()) ? t : fresh_copy(t, t.dtype(), stream);
}

// [A, B, C, D] NHWC-ordered (or KRSC) -> a fresh [A, D, B, C] (NCHW / KCRS) copy.
Tensor to_nchw(const Tensor& t, Stream stream) {
  Tensor out = Tensor::empty({t.size(0), t.size(3), t.size(1), t.size(2)}, t.dtype(), t.device());
  copy(t.permute({0, 3, 1, 2}), out, stream);
  return out;
}

// The raw cuDNN call of one direction on (first input, second input, output) pointers, as the plan's
// descriptors describe them.
using ConvCall = cudnnStatus_t (*)(cudnnHandle_t, const Descriptors&, const Scalars&, int algo, void* ws,
                                   size_t bytes, const void* a, const void* b, void* out);

cudnnStatus_t call_forward(cudnnHandle_t h, const Descriptors& d, const Scalars& s, int algo, void* ws,
                           size_t bytes, const void* x, const void* w, void* y) {
  return cudnnConvolutionForward(h, s.one(), d.x, x, d.w, w, d.conv,
                                 static_cast<cudnnConvolutionFwdAlgo_t>(algo), ws, bytes, s.zero(), d.y, y);
}
cudnnStatus_t call_backward_data(cudnnHandle_t h, const Descriptors& d, const Scalars& s, int algo, void* ws,
                                 size_t bytes, const void* dy, const void* w, void* dx) {
  return cudnnConvolutionBackwardData(h, s.one(), d.w, w, d.y, dy, d.conv,
                                      static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), ws, bytes, s.zero(),
                                      d.x, dx);
}
cudnnStatus_t call_backward_filter(cudnnHandle_t h, const Descriptors& d, const Scalars& s, int algo,
                                   void* ws, size_t bytes, const void* x, const void* dy, void* dw) {
  return cudnnConvolutionBackwardFilter(h, s.one(), d.x, x, d.y, dy, d.conv,
                                        static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), ws, bytes,
                                        s.zero(), d.w, dw);
}

// One direction end to end: inputs a, b and output `out` (NHWC / KRSC, the problem's dtype, any alignment).
// Misaligned tensors are replaced by aligned copies; the plan's fallbacks (NCHW, f32) work on converted
// copies and convert the result back into `out`.
void run_conv(Dir dir, ConvCall call, const ConvParams& p, const Tensor& a_in, const Tensor& b_in,
              Tensor& out, Stream stream) {
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  // The device's cuDNN handle is created bound to the compute stream; the kernel runs (and a "find" search
  // times its candidates) on the stream it was given.
  IRIS_CUDNN_CHECK(cudnnSetStream(ctx.cudnn(), stream));
  const DType dt = out.dtype();
  const Tensor a = aligned_operand(a_in, stream), b = aligned_operand(b_in, stream);
  Tensor o = aligned16(out.data_ptr()) ? out : Tensor::empty(out.shape(), dt, out.device());
  ConvPlan& plan = plan_for(ctx, dir, p, dt, {a.data_ptr(), b.data_ptr(), o.data_ptr()});
  auto prepare = [&](const Tensor& t) {
    const Tensor u = plan.upcast ? fresh_copy(t, DType::f32, stream) : t;
    return plan.nchw ? to_nchw(u, stream) : u;
  };
  const Tensor pa = prepare(a), pb = prepare(b);
  const bool direct = !plan.upcast && !plan.nchw;
  Tensor po = o;
  if (plan.nchw)
    po = Tensor::empty({o.size(0), o.size(3), o.size(1), o.size(2)}, dt, o.device());
  else if (plan.upcast)
    po = Tensor::empty(o.shape(), DType::f32, o.device());
  const Scalars s(plan.upcast ? DType::f32 : dt);
  cudnnHandle_t h = ctx.cudnn();
  execute(plan, ctx, [&](int algo, void* ws, size_t bytes) {
    return call(h, *plan.desc, s, algo, ws, bytes, pa.data_ptr(), pb.data_ptr(), po.data_ptr());
  });
  // Back into the NHWC result (converting f32 -> bf16 when upcast).
  if (!direct) copy(plan.nchw ? po.permute({0, 2, 3, 1}) : po, o, stream);
  if (!o.same(out)) copy(o, out, stream);
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const ConvParams& p,
                    Stream stream) {
  if (out.numel() == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  if (x.numel() == 0)  // no input pixel (an empty H or W, padded): the output is the bias alone
    fill(out, 0.0, stream);
  else
    run_conv(Dir::fwd, call_forward, p, x, w, out, stream);
  if (bias.defined()) add_bias(out, bias, ctx, stream);
}

void conv2d_backward_data(const Tensor& gout, const Tensor& w, Tensor& dx, const ConvParams& p,
                          Stream stream) {
  if (dx.numel() == 0) return;
  if (gout.numel() == 0) {  // no output pixel: nothing flows back
    DeviceGuard guard(dx.device().index);
    fill(dx, 0.0, stream);
    return;
  }
  run_conv(Dir::bwd_data, call_backward_data, p, gout, w, dx, stream);
}

void conv2d_backward_weight(const Tensor& gout, const Tensor& x, Tensor& dw, const ConvParams& p,
                            Stream stream) {
  if (dw.numel() == 0) return;
  if (gout.numel() == 0 || x.numel() == 0) {  // an empty sum
    DeviceGuard guard(dw.device().index);
    fill(dw, 0.0, stream);
    return;
  }
  run_conv(Dir::bwd_filter, call_backward_filter, p, x, gout, dw, stream);
}

size_t conv_plan_count(int device) {
  return context(device).slot<ConvPlans>().cache.size();
}

std::vector<std::string> conv_plan_descriptions(int device) {
  ConvPlans& plans = context(device).slot<ConvPlans>();
  std::lock_guard<std::mutex> lock(plans.mutex);
  std::vector<std::string> out;
  for (const auto& plan : plans.all) {
    const size_t cur = plan->current.load();
    std::ostringstream os;
    os << dir_name(plan->dir) << " " << plan->problem << (plan->nchw ? " (NCHW copies)" : " (NHWC)") << ": "
       << (cur < plan->candidates.size() ? candidate_text(*plan, plan->candidates[cur])
                                         : std::string("none left"))
       << "; " << plan->candidates.size() << " candidate(s)";
    out.push_back(os.str());
  }
  return out;
}

}  // namespace iris::cuda
