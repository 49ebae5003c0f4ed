// conv2d: float64 nested-loop reference, gradcheck in x, w and bias over odd geometries, many tiles and
// bands, non-contiguous inputs, f32 / bf16 against f64, dtype promotion, thread-count independence and
// misuse.
#include "framework/cpu/conv.h"
#include "framework/cpu/conv_onednn.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

struct Geometry {
  const char* name;
  int64_t N, H, W, Cin, Cout, kh, kw, sh, sw, ph, pw;
};

// Small shapes with odd sizes that exercise every branch of im2col / col2im.
std::vector<Geometry> geometries() {
  return {
      {"3x3 stride 1 pad 1", 2, 5, 7, 3, 4, 3, 3, 1, 1, 1, 1},
      {"3x3 stride 2 pad 1", 2, 5, 7, 3, 4, 3, 3, 2, 2, 1, 1},
      {"1x1 (pointwise GEMM)", 2, 5, 7, 3, 4, 1, 1, 1, 1, 0, 0},
      {"1x1 stride 2", 2, 5, 7, 3, 4, 1, 1, 2, 2, 0, 0},
      {"1x1 stride 2, last row and column unreached", 2, 6, 8, 3, 4, 1, 1, 2, 2, 0, 0},
      {"5x5 pad 2", 2, 5, 7, 3, 4, 5, 5, 1, 1, 2, 2},
      {"2x3 kernel, stride 1x2, pad 0x1", 2, 5, 7, 3, 4, 2, 3, 1, 2, 0, 1},
      {"3x2 kernel, stride 2x1, pad 1x0", 2, 5, 7, 3, 4, 3, 2, 2, 1, 1, 0},
      {"3x3 padding larger than needed", 2, 5, 7, 3, 4, 3, 3, 1, 1, 3, 4},
      {"3x3 stride 2 no pad, trailing rows unreached", 2, 6, 6, 3, 4, 3, 3, 2, 2, 0, 0},
      {"kernel covers the whole image", 2, 5, 7, 3, 4, 5, 7, 1, 1, 0, 0},
      {"stride larger than the kernel", 1, 7, 6, 2, 3, 2, 2, 3, 3, 1, 0},
  };
}

ConvParams params_of(const Geometry& g) {
  return make_conv_params({g.N, g.H, g.W, g.Cin}, {g.Cout, g.kh, g.kw, g.Cin}, {g.sh, g.sw}, {g.ph, g.pw});
}

// The definition, in plain loops over float64 values.
Tensor reference_conv(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const auto bv = bias.defined() ? bias.to_vector<double>() : std::vector<double>(p.Cout, 0.0);
  std::vector<double> out(p.N * p.Ho * p.Wo * p.Cout);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t ho = 0; ho < p.Ho; ++ho)
      for (int64_t wo = 0; wo < p.Wo; ++wo)
        for (int64_t co = 0; co < p.Cout; ++co) {
          double s = bv[co];
          for (int64_t i = 0; i < p.kh; ++i)
            for (int64_t j = 0; j < p.kw; ++j) {
              const int64_t h = ho * p.sh - p.ph + i, ww = wo * p.sw - p.pw + j;
              if (h < 0 || h >= p.H || ww < 0 || ww >= p.W) continue;
              for (int64_t c = 0; c < p.Cin; ++c)
                s +=
                    xv[((n * p.H + h) * p.W + ww) * p.Cin + c] * wv[((co * p.kh + i) * p.kw + j) * p.Cin + c];
            }
          out[((n * p.Ho + ho) * p.Wo + wo) * p.Cout + co] = s;
        }
  return Tensor::from_vector(out, {p.N, p.Ho, p.Wo, p.Cout});
}

// Sets the CPU tiling for one scope (to force many tiles, partial sums and bands on small shapes).
struct TuningScope {
  explicit TuningScope(int64_t tile_rows, int64_t band_bytes) {
    cpu::ConvCpuTuning t;
    t.tile_rows = tile_rows;
    t.band_bytes = band_bytes;
    cpu::set_conv_cpu_tuning(t);
  }
  ~TuningScope() { cpu::set_conv_cpu_tuning(cpu::ConvCpuTuning{}); }
};

struct Grads3 {
  Tensor out, dx, dw, db;
};
// Output and gradients of sum(conv(x, w, b) * probe) with respect to x, w and b.
Grads3 run_with_grads(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Geometry& g,
                      uint64_t seed) {
  Tensor x = x0.detach().set_requires_grad(), w = w0.detach().set_requires_grad(),
         b = b0.detach().set_requires_grad();
  Tensor out = conv2d(x, w, b, {g.sh, g.sw}, {g.ph, g.pw});
  const Tensor probe = randn(out.shape(), seed, out.dtype());
  sum(mul(out, probe)).backward();
  return {out.detach(), x.grad(), w.grad(), b.grad()};
}

}  // namespace

TEST_CASE("ConvParams derives output sizes and compares as a value") {
  const ConvParams p = make_conv_params({2, 5, 7, 3}, {4, 3, 3, 3}, {2, 2}, {1, 1});
  CHECK(p.Ho == 3);
  CHECK(p.Wo == 4);
  CHECK(p.rows() == 2 * 3 * 4);
  CHECK(p.cols() == 27);
  ConvParams q = p;
  CHECK(q == p);
  CHECK(ConvParamsHash{}(q) == ConvParamsHash{}(p));
  q.sw = 1;
  CHECK_FALSE(q == p);
}

TEST_CASE("conv2d matches a float64 nested-loop reference") {
  for (const Geometry& g : geometries()) {
    CAPTURE(g.name);
    const ConvParams p = params_of(g);
    const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 1), w = randn({g.Cout, g.kh, g.kw, g.Cin}, 2),
                 b = randn({g.Cout}, 3);
    const Tensor y = conv2d(x, w, b, {g.sh, g.sw}, {g.ph, g.pw});
    REQUIRE(y.shape() == Shape{g.N, p.Ho, p.Wo, g.Cout});
    check_close(y, reference_conv(x, w, b, p), 1e-12, 1e-12);
    check_close(conv2d(x, w, Tensor(), {g.sh, g.sw}, {g.ph, g.pw}), reference_conv(x, w, Tensor(), p), 1e-12,
                1e-12);
  }
}

TEST_CASE("conv2d gradcheck in x, w and bias") {
  for (const Geometry& g : geometries()) {
    CAPTURE(g.name);
    Tensor x = randn({g.N, g.H, g.W, g.Cin}, 4).set_requires_grad();
    Tensor w = randn({g.Cout, g.kh, g.kw, g.Cin}, 5).set_requires_grad();
    Tensor b = randn({g.Cout}, 6).set_requires_grad();
    gradcheck(
        [&](const std::vector<Tensor>& in) {
          return conv2d(in[0], in[1], in[2], {g.sh, g.sw}, {g.ph, g.pw});
        },
        {x, w, b});
  }
}

TEST_CASE("conv2d gradients when only some inputs require grad") {
  const Geometry g = geometries()[1];
  Tensor x = randn({g.N, g.H, g.W, g.Cin}, 7), w = randn({g.Cout, g.kh, g.kw, g.Cin}, 8).set_requires_grad();
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        return conv2d(in[0], in[1], Tensor(), {g.sh, g.sw}, {g.ph, g.pw});
      },
      {x, w});
  x.set_requires_grad();
  Tensor w_fixed = randn({g.Cout, g.kh, g.kw, g.Cin}, 8);
  gradcheck(
      [&](const std::vector<Tensor>& in) {
        return conv2d(in[0], in[1], Tensor(), {g.sh, g.sw}, {g.ph, g.pw});
      },
      {x, w_fixed});
}

TEST_CASE("conv2d gives the same result with many small tiles and bands") {
  for (const Geometry& g : geometries()) {
    CAPTURE(g.name);
    const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 9), w = randn({g.Cout, g.kh, g.kw, g.Cin}, 10),
                 b = randn({g.Cout}, 11);
    const Grads3 whole = run_with_grads(x, w, b, g, 12);
    const ConvParams p = params_of(g);
    const int64_t out_row_bytes = p.Wo * p.cols() * 8;  // one output row of the column matrix, f64
    for (auto [rows, band] : {std::pair{1, 1}, std::pair{3, 2}, std::pair{7, 3}}) {
      CAPTURE(rows);  // tiles that start mid image-row and mid image
      CAPTURE(band);  // bands of `band` output rows, with halos computed twice
      TuningScope scope(rows, band * out_row_bytes);
      const Grads3 tiled = run_with_grads(x, w, b, g, 12);
      check_close(tiled.out, whole.out, 1e-12, 1e-12);
      check_close(tiled.dx, whole.dx, 1e-12, 1e-12);
      check_close(tiled.dw, whole.dw, 1e-12, 1e-12);
      check_close(tiled.db, whole.db, 1e-12, 1e-12);
    }
  }
}

TEST_CASE("conv2d on non-contiguous inputs") {
  for (const Geometry& g : {geometries()[0], geometries()[2], geometries()[6]}) {
    CAPTURE(g.name);
    const ConvParams p = params_of(g);
    const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 13), w = randn({g.Cout, g.kh, g.kw, g.Cin}, 14),
                 b = randn({g.Cout}, 15);
    // An NHWC view of an NCHW buffer, and strided copies.
    const Tensor x_nchw_view = x.permute({0, 3, 1, 2}).contiguous().permute({0, 2, 3, 1});
    REQUIRE_FALSE(x_nchw_view.is_contiguous());
    const Tensor ref = reference_conv(x, w, b, p);
    check_close(conv2d(x_nchw_view, noncontiguous(w), noncontiguous(b), {g.sh, g.sw}, {g.ph, g.pw}), ref,
                1e-12, 1e-12);
    Tensor xn = noncontiguous(x).set_requires_grad(), wn = noncontiguous(w).set_requires_grad(),
           bn = noncontiguous(b).set_requires_grad();
    gradcheck(
        [&](const std::vector<Tensor>& in) {
          return conv2d(in[0], in[1], in[2], {g.sh, g.sw}, {g.ph, g.pw});
        },
        {xn, wn, bn});
  }
}

TEST_CASE("conv2d in f32 and bf16 follows f64, forward and backward") {
  const Geometry g{"3x3 pad 1, 16 -> 8 channels", 2, 9, 11, 16, 8, 3, 3, 1, 1, 1, 1};
  const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 16),
               w = randn({g.Cout, g.kh, g.kw, g.Cin}, 17, DType::f64, 0.1), b = randn({g.Cout}, 18);
  const Grads3 ref = run_with_grads(x, w, b, g, 19);
  for (auto [dt, tol] : {std::pair{DType::f32, 1e-6}, std::pair{DType::bf16, 1e-2}}) {
    CAPTURE(dtype_name(dt));
    const Grads3 r = run_with_grads(x.to(dt), w.to(dt), b.to(dt), g, 19);
    CHECK(r.out.dtype() == dt);
    CHECK(r.dx.dtype() == dt);
    CHECK(rel_l2(r.out, ref.out) < tol);
    CHECK(rel_l2(r.dx, ref.dx) < tol);
    CHECK(rel_l2(r.dw, ref.dw) < tol);
    CHECK(rel_l2(r.db, ref.db) < tol);
  }
  // The strided 3x3 path and the pointwise GEMM path in f32 too.
  for (const Geometry& h : {geometries()[1], geometries()[2]}) {
    CAPTURE(h.name);
    const Tensor x2 = randn({h.N, h.H, h.W, h.Cin}, 20), w2 = randn({h.Cout, h.kh, h.kw, h.Cin}, 21),
                 b2 = randn({h.Cout}, 22);
    const Grads3 r64 = run_with_grads(x2, w2, b2, h, 23);
    const Grads3 r32 = run_with_grads(x2.to(DType::f32), w2.to(DType::f32), b2.to(DType::f32), h, 23);
    CHECK(rel_l2(r32.out, r64.out) < 1e-6);
    CHECK(rel_l2(r32.dx, r64.dx) < 1e-6);
    CHECK(rel_l2(r32.dw, r64.dw) < 1e-6);
  }
}

TEST_CASE("conv2d in f32 through oneDNN and through im2col both follow f64, forward and backward") {
  // Outputs of 8x8 and more with kernels larger than 1x1: the problems f32 sends to oneDNN when Iris has it
  // (conv_onednn.h). Odd channel counts (not multiples of oneDNN's 16-channel blocks), strides, asymmetric
  // kernels and padding, a batch that does not split evenly into weight-gradient groups, and a right padding
  // that would be negative (oneDNN declines it: the im2col path must take it).
  const std::vector<Geometry> cases = {
      {"3x3 pad 1, 6 -> 32 (a stem)", 3, 12, 10, 6, 32, 3, 3, 1, 1, 1, 1},
      {"3x3 pad 1, 32 -> 3 (a head)", 2, 9, 11, 32, 3, 3, 3, 1, 1, 1, 1},
      {"3x3 stride 2 pad 1 (a downsampling)", 5, 16, 18, 16, 16, 3, 3, 2, 2, 1, 1},
      {"1x7 and pad 0x3 (Inception)", 2, 9, 8, 5, 7, 1, 7, 1, 1, 0, 3},
      {"7x1 and pad 3x0 (Inception)", 2, 8, 9, 7, 5, 7, 1, 1, 1, 3, 0},
      {"5x5 pad 2, 20 -> 24", 7, 8, 8, 20, 24, 5, 5, 1, 1, 2, 2},
      {"3x3 stride 2 no pad, last column unreached", 2, 18, 18, 4, 4, 3, 3, 2, 2, 0, 0},
      {"3x3 pad 1, 32 -> 32 (Winograd)", 3, 16, 16, 32, 32, 3, 3, 1, 1, 1, 1},
      {"3x3 pad 1, 64 -> 48 on 10x12, odd batch (Winograd)", 5, 10, 12, 64, 48, 3, 3, 1, 1, 1, 1},
  };
  if (!cpu::onednn::available()) MESSAGE("this build has no oneDNN: both runs take the im2col path");
  for (const Geometry& g : cases) {
    CAPTURE(g.name);
    const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 40), w = randn({g.Cout, g.kh, g.kw, g.Cin}, 41, DType::f64, 0.2),
                 b = randn({g.Cout}, 42);
    const Grads3 ref = run_with_grads(x, w, b, g, 43);
    // oneDNN with Winograd where it applies, oneDNN direct, im2col.
    for (int method = 0; method < 3; ++method) {
      CAPTURE(method);
      cpu::ConvCpuTuning t;
      t.onednn = method < 2;
      t.winograd = method == 0;
      cpu::set_conv_cpu_tuning(t);
      const Grads3 r = run_with_grads(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32), g, 43);
      cpu::set_conv_cpu_tuning(cpu::ConvCpuTuning{});
      CHECK(rel_l2(r.out, ref.out) < 1e-6);
      CHECK(rel_l2(r.dx, ref.dx) < 1e-6);
      CHECK(rel_l2(r.dw, ref.dw) < 1e-6);
      CHECK(rel_l2(r.db, ref.db) < 1e-6);
    }
  }
}

TEST_CASE("conv2d promotes mismatched floating dtypes") {
  const Geometry g = geometries()[0];
  Tensor x = randn({g.N, g.H, g.W, g.Cin}, 24, DType::f32).set_requires_grad();
  Tensor w = randn({g.Cout, g.kh, g.kw, g.Cin}, 25).set_requires_grad();  // f64
  Tensor b = randn({g.Cout}, 26, DType::f32).set_requires_grad();
  const Tensor y = conv2d(x, w, b, {1, 1}, {1, 1});
  CHECK(y.dtype() == DType::f64);
  check_close(y, reference_conv(x.to(DType::f64), w, b.to(DType::f64), params_of(g)), 1e-12, 1e-12);
  sum(y).backward();
  CHECK(x.grad().dtype() == DType::f32);
  CHECK(w.grad().dtype() == DType::f64);
  CHECK(b.grad().dtype() == DType::f32);
}

TEST_CASE("conv2d results are identical with 1 and 2 threads") {
  // Large enough that im2col, col2im and the GEMMs split across threads.
  const Geometry g{"3x3 pad 1 on 2x32x32x16", 2, 32, 32, 16, 24, 3, 3, 1, 1, 1, 1};
  const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 27, DType::f32),
               w = randn({g.Cout, 3, 3, g.Cin}, 28, DType::f32), b = randn({g.Cout}, 29, DType::f32);
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  // 100-row tiles (21 of them, not aligned to images: the weight gradient sums 10 partials) and
  // data-gradient bands of 5 output rows (7 per image).
  TuningScope scope(100, 5 * 32 * 3 * 3 * 16 * 4);
  set_num_threads(1);
  const Grads3 one = run_with_grads(x, w, b, g, 30);
  set_num_threads(2);
  const Grads3 two = run_with_grads(x, w, b, g, 30);
  CHECK(one.out.to_vector<float>() == two.out.to_vector<float>());
  CHECK(one.dx.to_vector<float>() == two.dx.to_vector<float>());
  CHECK(one.dw.to_vector<float>() == two.dw.to_vector<float>());
  CHECK(one.db.to_vector<float>() == two.db.to_vector<float>());
}

TEST_CASE("conv2d forward of one sample does not depend on the rest of the batch") {
  // Sampling promises that a sample's result depends on (seed, sample index) only, not on the batch it was
  // drawn in (README). The forward GEMMs run on tiles of rows that cross image boundaries, so a sample's
  // rows land in tiles of other sizes in another batch; BLAS may pick another kernel for another size (with
  // K = 9, a 1-channel stem, OpenBLAS's small-matrix path). Every tile must give the same bits regardless.
  const std::vector<Geometry> cases = {
      {"1-channel stem 3x3 on 28x28", 7, 28, 28, 1, 32, 3, 3, 1, 1, 1, 1},
      {"3-channel stem 3x3 on 20x20", 7, 20, 20, 3, 16, 3, 3, 1, 1, 1, 1},
      {"64 -> 64 3x3 on 14x14", 7, 14, 14, 64, 64, 3, 3, 1, 1, 1, 1},
      {"32 -> 48 pointwise on 14x14", 7, 14, 14, 32, 48, 1, 1, 1, 1, 0, 0},
  };
  for (const Geometry& g : cases) {
    CAPTURE(g.name);
    const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 61, DType::f32);
    const Tensor w = randn({g.Cout, g.kh, g.kw, g.Cin}, 62, DType::f32, 0.3),
                 b = randn({g.Cout}, 63, DType::f32);
    const Tensor all = conv2d(x, w, b, {g.sh, g.sw}, {g.ph, g.pw});
    for (int64_t n : {int64_t{0}, int64_t{5}}) {
      const Tensor alone = conv2d(x.slice(0, n, n + 1).contiguous(), w, b, {g.sh, g.sw}, {g.ph, g.pw});
      CHECK_MESSAGE(alone.to_vector<float>() == all.slice(0, n, n + 1).contiguous().to_vector<float>(),
                    "sample ", n, " alone differs from the same sample in a batch of ", g.N);
    }
  }
}

TEST_CASE("conv2d through Winograd: a sample's forward and data gradient do not depend on how the batch is cut") {
  // Winograd tasks take several images (conv_onednn.cpp: as many as give each thread one task), so a batch is
  // cut differently at other batch sizes and thread counts. A sample's output and input gradient must come out
  // bit for bit the same alone, in a batch, and at 1, 2 or 3 threads.
  const std::vector<Geometry> cases = {
      {"32 -> 32 on 16x16", 7, 16, 16, 32, 32, 3, 3, 1, 1, 1, 1},
      {"64 -> 48 on 9x11", 5, 9, 11, 64, 48, 3, 3, 1, 1, 1, 1},
  };
  ThreadCountGuard restore_threads;
  for (const Geometry& g : cases) {
    CAPTURE(g.name);
    const std::string kernel = cpu::onednn::forward_implementation(params_of(g), true);
    if (kernel.find("wino") == std::string::npos)
      MESSAGE("oneDNN has no Winograd kernel for this problem on this CPU (", kernel, "): the direct path runs");
    const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 71, DType::f32);
    const Tensor w = randn({g.Cout, g.kh, g.kw, g.Cin}, 72, DType::f32, 0.1), b = randn({g.Cout}, 73, DType::f32);
    const Grads3 ref = run_with_grads(x, w, b, g, 74);
    for (int threads : {1, 2, 3}) {
      CAPTURE(threads);
      set_num_threads(threads);
      const Grads3 all = run_with_grads(x, w, b, g, 74);
      CHECK(all.out.to_vector<float>() == ref.out.to_vector<float>());
      CHECK(all.dx.to_vector<float>() == ref.dx.to_vector<float>());
      for (int64_t n : {int64_t{0}, g.N - 1}) {
        // The probe of run_with_grads depends on the output's shape: compare one sample's forward and the data
        // gradient of a fixed upstream gradient instead.
        const Tensor xn = x.slice(0, n, n + 1).contiguous();
        const Tensor alone = conv2d(xn, w, b, {g.sh, g.sw}, {g.ph, g.pw});
        CHECK(alone.to_vector<float>() == ref.out.slice(0, n, n + 1).contiguous().to_vector<float>());
        const ConvParams p = params_of(g);
        const Tensor gout = randn({g.N, p.Ho, p.Wo, g.Cout}, 75, DType::f32);
        Tensor dx_all = Tensor::empty(x.shape(), DType::f32), dx_one = Tensor::empty(xn.shape(), DType::f32);
        cpu::conv2d_backward_data(gout, w, dx_all, p);
        ConvParams p1 = p;
        p1.N = 1;
        cpu::conv2d_backward_data(gout.slice(0, n, n + 1).contiguous(), w, dx_one, p1);
        CHECK(dx_one.to_vector<float>() == dx_all.slice(0, n, n + 1).contiguous().to_vector<float>());
      }
    }
  }
}

TEST_CASE("conv2d misuse raises errors naming the op and shapes") {
  const Tensor x = randn({1, 5, 5, 3}, 31), w = randn({4, 3, 3, 3}, 32);
  check_throws_with(
      [&] {
        (void)conv2d(x, randn({4, 3, 3, 2}, 1));
      },
      {"conv2d", "channels", "[1, 5, 5, 3]", "[4, 3, 3, 2]"});
  check_throws_with([&] { (void)conv2d(randn({5, 5, 3}, 1), w); }, {"conv2d", "4-D", "[5, 5, 3]"});
  check_throws_with([&] { (void)conv2d(x, randn({4, 9, 3}, 1)); }, {"conv2d", "weight", "[4, 9, 3]"});
  check_throws_with([&] { (void)conv2d(x, w, randn({5}, 1)); }, {"conv2d", "bias", "Cout = 4"});
  check_throws_with([&] { (void)conv2d(x, randn({4, 7, 3, 3}, 1)); }, {"conv2d", "7x3", "larger"});
  check_throws_with([&] { (void)conv2d(x, w, Tensor(), {0, 1}); }, {"conv2d", "stride"});
  check_throws_with([&] { (void)conv2d(x, w, Tensor(), {1, 1}, {-1, 0}); }, {"conv2d", "padding"});
  check_throws_with(
      [&] {
        (void)conv2d(Tensor::zeros({1, 5, 5, 3}, DType::i32), w);
      },
      {"conv2d", "floating"});
}

TEST_CASE("conv2d bias gradient over many rows matches a plain sum") {
  // 4800 output rows and 20 channels: more than one block of rows and one group of channels in the kernel.
  const Geometry g{"1x1 on 3x40x40x2 -> 20", 3, 40, 40, 2, 20, 1, 1, 1, 1, 0, 0};
  const Tensor x = randn({g.N, g.H, g.W, g.Cin}, 35), w = randn({g.Cout, 1, 1, g.Cin}, 36),
               b = randn({g.Cout}, 37);
  const Grads3 r = run_with_grads(x, w, b, g, 38);
  const auto probe = randn(r.out.shape(), 38).to_vector<double>();  // the seed run_with_grads used
  std::vector<double> ref(g.Cout, 0.0);
  for (size_t i = 0; i < probe.size(); ++i) ref[i % g.Cout] += probe[i];
  check_close(r.db, Tensor::from_vector(ref, {g.Cout}), 1e-11, 1e-12);
}

TEST_CASE("conv2d on an empty batch") {
  Tensor x = Tensor::zeros({0, 5, 7, 3}, DType::f64).set_requires_grad();
  Tensor w = randn({4, 3, 3, 3}, 33).set_requires_grad();
  Tensor b = randn({4}, 34).set_requires_grad();
  const Tensor y = conv2d(x, w, b, {2, 2}, {1, 1});
  CHECK(y.shape() == Shape{0, 3, 4, 4});
  sum(y).backward();
  CHECK(x.grad().shape() == x.shape());
  check_close(w.grad(), Tensor::zeros(w.shape(), DType::f64));
  check_close(b.grad(), Tensor::zeros(b.shape(), DType::f64));
}
