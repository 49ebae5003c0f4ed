// Convolution on the CPU: im2col / col2im around OpenBLAS GEMMs (see conv.h for the contracts).
//
// With K = kh*kw*Cin and rows = N*Ho*Wo, and W the weight viewed as [Cout, K]:
//   forward:      out[rows, Cout] = col[rows, K] @ W^T (+ bias)
//   data grad:    dcol[rows, K]   = gout[rows, Cout] @ W,     then col2im scatters dcol into dx
//   weight grad:  dW[Cout, K]     = gout^T[Cout, rows] @ col
// Rows are processed in chunks of a fixed number of rows so that the column buffer stays within the budget
// (small enough to stay in cache between im2col and the GEMM that reads it); the weight gradient accumulates
// over chunks in a fixed order, so results depend on the budget but never on the thread count.
#include "framework/cpu/conv.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>

#include "framework/cpu/blas.h"
#include "framework/cpu/parallel.h"

namespace iris::cpu {

namespace {

// 8 MiB: measured fastest on an AMD EPYC (Zen 4, 1 MiB L2 per core, 32 MiB L3) with `iris bench-conv`;
// the column buffer is written by im2col and read back by the GEMM while still in L3.
constexpr int64_t kDefaultColBudget = int64_t{8} << 20;
constexpr int64_t kMaxColBudget = int64_t{64} << 20;
std::atomic<int64_t> g_col_budget{0};  // 0: the default

// A pointwise convolution (1x1, stride 1, no padding) or one whose kernel covers the whole unpadded image
// (Ho = Wo = 1) has an im2col matrix equal to the input itself viewed as [rows, K].
bool col_is_input(const ConvParams& p) {
  const bool pointwise = p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
  const bool whole_image = p.kh == p.H && p.kw == p.W && p.ph == 0 && p.pw == 0;
  return pointwise || whole_image;
}

// Rows per chunk: as many as fit the budget (at least one), at most all of them.
int64_t chunk_rows(const ConvParams& p, size_t elem_size) {
  const int64_t row_bytes = p.cols() * static_cast<int64_t>(elem_size);
  return std::clamp<int64_t>(conv_col_budget_bytes() / row_bytes, 1, std::max<int64_t>(p.rows(), 1));
}

// C = op(A) @ op(B) + beta * C as several GEMM calls over slices of k of at most kMaxGemmK each, summed in
// order. Why: OpenBLAS splits k into blocks of its GEMM_Q (448 for sgemm on SkylakeX, 256 or more on every
// x86-64 core since Sandy Bridge), but its single-threaded and multi-threaded drivers round the last two
// blocks differently when GEMM_Q < k < 2 GEMM_Q, so the sum order, and the rounding, would depend on the
// thread count. With k <= GEMM_Q per call neither driver splits k.
constexpr int64_t kMaxGemmK = 256;
template <class T>
void gemm_kblocked(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                   int64_t ldb, T beta, T* c, int64_t ldc) {
  const int64_t blocks = std::max<int64_t>(1, (k + kMaxGemmK - 1) / kMaxGemmK);
  const int64_t step = (k + blocks - 1) / blocks;  // even slices: 576 -> 3 x 192 rather than 256 + 256 + 64
  for (int64_t k0 = 0; k0 < k; k0 += step) {       // k >= 1 here: every conv dimension is positive
    const T* ak = ta ? a + k0 * lda : a + k0;      // A is [m, k] (or [k, m] when transposed), row-major
    const T* bk = tb ? b + k0 : b + k0 * ldb;      // B is [k, n] (or [n, k] when transposed)
    gemm(ta, tb, m, n, std::min(step, k - k0), T(1), ak, lda, bk, ldb, k0 == 0 ? beta : T(1), c, ldc);
  }
}

// An uninitialised scratch buffer (std::vector would zero it, a wasted pass over memory).
template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

// Rows [r0, r1) of the im2col matrix of x [N, H, W, Cin] into col [r1 - r0, K]. Row r is output pixel
// (n, ho, wo); its columns (i, j, c) hold x[n, ho*sh - ph + i, wo*sw - pw + j, c] or 0 outside the image.
// For fixed (r, i) the kw*Cin values are consecutive in NHWC memory: one memcpy per kernel row.
template <class T>
void im2col(const T* x, T* col, const ConvParams& p, int64_t r0, int64_t r1) {
  const int64_t K = p.cols(), span = p.kw * p.Cin;
  const int64_t grain = std::max<int64_t>(1, 16384 / K);
  parallel_for(r0, r1, grain, [&](int64_t lo, int64_t hi) {
    int64_t wo = lo % p.Wo, ho = (lo / p.Wo) % p.Ho, n = lo / (p.Wo * p.Ho);
    for (int64_t r = lo; r < hi; ++r) {
      T* dst = col + (r - r0) * K;
      const int64_t w0 = wo * p.sw - p.pw;  // input column of tap j = 0
      const int64_t jlo = std::clamp<int64_t>(-w0, 0, p.kw), jhi = std::clamp<int64_t>(p.W - w0, jlo, p.kw);
      for (int64_t i = 0; i < p.kh; ++i, dst += span) {
        const int64_t h = ho * p.sh - p.ph + i;
        if (h < 0 || h >= p.H || jlo == jhi) {
          std::memset(dst, 0, static_cast<size_t>(span) * sizeof(T));
          continue;
        }
        const T* src = x + ((n * p.H + h) * p.W + w0 + jlo) * p.Cin;
        if (jlo > 0) std::memset(dst, 0, static_cast<size_t>(jlo * p.Cin) * sizeof(T));
        std::memcpy(dst + jlo * p.Cin, src, static_cast<size_t>((jhi - jlo) * p.Cin) * sizeof(T));
        if (jhi < p.kw)
          std::memset(dst + jhi * p.Cin, 0, static_cast<size_t>((p.kw - jhi) * p.Cin) * sizeof(T));
      }
      if (++wo == p.Wo) {
        wo = 0;
        if (++ho == p.Ho) {
          ho = 0;
          ++n;
        }
      }
    }
  });
}

// Image rows t = n*H + h in [lo, hi) of dx that rows [r0, r1) of the column matrix can reach.
struct RowSpan {
  int64_t lo, hi;
};
RowSpan reached_rows(const ConvParams& p, int64_t r0, int64_t r1) {
  const int64_t per_image = p.Ho * p.Wo;
  const int64_t n0 = r0 / per_image, ho0 = (r0 / p.Wo) % p.Ho;
  const int64_t n1 = (r1 - 1) / per_image, ho1 = ((r1 - 1) / p.Wo) % p.Ho;
  return {n0 * p.H + std::clamp<int64_t>(ho0 * p.sh - p.ph, 0, p.H),
          n1 * p.H + std::clamp<int64_t>(ho1 * p.sh - p.ph + p.kh, 0, p.H)};
}

// col2im for the data gradient, parallel over dx pixels (each written by one thread, in a fixed order):
//   dx[n, h, w, :] (+)= sum over taps (i, j) with h = ho*sh - ph + i, w = wo*sw - pw + j, and the row
//   r = (n, ho, wo) in [r0, r1), of dcol[r - r0, (i, j, :)].
// Image rows [t_lo, t_hi) are visited; with `assign` they are overwritten (pixels no tap reaches get 0),
// otherwise the contributions are added to what is there.
template <class T>
void col2im(const T* dcol, T* dx, const ConvParams& p, int64_t r0, int64_t r1, int64_t t_lo, int64_t t_hi,
            bool assign) {
  const int64_t K = p.cols(), C = p.Cin;
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(1, p.W * C));
  parallel_for(t_lo, t_hi, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / p.H, h = t % p.H;
      for (int64_t w = 0; w < p.W; ++w) {
        T* d = dx + (t * p.W + w) * C;
        if (assign) std::fill(d, d + C, T(0));
        for (int64_t i = 0; i < p.kh; ++i) {
          const int64_t hs = h + p.ph - i;  // = ho * sh
          if (hs < 0 || hs % p.sh != 0 || hs / p.sh >= p.Ho) continue;
          const int64_t row_base = (n * p.Ho + hs / p.sh) * p.Wo;
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t ws = w + p.pw - j;  // = wo * sw
            if (ws < 0 || ws % p.sw != 0 || ws / p.sw >= p.Wo) continue;
            const int64_t r = row_base + ws / p.sw;
            if (r < r0 || r >= r1) continue;
            const T* s = dcol + (r - r0) * K + (i * p.kw + j) * C;
            for (int64_t c = 0; c < C; ++c) d[c] += s[c];
          }
        }
      }
    }
  });
}

// out[r, :] = bias for rows [r0, r1) (the GEMM then adds with beta = 1).
template <class T>
void fill_bias(const T* bias, T* out, int64_t cout, int64_t r0, int64_t r1) {
  parallel_for(r0, r1, std::max<int64_t>(1, 16384 / cout), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r)
      std::memcpy(out + r * cout, bias, static_cast<size_t>(cout) * sizeof(T));
  });
}

template <class T>
void forward_impl(const T* x, const T* w, const T* bias, T* out, const ConvParams& p) {
  const int64_t K = p.cols(), M = p.rows(), Co = p.Cout;
  const T beta = bias ? T(1) : T(0);
  if (col_is_input(p)) {
    if (bias) fill_bias(bias, out, Co, 0, M);
    gemm_kblocked(false, true, M, Co, K, x, K, w, K, beta, out, Co);
    return;
  }
  const int64_t chunk = chunk_rows(p, sizeof(T));
  auto col = scratch<T>(chunk * K);
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t r1 = std::min(M, r0 + chunk);
    im2col(x, col.get(), p, r0, r1);
    if (bias) fill_bias(bias, out, Co, r0, r1);
    gemm_kblocked(false, true, r1 - r0, Co, K, col.get(), K, w, K, beta, out + r0 * Co, Co);
  }
}

template <class T>
void backward_data_impl(const T* gout, const T* w, T* dx, const ConvParams& p) {
  const int64_t K = p.cols(), M = p.rows(), Co = p.Cout;
  if (col_is_input(p)) {
    gemm_kblocked(false, false, M, K, Co, gout, Co, w, K, T(0), dx, K);
    return;
  }
  const int64_t chunk = chunk_rows(p, sizeof(T));
  auto dcol = scratch<T>(chunk * K);
  const int64_t image_rows = p.N * p.H;
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t r1 = std::min(M, r0 + chunk);
    gemm_kblocked(false, false, r1 - r0, K, Co, gout + r0 * Co, Co, w, K, T(0), dcol.get(), K);
    const RowSpan span = reached_rows(p, r0, r1);
    if (r0 == 0) {
      // The first chunk overwrites every image row up to the last it reaches; the rest start at zero.
      col2im(dcol.get(), dx, p, r0, r1, 0, span.hi, /*assign=*/true);
      const int64_t row_elems = p.W * p.Cin;
      parallel_for(
          span.hi, image_rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_elems)),
          [&](int64_t lo, int64_t hi) { std::fill(dx + lo * row_elems, dx + hi * row_elems, T(0)); });
    } else {
      col2im(dcol.get(), dx, p, r0, r1, span.lo, span.hi, /*assign=*/false);
    }
  }
}

template <class T>
void backward_weight_impl(const T* gout, const T* x, T* dw, const ConvParams& p) {
  const int64_t K = p.cols(), M = p.rows(), Co = p.Cout;
  if (col_is_input(p)) {
    gemm_kblocked(true, false, Co, K, M, gout, Co, x, K, T(0), dw, K);
    return;
  }
  const int64_t chunk = chunk_rows(p, sizeof(T));
  auto col = scratch<T>(chunk * K);
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t r1 = std::min(M, r0 + chunk);
    im2col(x, col.get(), p, r0, r1);
    gemm_kblocked(true, false, Co, K, r1 - r0, gout + r0 * Co, Co, col.get(), K, r0 == 0 ? T(0) : T(1), dw,
                  K);
  }
}

// Runs `f(float{})` or `f(double{})` by dtype. bf16 has no BLAS: `bf16_fallback()` converts to f32.
template <class F, class G>
void by_dtype(DType dt, const char* op, F&& f, G&& bf16_fallback) {
  switch (dt) {
    case DType::f32:
      f(float{});
      return;
    case DType::f64:
      f(double{});
      return;
    case DType::bf16:
      bf16_fallback();
      return;
    default:
      IRIS_THROW(op, ": expected a floating dtype, got ", dtype_name(dt));
  }
}

Tensor as_f32(const Tensor& t) {
  return t.defined() ? t.detach().to(DType::f32) : t;
}

}  // namespace

int64_t conv_col_budget_bytes() {
  const int64_t b = g_col_budget.load();
  return b > 0 ? b : kDefaultColBudget;
}

void set_conv_col_budget_bytes(int64_t bytes) {
  IRIS_CHECK(bytes >= 0 && bytes <= kMaxColBudget, "set_conv_col_budget_bytes: ", bytes,
             " is outside [0, 64 MiB]");
  g_col_budget.store(bytes);
}

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const ConvParams& p) {
  if (out.numel() == 0) return;
  by_dtype(
      out.dtype(), "conv2d",
      [&](auto tag) {
        using T = decltype(tag);
        forward_impl<T>(x.data<T>(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr, out.data<T>(),
                        p);
      },
      [&] {
        Tensor o32 = Tensor::empty(out.shape(), DType::f32);
        conv2d_forward(as_f32(x), as_f32(w), as_f32(bias), o32, p);
        out.copy_(o32);
      });
}

void conv2d_backward_data(const Tensor& gout, const Tensor& w, Tensor& dx, const ConvParams& p) {
  if (dx.numel() == 0) return;
  if (gout.numel() == 0) {  // no output pixel: nothing flows back
    dx.zero_();
    return;
  }
  by_dtype(
      dx.dtype(), "conv2d backward",
      [&](auto tag) {
        using T = decltype(tag);
        backward_data_impl<T>(gout.data<T>(), w.data<T>(), dx.data<T>(), p);
      },
      [&] {
        Tensor d32 = Tensor::empty(dx.shape(), DType::f32);
        conv2d_backward_data(as_f32(gout), as_f32(w), d32, p);
        dx.copy_(d32);
      });
}

void conv2d_backward_weight(const Tensor& gout, const Tensor& x, Tensor& dw, const ConvParams& p) {
  if (dw.numel() == 0) return;
  if (gout.numel() == 0) {
    dw.zero_();
    return;
  }
  by_dtype(
      dw.dtype(), "conv2d backward",
      [&](auto tag) {
        using T = decltype(tag);
        backward_weight_impl<T>(gout.data<T>(), x.data<T>(), dw.data<T>(), p);
      },
      [&] {
        Tensor d32 = Tensor::empty(dw.shape(), DType::f32);
        conv2d_backward_weight(as_f32(gout), as_f32(x), d32, p);
        dw.copy_(d32);
      });
}

}  // namespace iris::cpu
