// CUDA GroupNorm (+ fused SiLU) against the CPU kernels (kernel level, poisoned outputs; odd channel counts
// and groups, one-channel groups, large groups split over many blocks, a non-zero mean, misaligned data,
// with and without weight / bias, every dtype) and determinism. The ops' forward/backward through autograd are
// in the op table (test_gpu_op_table.cpp).
#include "framework/cpu/norm.h"
#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/norm.h"
#endif

using namespace iris;
using namespace iris::gputest;

namespace {

struct NormCase {
  Shape x;
  int64_t groups;
  double offset;  // added to x: a group mean far from 0 tests the statistics' cancellation
};

const NormCase kCases[] = {
    {{2, 5, 7, 12}, 3, 0.0},      // 4 channels per group
    {{3, 4, 4, 6}, 6, 0.0},       // one channel per group
    {{2, 9, 11, 40}, 8, 0.0},     // 5 channels per group (groups straddle 16-byte vectors)
    {{2, 3, 5, 7}, 1, 0.0},       // odd C, one group
    {{1, 64, 64, 64}, 1, 0.0},    // one large group: the statistics are split over many blocks
    {{2, 32, 32, 128}, 32, 0.0},  // U-Net: 32 groups of 4
    {{2, 8, 8, 96}, 32, 10.0},    // 3 channels per group, mean 10
    {{4, 3}, 1, 0.0},             // no spatial axes: [N, C]
    {{2, 1, 1, 7}, 7, 0.0},       // one element per group
    {{2, 6, 6, 640}, 32, 0.0},    // 160 f32 vectors per position: more channel vectors than one block row
};

[[maybe_unused]] std::string case_name(const NormCase& c, DType dt, bool silu, bool affine) {
  return std::string(silu ? "group_norm_silu " : "group_norm ") + dtype_name(dt) + " " + shape_str(c.x) +
         " groups " + std::to_string(c.groups) +
         (c.offset != 0 ? " offset " + std::to_string(c.offset) : "") + (affine ? " affine" : " no affine");
}

#ifdef IRIS_WITH_CUDA
// Group means are compared by their effect on the normalised value: |mean_gpu - mean_cpu| * rstd, i.e. in
// units of the group's standard deviation (a relative error would be meaningless for means near 0).
void expect_means_close(const Tensor& got, const Tensor& ref, const Tensor& rstd, double tol,
                        const std::string& what) {
  const std::vector<double> g = got.to_vector<double>(), r = ref.to_vector<double>(),
                            s = rstd.to_vector<double>();
  double worst = 0;
  int64_t worst_i = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const double e = std::abs(g[i] - r[i]) * s[i];
    if (!(e <= worst)) {  // also catches NaN
      worst = e;
      worst_i = static_cast<int64_t>(i);
      if (std::isnan(e)) break;
    }
  }
  CHECK_MESSAGE(worst <= tol, what, ": mean error ", worst, " standard deviations > ", tol, " (group ",
                worst_i, ": cuda ", worst_i >= 0 ? g[worst_i] : 0.0, " vs cpu ",
                worst_i >= 0 ? r[worst_i] : 0.0, ")");
}

// One case on one configuration: forward (y, mean, rstd) and backward (dx, dweight, dbias, and with only some
// of them wanted) of the CUDA kernels against the CPU kernels on the same inputs.
void check_case(const NormCase& c, DType dt, bool silu, bool affine, bool misalign) {
  const DType st = dt == DType::f64 ? DType::f64 : DType::f32;
  const int64_t C = c.x.back(), N = c.x[0], G = c.groups;
  const std::string what = case_name(c, dt, silu, affine) + (misalign ? " (misaligned)" : "");
  const Tensor x = add(test::randn(c.x, 401, DType::f64, 1.5), c.offset).to(dt);
  const Tensor weight = affine ? test::uniform({C}, 402, 0.5, 1.5, st) : Tensor();
  const Tensor bias = affine ? test::randn({C}, 403, st, 0.5) : Tensor();
  const Tensor gy = test::randn(c.x, 404, dt);
  auto dev = [&](const Tensor& t) { return !t.defined() ? t : (misalign ? misaligned(t) : t.to(gpu())); };

  Tensor y = Tensor::empty(c.x, dt), mean = Tensor::empty({N, G}, st), rstd = Tensor::empty({N, G}, st);
  cpu::group_norm_forward(x, weight, bias, y, mean, rstd, G, 1e-5, silu);
  Tensor yg = misalign ? misaligned(Tensor::full(c.x, std::nan(""), dt)) : poisoned(c.x, dt);
  Tensor mg = poisoned({N, G}, st), rg = poisoned({N, G}, st);
  const Tensor xg = dev(x), gag = dev(weight), beg = dev(bias);
  cuda::group_norm_forward(xg, gag, beg, yg, mg, rg, G, 1e-5, silu);
  const double tol = tol_for(dt), stat_tol = tol_for(st);
  expect_means_close(mg, mean, rstd, stat_tol, what + " mean");
  expect_match(rg, rstd, stat_tol, what + " rstd");
  expect_match(yg, y, tol, what + " y");

  // Backward on the CPU's statistics, so that only the backward kernels are compared.
  Tensor dx = Tensor::empty(c.x, dt), dweight = Tensor::empty({C}, st), dbias = Tensor::empty({C}, st);
  cpu::group_norm_backward(gy, x, weight, bias, mean, rstd, dx, dweight, dbias, G, silu);
  Tensor dxg = misalign ? misaligned(Tensor::full(c.x, std::nan(""), dt)) : poisoned(c.x, dt);
  Tensor dgg = poisoned({C}, st), dbg = poisoned({C}, st);
  const Tensor gyg = dev(gy), mean_g = mean.to(gpu()), rstd_g = rstd.to(gpu());
  cuda::group_norm_backward(gyg, xg, gag, beg, mean_g, rstd_g, dxg, dgg, dbg, G, silu);
  if (shape_numel(c.x) / (c.x[0] * G) == 1) {
    // One element per group: x - mean = 0, so dx = rstd * (weight gh - c1) is exactly 0 in exact arithmetic,
    // and what remains is rounding amplified by rstd = 1/sqrt(eps) ~ 316 (seen: ~1e-5 in f32 on an H200).
    // A relative error against an exactly-zero reference means nothing: bound the absolute error instead.
    CHECK_MESSAGE(test::max_abs_diff(dxg, dx) < (dt == DType::f64    ? 1e-10
                                                 : dt == DType::bf16 ? 1e-2
                                                                     : 1e-3),
                  what, " dx of one-element groups: max |cuda - cpu| = ", test::max_abs_diff(dxg, dx));
  } else {
    expect_match(dxg, dx, tol, what + " dx");
  }
  // dweight and dbias are sums over N * S elements: for bf16 inputs they are f32 sums of bf16 terms, as on
  // the CPU, so they match to f32 accuracy relative to the sum's size.
  expect_match(dgg, dweight, dt == DType::bf16 ? 1e-4 : stat_tol, what + " dweight");
  expect_match(dbg, dbias, dt == DType::bf16 ? 1e-4 : stat_tol, what + " dbias");
  // Only dx wanted, then only the parameter gradients.
  Tensor none_g, none_b, none_x;
  Tensor dx_only = poisoned(c.x, dt);
  cuda::group_norm_backward(gyg, xg, gag, beg, mean_g, rstd_g, dx_only, none_g, none_b, G, silu);
  expect_equal(dx_only, misalign ? dxg.contiguous() : dxg, what + " dx alone vs dx with the others");
  Tensor dg_only = poisoned({C}, st), db_only = poisoned({C}, st);
  cuda::group_norm_backward(gyg, xg, gag, beg, mean_g, rstd_g, none_x, dg_only, db_only, G, silu);
  expect_equal(dg_only, dgg, what + " dweight without dx");
  expect_equal(db_only, dbg, what + " dbias without dx");
}
#endif

}  // namespace

TEST_CASE("gpu group_norm kernels match the CPU forward and backward in f32 and bf16 and f64") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : {DType::f32, DType::bf16, DType::f64})
    for (const NormCase& c : kCases)
      for (bool silu : {false, true}) {
        if (dt != DType::f32 && shape_numel(c.x) > 100000 && silu) continue;  // keep the suite quick
        check_case(c, dt, silu, true, false);
        if (c.groups > 1 || dt == DType::f32) check_case(c, dt, silu, false, false);
      }
#endif
}

TEST_CASE("gpu group_norm kernels handle misaligned data (scalar path)") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : {DType::f32, DType::bf16})
    for (bool silu : {false, true}) {
      check_case(kCases[2], dt, silu, true, true);
      check_case(kCases[5], dt, silu, true, true);
    }
#endif
}

TEST_CASE("gpu group_norm is deterministic run to run") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  const Tensor x = test::randn({2, 48, 40, 64}, 411, DType::f32).to(gpu());
  const Tensor weight = test::uniform({64}, 412, 0.5, 1.5, DType::f32).to(gpu());
  const Tensor bias = test::randn({64}, 413, DType::f32).to(gpu());
  const Tensor gy = test::randn({2, 48, 40, 64}, 414, DType::f32).to(gpu());
  Tensor first[5], again[5];
  for (Tensor* r : {first, again}) {
    r[0] = Tensor::empty(x.shape(), DType::f32, gpu());
    r[1] = Tensor::empty({2, 4}, DType::f32, gpu());
    r[2] = Tensor::empty({2, 4}, DType::f32, gpu());
    cuda::group_norm_forward(x, weight, bias, r[0], r[1], r[2], 4, 1e-5, true);
    r[3] = Tensor::empty(x.shape(), DType::f32, gpu());
    r[4] = Tensor::empty({64}, DType::f32, gpu());
    Tensor db = Tensor::empty({64}, DType::f32, gpu());
    cuda::group_norm_backward(gy, x, weight, bias, r[1], r[2], r[3], r[4], db, 4, true);
  }
  const char* names[] = {"y", "mean", "rstd", "dx", "dweight"};
  for (int i = 0; i < 5; ++i)
    expect_equal(again[i], first[i], std::string("group_norm_silu rerun ") + names[i]);
#endif
}
