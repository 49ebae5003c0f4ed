// CUDA reductions and softmax against their CPU twins (kernel level, poisoned outputs). The reduction ops'
// forward and backward are in the op table (test_gpu_op_table.cpp).
#include "framework/cpu/reduce.h"
#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/reduce.h"
#endif

using namespace iris;
using namespace iris::gputest;

namespace {

[[maybe_unused]] Shape kept_shape(const Shape& shape, const std::vector<int64_t>& axes) {
  Shape out;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) out.push_back(shape[i]);
  return out;
}

[[maybe_unused]] std::string axes_str(const std::vector<int64_t>& axes) {
  return shape_str(axes);
}

}  // namespace

TEST_CASE("gpu reductions match the CPU over any axes and strides and sizes in every floating dtype") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  struct Case {
    Shape shape;
    std::vector<int64_t> axes;
    std::vector<int64_t> permute;  // applied to a contiguous tensor first (empty: none)
  };
  const std::vector<Case> cases = {
      {{1000003}, {0}, {}},              // one long row, split over many blocks
      {{37, 129}, {1}, {}},              // rows
      {{37, 129}, {0}, {}},              // columns (kept axis contiguous)
      {{37, 129}, {0, 1}, {}},           // everything
      {{8, 16, 16, 64}, {0, 1, 2}, {}},  // bias gradient of NHWC: outer layout, split
      {{8, 16, 16, 64}, {3}, {}},
      {{8, 16, 16, 64}, {1, 2}, {}},  // per-sample, per-channel statistics
      {{8, 16, 16, 64}, {0, 3}, {}},
      {{3, 5000}, {1}, {}},
      {{5000, 3}, {0}, {}},
      {{5000, 3}, {1}, {}},
      {{1, 1}, {0, 1}, {}},
      {{7}, {0}, {}},
      {{2, 3, 4, 5, 6}, {1, 3}, {}},  // non-adjacent axes
      {{24, 16, 8}, {0}, {2, 0, 1}},  // permuted input
      {{24, 16, 8}, {1, 2}, {2, 0, 1}},
      {{24, 16, 8}, {2}, {1, 2, 0}},
      {{64, 70000}, {1}, {}},  // many wide rows
  };
  struct OpCase {
    ReduceOp op;
    int64_t correction;
    const char* name;
  };
  const OpCase ops[] = {{ReduceOp::sum, 0, "sum"}, {ReduceOp::mean, 0, "mean"},
                        {ReduceOp::max, 0, "max"}, {ReduceOp::min, 0, "min"},
                        {ReduceOp::var, 0, "var"}, {ReduceOp::var, 1, "var(corr 1)"}};
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Case& c : cases) {
      if (dt != DType::f32 && shape_numel(c.shape) > 2000000) continue;
      Tensor x = test::randn(c.shape, 101, dt);
      x = add(x, 0.25);  // a non-zero mean, so that sums are not pure cancellation
      Tensor xg = x.to(gpu());
      if (!c.permute.empty()) {
        x = x.permute(c.permute);
        xg = xg.permute(c.permute);
      }
      const Shape out_shape = kept_shape(x.shape(), c.axes);
      for (const OpCase& o : ops) {
        const std::string what = std::string("reduce ") + o.name + " " + dtype_name(dt) + " " +
                                 shape_str(x.shape()) + " strides " + shape_str(x.strides()) + " axes " +
                                 axes_str(c.axes);
        Tensor ref = Tensor::empty(out_shape, dt);
        cpu::reduce(o.op, x, ref, c.axes, o.correction);
        Tensor out = poisoned(out_shape, dt);
        cuda::reduce(o.op, xg, out, c.axes, o.correction);
        expect_match(out, ref, o.op == ReduceOp::max || o.op == ReduceOp::min ? 0.0 : tol_for(dt), what);
      }
    }
  }
  // NaN propagates through sum, max and min.
  std::vector<double> v = test::randn({5, 9}, 102, DType::f64).to_vector<double>();
  v[2 * 9 + 3] = std::nan("");
  const Tensor xn = Tensor::from_vector(v, {5, 9}, DType::f32, Device::cpu());
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min}) {
    Tensor ref = Tensor::empty({5}, DType::f32);
    cpu::reduce(op, xn, ref, {1}, 0);
    Tensor out = poisoned({5}, DType::f32);
    cuda::reduce(op, xn.to(gpu()), out, {1}, 0);
    CHECK_MESSAGE(std::isnan(out.to_vector<double>()[2]), "NaN did not propagate through reduce op ",
                  int(op));
    expect_match(out, ref, 1e-6, "reduce with a NaN, op " + std::to_string(int(op)));
  }
  // Sum over an empty axis gives zeros.
  Tensor out = poisoned({4}, DType::f32);
  cuda::reduce(ReduceOp::sum, Tensor::empty({4, 0}, DType::f32, gpu()), out, {1}, 0);
  expect_equal(out, Tensor::zeros({4}), "sum over an empty axis");
#endif
}

TEST_CASE("gpu softmax and log_softmax kernels match the CPU forward and backward") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (int64_t n : {1, 7, 33, 1000, 1024, 1025, 4096, 5001}) {
      for (int64_t rows : {3, 129}) {
        for (bool log : {false, true}) {
          const std::string what = std::string(log ? "log_softmax " : "softmax ") + dtype_name(dt) + " [" +
                                   std::to_string(rows) + ", " + std::to_string(n) + "]";
          std::vector<double> xv = test::randn({rows, n}, 111, DType::f64, 3.0).to_vector<double>();
          if (n > 4) {  // masked entries, as attention masks make them (never a whole row)
            xv[1] = -INFINITY;
            xv[n + 3] = -INFINITY;
          }
          const Tensor x = Tensor::from_vector(xv, {rows, n}, dt, Device::cpu());
          Tensor ref = Tensor::empty({rows, n}, dt);
          cpu::softmax(x, ref, log);
          Tensor y = poisoned({rows, n}, dt);
          cuda::softmax(x.to(gpu()), y, log);
          expect_match(y, ref, tol_for(dt), what + " forward");
          // Backward on the same y (the CPU's), so that only the backward kernel is compared.
          const Tensor g = test::randn({rows, n}, 112, dt);
          Tensor dref = Tensor::empty({rows, n}, dt);
          cpu::softmax_backward(ref, g, dref, log);
          Tensor dx = poisoned({rows, n}, dt);
          cuda::softmax_backward(ref.to(gpu()), g.to(gpu()), dx, log);
          expect_match(dx, dref, tol_for(dt), what + " backward");
        }
      }
    }
  }
  // Many short rows (attention over 16 x 16 tokens with a batch of heads) and softmax of a 3-D tensor.
  const Tensor x = test::randn({2, 64, 256}, 113, DType::f32, 2.0);
  Tensor ref = Tensor::empty({2, 64, 256}, DType::f32);
  cpu::softmax(x, ref, false);
  Tensor y = poisoned({2, 64, 256}, DType::f32);
  cuda::softmax(x.to(gpu()), y, false);
  expect_match(y, ref, 1e-5, "softmax f32 [2, 64, 256]");
#endif
}
