// Convolution on the CPU: im2col / col2im around single-threaded OpenBLAS GEMMs on tiles of rows that the
// Iris threads share out (see conv.h for the contracts and the reasoning).
//
// With K = kh*kw*Cin and rows = N*Ho*Wo, and W the weight viewed as [Cout, K]:
//   forward:      out[rows, Cout] = col[rows, K] @ W^T (+ bias)            per tile of rows
//   weight grad:  dW[Cout, K]     = sum over tiles of gout_t^T @ col_t     in a fixed order (below)
//   data grad:    dcol[rows, K]   = gout[rows, Cout] @ W                   per band of dx rows (below),
//                 then col2im gathers the band's contributions into its dx rows.
#include "framework/cpu/conv.h"


#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include "framework/cpu/blas.h"
#include "framework/cpu/conv_onednn.h"
#include "framework/cpu/parallel.h"
#include "framework/kernels/dispatch.h"

namespace iris::cpu {

namespace {

constexpr int64_t kTileBytes = int64_t{1} << 20;  // one tile of columns: about a Zen 4 / Skylake-SP L2
constexpr int64_t kMinTileRows = 128;             // fewer rows would re-pack the weight too often
constexpr int64_t kMaxTileRows = 2048;
constexpr int64_t kMaxBandBytes = int64_t{64} << 20;
// Weight gradient: tiles t = s, s + S, s + 2S, ... are summed into partial sum s (by whichever thread runs
// slot s, in increasing t), then the S partials are added in slot order. S depends only on the shapes: at
// most 16 (the parallelism of this step), at most half the tiles (each partial then sums two tiles or more,
// which keeps the final reduction small) and at most 64 MiB of partials.
constexpr int64_t kWeightSlots = 16;
constexpr int64_t kMaxPartialBytes = int64_t{64} << 20;

std::atomic<int64_t> g_tile_rows{0};
std::atomic<int64_t> g_band_bytes{ConvCpuTuning{}.band_bytes};
std::atomic<bool> g_onednn{ConvCpuTuning{}.onednn};
std::atomic<bool> g_winograd{ConvCpuTuning{}.winograd};

// A pointwise convolution (1x1, stride 1, no padding) or one whose kernel covers the whole unpadded image
// (Ho = Wo = 1) has an im2col matrix equal to the input itself viewed as [rows, K].
bool col_is_input(const ConvParams& p) {
  const bool pointwise = p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
  const bool whole_image = p.kh == p.H && p.kw == p.W && p.ph == 0 && p.pw == 0;
  return pointwise || whole_image;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// GEMM arguments are 32-bit: check every size once, before any parallel region (an exception must not
// leave an OpenMP region).
void check_blas_sizes(const ConvParams& p) {
  IRIS_CHECK(p.rows() <= INT_MAX && p.cols() <= INT_MAX && p.Cout <= INT_MAX, "conv2d: N*Ho*Wo = ", p.rows(),
             ", kh*kw*Cin = ", p.cols(), " or Cout = ", p.Cout, " exceeds the 32-bit BLAS interface");
}

// An uninitialised buffer (std::vector would zero it: a wasted pass over memory).
template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

// Rows [r0, r1) of the im2col matrix of x [N, H, W, Cin] into col [r1 - r0, K]. Row r is output pixel
// (n, ho, wo); its columns (i, j, c) hold x[n, ho*sh - ph + i, wo*sw - pw + j, c] or 0 outside the image.
// For fixed (r, i) the kw*Cin values are consecutive in NHWC memory: one memcpy per kernel row.
template <class T>
const T* im2col(const T* x, T* col, const ConvParams& p, int64_t r0, int64_t r1) {
  const int64_t K = p.cols(), span = p.kw * p.Cin;
  int64_t wo = r0 % p.Wo, ho = (r0 / p.Wo) % p.Ho, n = r0 / (p.Wo * p.Ho);
  for (int64_t r = r0; r < r1; ++r) {
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
  return col;
}

// d[0, n) += s[0, n): the inner loop of col2im, compiled for AVX-512, AVX2 and baseline x86-64 and picked
// at load time (the library is built for baseline x86-64). Plain adds: the same result on every path.
__attribute__((target_clones("avx512f", "avx2", "default"))) void add_into(float* __restrict d,
                                                                           const float* __restrict s,
                                                                           int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void add_into(double* __restrict d,
                                                                           const double* __restrict s,
                                                                           int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];
}

// A half-open range of rows.
struct RowSpan {
  int64_t lo, hi;
};

// col2im of one dx image row t = (n, h), [W, Cin]: adds (or, with `assign`, writes) the contributions of
// column rows [r0, r1) (held in dcol from row r0 on):
//   dx[n, h, w, :] += dcol[r, (i, j, :)] for every tap with h = ho*sh - ph + i, w = wo*sw - pw + j and
//   r = (n, ho, wo) in [r0, r1).
// Loops run kernel row i, kernel column j, then w, so that each (i, j) reads dcol at a constant stride.
// The order of the additions into each element is fixed (i, then j), whatever the threads.
template <class T>
void col2im_row(const T* dcol, T* dx, const ConvParams& p, int64_t r0, int64_t r1, int64_t t, bool assign) {
  const int64_t K = p.cols(), C = p.Cin;
  const int64_t n = t / p.H, h = t % p.H;
  T* row = dx + t * p.W * C;
  if (assign) std::fill(row, row + p.W * C, T(0));
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t hs = h + p.ph - i;  // = ho * sh
    if (hs < 0 || hs % p.sh != 0 || hs / p.sh >= p.Ho) continue;
    const int64_t row_base = (n * p.Ho + hs / p.sh) * p.Wo;  // column row of (n, ho, 0)
    for (int64_t j = 0; j < p.kw; ++j) {
      // w = wo*sw - pw + j for wo in [0, Wo), within [0, W), and the row within [r0, r1).
      int64_t wo_lo = std::max<int64_t>(0, ceil_div(std::max<int64_t>(0, p.pw - j), p.sw));
      int64_t wo_hi = std::min<int64_t>(p.Wo, ceil_div(p.W + p.pw - j, p.sw));
      wo_lo = std::max(wo_lo, r0 - row_base);
      wo_hi = std::min(wo_hi, r1 - row_base);
      for (int64_t wo = wo_lo; wo < wo_hi; ++wo) {
        const int64_t w = wo * p.sw - p.pw + j;
        add_into(row + w * C, dcol + (row_base + wo - r0) * K + (i * p.kw + j) * C, C);
      }
    }
  }
}

template <class T>
void forward_impl(const T* x, const T* w, const T* bias, T* out, const ConvParams& p) {
  const int64_t K = p.cols(), M = p.rows(), Co = p.Cout;
  const bool direct = col_is_input(p);
  const int64_t R = conv_tile_rows(p, sizeof(T)), tiles = ceil_div(M, R);
  const int threads = task_threads(tiles);
  auto cols = scratch<T>(direct ? 0 : threads * R * K);
  BlasSingleThreadScope single_threaded_blas;
  run_tasks(tiles, threads, [&](int64_t t, int thread) {
    const int64_t r0 = t * R, r1 = std::min(M, r0 + R);
    const T* a = direct ? x + r0 * K : im2col(x, cols.get() + thread * R * K, p, r0, r1);
    T* o = out + r0 * Co;
    if (bias)
      for (int64_t r = 0; r < r1 - r0; ++r)
        std::memcpy(o + r * Co, bias, static_cast<size_t>(Co) * sizeof(T));
    gemm(false, true, r1 - r0, Co, K, T(1), a, K, w, K, bias ? T(1) : T(0), o, Co);
  });
}

template <class T>
void backward_weight_impl(const T* gout, const T* x, T* dw, const ConvParams& p) {
  const int64_t K = p.cols(), M = p.rows(), Co = p.Cout, size = Co * K;
  const bool direct = col_is_input(p);
  const int64_t R = conv_tile_rows(p, sizeof(T)), tiles = ceil_div(M, R);
  const int64_t by_memory = kMaxPartialBytes / (size * static_cast<int64_t>(sizeof(T)));
  const int64_t slots = std::max<int64_t>(1, std::min({kWeightSlots, by_memory, tiles / 2}));
  const int threads = task_threads(slots);
  auto partials = scratch<T>((slots - 1) * size);  // slot 0 sums straight into dw
  auto cols = scratch<T>(direct ? 0 : threads * R * K);
  {
    BlasSingleThreadScope single_threaded_blas;
    run_tasks(slots, threads, [&](int64_t s, int thread) {
      T* acc = s == 0 ? dw : partials.get() + (s - 1) * size;
      for (int64_t t = s; t < tiles; t += slots) {
        const int64_t r0 = t * R, r1 = std::min(M, r0 + R);
        const T* a = direct ? x + r0 * K : im2col(x, cols.get() + thread * R * K, p, r0, r1);
        gemm(true, false, Co, K, r1 - r0, T(1), gout + r0 * Co, Co, a, K, t == s ? T(0) : T(1), acc, K);
      }
    });
  }
  if (slots == 1) return;
  // dw += partials, in slot order. A second parallel region is only worth its fork and join (expensive when
  // the cores are shared with other processes) for large weights.
  auto reduce = [&](int64_t lo, int64_t hi) {
    for (int64_t e = lo; e < hi; ++e) {
      T v = dw[e];
      for (int64_t s = 1; s < slots; ++s) v += partials[(s - 1) * size + e];
      dw[e] = v;
    }
  };
  if ((slots - 1) * size < (int64_t{1} << 22))
    reduce(0, size);
  else
    parallel_for(0, size, 16384, reduce);
}

// Data gradient in bands of dx rows: task (n, b) computes the column-gradient rows that dx rows
// [b*Bh, (b+1)*Bh) of image n receive from (one GEMM into the thread's buffer) and gathers them (col2im), so
// each task writes only its own dx rows and needs no other task's results: one parallel region, no barrier,
// and the column rows are used while in cache. Output rows that feed two bands (the kernel's halo) are
// computed by both; bands are as tall as the band budget allows (a whole image when it fits) to keep that
// small. Band sizes depend only on the shapes, so the results do not depend on the thread count.
template <class T>
void backward_data_impl(const T* gout, const T* w, T* dx, const ConvParams& p) {
  const int64_t K = p.cols(), M = p.rows(), Co = p.Cout;
  BlasSingleThreadScope single_threaded_blas;
  if (col_is_input(p)) {  // dx viewed as [rows, K] is the column gradient itself
    const int64_t R = conv_tile_rows(p, sizeof(T)), tiles = ceil_div(M, R);
    run_tasks(tiles, task_threads(tiles), [&](int64_t t, int) {
      const int64_t r0 = t * R, r1 = std::min(M, r0 + R);
      gemm(false, false, r1 - r0, K, Co, T(1), gout + r0 * Co, Co, w, K, T(0), dx + r0 * K, K);
    });
    return;
  }
  const int64_t out_row_bytes = p.Wo * K * static_cast<int64_t>(sizeof(T));  // one output row of dcol
  const int64_t band_h = std::min(p.H, std::max<int64_t>(1, g_band_bytes.load() / out_row_bytes) * p.sh);
  const int64_t bands = ceil_div(p.H, band_h);
  // Output rows [ho_lo, ho_hi) reach dx rows [h0, h1): ho*sh - ph + i in [h0, h1) for some tap i.
  auto out_rows = [&](int64_t b) {
    const int64_t h0 = b * band_h, h1 = std::min(p.H, h0 + band_h);
    const int64_t lo = std::max<int64_t>(0, ceil_div(std::max<int64_t>(0, h0 + p.ph - p.kh + 1), p.sh));
    const int64_t hi = std::min<int64_t>(p.Ho, (h1 - 1 + p.ph) / p.sh + 1);
    return RowSpan{lo, std::max(lo, hi)};
  };
  int64_t most = 0;
  for (int64_t b = 0; b < bands; ++b) most = std::max(most, out_rows(b).hi - out_rows(b).lo);
  const int64_t tasks = p.N * bands;
  const int threads = task_threads(tasks);
  auto dcol = scratch<T>(threads * most * p.Wo * K);
  run_tasks(tasks, threads, [&](int64_t task, int thread) {
    const int64_t n = task / bands, b = task % bands;
    const RowSpan ho = out_rows(b);
    const int64_t r0 = (n * p.Ho + ho.lo) * p.Wo, r1 = (n * p.Ho + ho.hi) * p.Wo;
    T* buf = dcol.get() + thread * most * p.Wo * K;
    gemm(false, false, r1 - r0, K, Co, T(1), gout + r0 * Co, Co, w, K, T(0), buf, K);
    const int64_t h0 = b * band_h, h1 = std::min(p.H, h0 + band_h);
    for (int64_t h = h0; h < h1; ++h) col2im_row(buf, dx, p, r0, r1, n * p.H + h, /*assign=*/true);
  });
}

// Bias gradient: db[c] = sum over rows of gout[r, c]. Rows are cut into fixed blocks and channels into
// groups of 16 (a cache line of f32); each (block, group) task sums its rows in order into a partial in
// double (single-precision inputs too: a wider accumulator, as the reductions use), then the partials are
// added in block order. Fixed blocks, fixed order: the same result at any thread count.
template <class T>
void backward_bias_impl(const T* gout, T* db, const ConvParams& p) {
  using Acc = double;
  constexpr int64_t kRowsPerBlock = 4096, kGroup = 16;
  const int64_t M = p.rows(), Co = p.Cout;
  const int64_t blocks = ceil_div(M, kRowsPerBlock), groups = ceil_div(Co, kGroup);
  std::unique_ptr<Acc[]> partial(new Acc[static_cast<size_t>(blocks * Co)]);
  const int64_t tasks = blocks * groups;
  run_tasks(tasks, task_threads(tasks), [&](int64_t task, int) {
    const int64_t blk = task / groups, c0 = (task % groups) * kGroup, c1 = std::min(Co, c0 + kGroup);
    Acc acc[kGroup] = {};
    for (int64_t r = blk * kRowsPerBlock; r < std::min(M, (blk + 1) * kRowsPerBlock); ++r) {
      const T* row = gout + r * Co;
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += load_as<Acc>(row + c);
    }
    for (int64_t c = c0; c < c1; ++c) partial[blk * Co + c] = acc[c - c0];
  });
  for (int64_t c = 0; c < Co; ++c) {
    Acc v = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) v += partial[blk * Co + c];
    store_as(db + c, v);
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

// IRIS_CPU_CONV (auto, winograd, direct or im2col) chooses the f32 method for the whole process, read once,
// before the first convolution or tuning call; a value it does not know is an error naming the variable.
bool known_method(const std::string& m) {
  return m == "auto" || m == "winograd" || m == "direct" || m == "im2col";
}

void read_method_from_environment() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* v = std::getenv("IRIS_CPU_CONV");
    if (!v || !*v) return;
    const std::string m = v;
    IRIS_CHECK(known_method(m), "IRIS_CPU_CONV='", m, "': expected auto, winograd, direct or im2col");
    g_onednn.store(m != "im2col");
    g_winograd.store(m == "auto" || m == "winograd");
  });
}

}  // namespace

int64_t conv_tile_rows(const ConvParams& p, size_t elem_size) {
  const int64_t forced = g_tile_rows.load();
  if (forced > 0) return forced;
  return std::clamp<int64_t>(kTileBytes / (p.cols() * static_cast<int64_t>(elem_size)), kMinTileRows,
                             kMaxTileRows);
}

ConvCpuTuning conv_cpu_tuning() {
  read_method_from_environment();
  return {g_tile_rows.load(), g_band_bytes.load(), g_onednn.load(), g_winograd.load()};
}

void set_conv_cpu_tuning(const ConvCpuTuning& t) {
  read_method_from_environment();
  IRIS_CHECK(t.tile_rows >= 0 && t.tile_rows <= (int64_t{1} << 20), "set_conv_cpu_tuning: tile_rows ",
             t.tile_rows, " is outside [0, 2^20]");
  IRIS_CHECK(t.band_bytes >= 1 && t.band_bytes <= kMaxBandBytes, "set_conv_cpu_tuning: band_bytes ",
             t.band_bytes, " is outside [1, 64 MiB]");
  g_tile_rows.store(t.tile_rows);
  g_band_bytes.store(t.band_bytes);
  g_onednn.store(t.onednn);
  g_winograd.store(t.winograd);
}

void apply_conv_method(ConvCpuTuning& t, const std::string& method, const std::string& what) {
  IRIS_CHECK(known_method(method), what, " must be auto, winograd, direct or im2col, got '", method, "'");
  IRIS_CHECK(method == "auto" || method == "im2col" || onednn::available(), what, " ", method,
             ": this build of Iris has no oneDNN (Debian package libdnnl-dev)");
  if (method == "auto") return;  // the library's choice (IRIS_CPU_CONV, else oneDNN with Winograd)
  t.onednn = method != "im2col";
  t.winograd = method == "winograd";
}

std::string conv_method_name(const ConvCpuTuning& t) {
  if (!t.onednn || !onednn::available()) return "im2col";
  return t.winograd ? "winograd" : "direct";
}

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out, const ConvParams& p) {
  read_method_from_environment();
  if (out.numel() == 0) return;
  check_blas_sizes(p);
  by_dtype(
      out.dtype(), "conv2d",
      [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_same_v<T, float>)
          if (g_onednn.load() && onednn::conv2d_forward(x.data<T>(), w.data<T>(),
                                                        bias.defined() ? bias.data<T>() : nullptr,
                                                        out.data<T>(), p, g_winograd.load()))
            return;
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
  read_method_from_environment();
  if (dx.numel() == 0) return;
  if (gout.numel() == 0) {  // no output pixel: nothing flows back
    dx.zero_();
    return;
  }
  check_blas_sizes(p);
  by_dtype(
      dx.dtype(), "conv2d backward",
      [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_same_v<T, float>)
          if (g_onednn.load() && onednn::conv2d_backward_data(gout.data<T>(), w.data<T>(), dx.data<T>(), p,
                                                              g_winograd.load()))
            return;
        backward_data_impl<T>(gout.data<T>(), w.data<T>(), dx.data<T>(), p);
      },
      [&] {
        Tensor d32 = Tensor::empty(dx.shape(), DType::f32);
        conv2d_backward_data(as_f32(gout), as_f32(w), d32, p);
        dx.copy_(d32);
      });
}

void conv2d_backward_weight(const Tensor& gout, const Tensor& x, Tensor& dw, const ConvParams& p) {
  read_method_from_environment();
  if (dw.numel() == 0) return;
  if (gout.numel() == 0) {
    dw.zero_();
    return;
  }
  check_blas_sizes(p);
  by_dtype(
      dw.dtype(), "conv2d backward",
      [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_same_v<T, float>)
          if (g_onednn.load() && onednn::conv2d_backward_weight(gout.data<T>(), x.data<T>(), dw.data<T>(), p,
                                                                g_winograd.load()))
            return;
        backward_weight_impl<T>(gout.data<T>(), x.data<T>(), dw.data<T>(), p);
      },
      [&] {
        Tensor d32 = Tensor::empty(dw.shape(), DType::f32);
        conv2d_backward_weight(as_f32(gout), as_f32(x), d32, p);
        dw.copy_(d32);
      });
}

void conv2d_backward_bias(const Tensor& gout, Tensor& db, const ConvParams& p) {
  if (db.numel() == 0) return;
  if (gout.numel() == 0) {
    db.zero_();
    return;
  }
  dispatch_floating(db.dtype(), "conv2d backward", [&](auto tag) {
    using T = decltype(tag);
    backward_bias_impl<T>(gout.data<T>(), db.data<T>(), p);
  });
}

}  // namespace iris::cpu
