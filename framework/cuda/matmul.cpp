// CUDA batched GEMM through cuBLASLt (framework/kernels/matmul.h, framework/cuda/matmul.h).
//
// Row-major to cuBLAS's column-major: a row-major [M, N] C is a column-major [N, M] matrix, so
// C = A @ B is computed as C^T = B^T @ A^T: cuBLAS's first operand is our b (m = N), its second our a
// (n = M), k = K. A row-major operand (unit column stride) is passed as is (op N, ld = its row stride); a
// transposed view (unit row stride) is passed with op T (ld = its column stride), so neither is copied.
//
// Each distinct problem (dtype, compute mode, ops, sizes, leading dimensions, batch strides and pointer
// alignments) gets a plan, cached in the device's context: the matmul descriptor, the three layouts and the
// algorithm cuBLASLt's heuristic picked for the 32 MiB workspace. Pointer alignment is part of the key
// because the heuristic must be told it (it assumes 256 bytes otherwise, and an algorithm chosen for that
// would fault on a view that starts mid-buffer).
#include "framework/cuda/matmul.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "framework/core/numerics.h"
#include "framework/cuda/check.h"
#include "framework/cuda/context.h"
#include "framework/kernels/blas_view.h"
#include "framework/kernels/elementwise.h"

namespace iris::cuda {

namespace {

// The largest power of two (at most 256) dividing the address of every matrix of the batch.
uint32_t alignment_of(const void* p, int64_t batch_stride_bytes) {
  const uint64_t v = reinterpret_cast<uintptr_t>(p) | static_cast<uint64_t>(batch_stride_bytes);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

struct MatmulKey {
  int dtype = 0, compute = 0;
  int op_first = 0, op_second = 0;  // cublasOperation_t of cuBLAS's first (our b) and second (our a) operand
  int64_t m = 0, n = 0, k = 0, ld_first = 0, ld_second = 0, ldc = 0;
  int64_t batch = 0, stride_first = 0, stride_second = 0, stride_c = 0;
  uint32_t align_first = 0, align_second = 0, align_c = 0;
  auto operator<=>(const MatmulKey&) const = default;
};

struct MatmulPlan {
  bool found = false;  // the heuristic returned an algorithm
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t first = nullptr, second = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};
using MatmulCache = PlanCache<MatmulKey, std::shared_ptr<MatmulPlan>>;

cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                   int64_t stride) {
  cublasLtMatrixLayout_t layout = nullptr;
  IRIS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, type, static_cast<uint64_t>(rows),
                                               static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    IRIS_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    IRIS_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                       &stride, sizeof(stride)));
  }
  return layout;
}

std::shared_ptr<MatmulPlan> make_plan(const MatmulKey& key, Context& ctx) {
  auto plan = std::make_shared<MatmulPlan>();
  const auto type = static_cast<cudaDataType_t>(key.dtype);
  const auto compute = static_cast<cublasComputeType_t>(key.compute);
  const cudaDataType_t scale = type == CUDA_R_64F ? CUDA_R_64F : CUDA_R_32F;
  IRIS_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, compute, scale));
  const auto op_first = static_cast<cublasOperation_t>(key.op_first);
  const auto op_second = static_cast<cublasOperation_t>(key.op_second);
  IRIS_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  IRIS_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  // Stored shapes (before the op): first is m x k (op N) or k x m (op T); second is k x n or n x k.
  const bool tf = op_first == CUBLAS_OP_T, ts = op_second == CUBLAS_OP_T;
  plan->first =
      make_layout(type, tf ? key.k : key.m, tf ? key.m : key.k, key.ld_first, key.batch, key.stride_first);
  plan->second =
      make_layout(type, ts ? key.n : key.k, ts ? key.k : key.n, key.ld_second, key.batch, key.stride_second);
  plan->c = make_layout(type, key.m, key.n, key.ldc, key.batch, key.stride_c);

  cublasLtMatmulPreference_t pref = nullptr;
  IRIS_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = Context::kLtWorkspaceBytes;
  IRIS_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t aligns[4] = {key.align_first, key.align_second, key.align_c, key.align_c};
  const cublasLtMatmulPreferenceAttributes_t align_attrs[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    IRIS_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, align_attrs[i], &aligns[i], sizeof(uint32_t)));

  cublasLtMatmulHeuristicResult_t result{};
  int count = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
      ctx.cublaslt(), plan->desc, plan->first, plan->second, plan->c, plan->c, pref, 1, &result, &count);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_SUCCESS && count > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    plan->found = true;
    plan->algo = result.algo;
    plan->workspace = result.workspaceSize;
  } else if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED) {
    IRIS_CUBLAS_CHECK(st);  // a real error (not just "no algorithm for this case")
  }
  return plan;
}

// One cuBLASLt call: `batch` products starting at the given pointers, with its plan.
struct LtCall {
  const void* a;  // our a (cuBLAS's second operand)
  const void* b;  // our b (cuBLAS's first operand)
  void* c;
  MatmulPlan* plan;
};

// The cuBLAS problem of one call: `batch` products of our a (at ap, batch stride sa) and b (at bp, stride sb)
// into the contiguous C at cp (see the top of the file for the mapping).
MatmulKey make_key(DType dt, const void* ap, const BlasView& va, int64_t sa, const void* bp,
                   const BlasView& vb, int64_t sb, const void* cp, int64_t batch, int64_t M, int64_t N,
                   int64_t K) {
  const auto es = static_cast<int64_t>(dtype_size(dt));
  MatmulKey key;
  key.dtype = dt == DType::bf16 ? CUDA_R_16BF : (dt == DType::f32 ? CUDA_R_32F : CUDA_R_64F);
  key.compute = dt == DType::f64                       ? CUBLAS_COMPUTE_64F
                : (dt == DType::f32 && tf32_enabled()) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                       : CUBLAS_COMPUTE_32F;
  key.op_first = vb.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  key.op_second = va.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  key.m = N;
  key.n = M;
  key.k = K;
  key.ld_first = vb.ld;
  key.ld_second = va.ld;
  key.ldc = N;
  key.batch = batch;
  key.stride_first = batch > 1 ? sb : 0;
  key.stride_second = batch > 1 ? sa : 0;
  key.stride_c = batch > 1 ? M * N : 0;
  key.align_first = alignment_of(bp, batch > 1 ? sb * es : 0);
  key.align_second = alignment_of(ap, batch > 1 ? sa * es : 0);
  key.align_c = alignment_of(cp, batch > 1 ? M * N * es : 0);
  return key;
}

// The plan of one call (built and cached on first use).
MatmulPlan& plan_for(Context& ctx, const MatmulKey& key) {
  return *ctx.slot<MatmulCache>().get(key, [&] { return make_plan(key, ctx); });
}

// Runs out = alpha * a @ b + beta * out with a and b already in a BLAS-compatible layout. Plans every call
// first and launches only when all have an algorithm, so that a failure leaves `out` untouched (and the
// caller can retry another way, even with beta != 0). Returns false when the heuristic has no algorithm.
bool try_bmm(Context& ctx, const Tensor& a, const BlasView& va, const Tensor& b, const BlasView& vb,
             Tensor& out, double alpha, double beta, Stream stream) {
  const DType dt = out.dtype();
  const int64_t B = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a.shape()[2];
  const auto es = static_cast<int64_t>(dtype_size(dt));
  const int64_t sa = a.strides()[0], sb = b.strides()[0];
  // cuBLASLt's batch count is an int32; stay well inside the grid limits some kernels put on it.
  constexpr int64_t kMaxBatch = 65535;
  std::vector<LtCall> calls;
  for (int64_t b0 = 0; b0 < B; b0 += kMaxBatch) {
    const int64_t cnt = std::min(kMaxBatch, B - b0);
    const char* ap = static_cast<const char*>(a.data_ptr()) + b0 * sa * es;
    const char* bp = static_cast<const char*>(b.data_ptr()) + b0 * sb * es;
    char* cp = static_cast<char*>(out.data_ptr()) + b0 * M * N * es;
    MatmulPlan& plan = plan_for(ctx, make_key(dt, ap, va, sa, bp, vb, sb, cp, cnt, M, N, K));
    if (!plan.found) return false;
    calls.push_back({ap, bp, cp, &plan});
  }
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const void* alpha_p = dt == DType::f64 ? static_cast<const void*>(&alpha) : &alpha_f;
  const void* beta_p = dt == DType::f64 ? static_cast<const void*>(&beta) : &beta_f;
  for (const LtCall& c : calls) {
    const MatmulPlan& p = *c.plan;
    IRIS_CUBLAS_CHECK(cublasLtMatmul(ctx.cublaslt(), p.desc, alpha_p, c.b, p.first, c.a, p.second, beta_p,
                                     c.c, p.c, c.c, p.c, &p.algo, ctx.cublaslt_workspace(), p.workspace,
                                     stream));
  }
  return true;
}

// A fresh contiguous copy of t (what Tensor::clone makes), made on `stream`.
Tensor fresh_copy(const Tensor& t, Stream stream) {
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  copy(t, out, stream);
  return out;
}

}  // namespace

void bmm(const Tensor& a_in, const Tensor& b_in, Tensor& out, double alpha, double beta, Stream stream) {
  const int64_t B = out.shape()[0], M = out.shape()[1], N = out.shape()[2], K = a_in.shape()[2];
  const DType dt = out.dtype();
  IRIS_CHECK(dt == DType::f32 || dt == DType::bf16 || dt == DType::f64,
             "matmul: expected a floating dtype (f32, bf16, f64), got ", dtype_name(dt));
  if (B == 0 || M == 0 || N == 0) return;
  Context& ctx = context(out.device().index);
  DeviceGuard guard(ctx.device);
  if (K == 0) {  // empty sum: out = beta * out
    if (beta == 0.0)
      fill(out, 0.0, stream);
    else
      unary(UnaryOp::mul_scalar, out, out, beta, 0.0, stream);
    return;
  }
  Tensor a = a_in.detach(), b = b_in.detach();
  auto va = blas_view(M, K, a.strides()[1], a.strides()[2]);
  if (!va) {  // unit stride along neither axis: copy
    a = fresh_copy(a, stream);
    va = blas_view(M, K, a.strides()[1], a.strides()[2]);
  }
  auto vb = blas_view(K, N, b.strides()[1], b.strides()[2]);
  if (!vb) {
    b = fresh_copy(b, stream);
    vb = blas_view(K, N, b.strides()[1], b.strides()[2]);
  }
  IRIS_ASSERT(va && vb);
  if (try_bmm(ctx, a, *va, b, *vb, out, alpha, beta, stream)) return;
  // No algorithm for these strides or this alignment (views that start mid-buffer): fresh contiguous copies
  // (allocator blocks are 256-byte aligned), then also a fresh output if that is what is misaligned.
  const Tensor a2 = fresh_copy(a, stream), b2 = fresh_copy(b, stream);
  const BlasView va2 = *blas_view(M, K, a2.strides()[1], a2.strides()[2]);
  const BlasView vb2 = *blas_view(K, N, b2.strides()[1], b2.strides()[2]);
  if (try_bmm(ctx, a2, va2, b2, vb2, out, alpha, beta, stream)) return;
  Tensor tmp = beta != 0.0 ? fresh_copy(out, stream) : Tensor::empty(out.shape(), dt, out.device());
  IRIS_CHECK(try_bmm(ctx, a2, va2, b2, vb2, tmp, alpha, beta, stream),
             "matmul: cuBLASLt has no algorithm for ", dtype_name(dt), " [", B, ", ", M, ", ", K, "] @ [", B,
             ", ", K, ", ", N,
             "] even with freshly copied contiguous operands and output");
  copy(tmp, out, stream);
}

size_t matmul_plan_count(int device) {
  return context(device).slot<MatmulCache>().size();
}

}  // namespace iris::cuda
