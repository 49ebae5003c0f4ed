// Philox draws on CUDA against the CPU: uniform bit for bit, normal to the last bit but for rare libm ulps,
// per-sample streams (inline and device-buffer paths). dropout's forward and backward (bit for bit with the
// CPU) are in the op table (test_gpu_op_table.cpp).
#include <cstring>

#include "framework/cpu/random.h"
#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/random.h"
#endif

using namespace iris;
using namespace iris::gputest;

namespace {

// Number of elements whose bits differ (values compared in their own dtype's bytes).
int64_t bit_mismatches(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  REQUIRE(a.dtype() == b.dtype());
  const Tensor ha = a.cpu().contiguous(), hb = b.cpu().contiguous();
  const size_t es = dtype_size(a.dtype());
  const auto* pa = static_cast<const unsigned char*>(ha.data_ptr());
  const auto* pb = static_cast<const unsigned char*>(hb.data_ptr());
  int64_t bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) bad += std::memcmp(pa + i * es, pb + i * es, es) != 0;
  return bad;
}

}  // namespace

TEST_CASE("gpu uniform draws are bit-identical to the CPU") {
  IRIS_GPU_TEST_BEGIN();
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Shape& shape : std::vector<Shape>{{1}, {7}, {3, 5}, {1000003}}) {
      Generator gc(1234, 7), gg(1234, 7);
      for (int draw = 0; draw < 3; ++draw) {  // successive draws advance the offset identically
        const Tensor c = rand(shape, gc, dt, Device::cpu(), -2.0, 3.0);
        poison_pool();
        const Tensor g = rand(shape, gg, dt, gpu(), -2.0, 3.0);
        const int64_t bad = bit_mismatches(g, c);
        CHECK_MESSAGE(bad == 0, "rand ", dtype_name(dt), " ", shape_str(shape), " draw ", draw, ": ", bad,
                      " elements differ from the CPU");
        CHECK(gc.offset() == gg.offset());
      }
    }
  }
}

TEST_CASE("gpu per-sample streams match the CPU for few and many samples") {
  IRIS_GPU_TEST_BEGIN();
  for (int64_t N : {int64_t{5}, int64_t{64}, int64_t{100}}) {  // 64 still inline, 100 through a device buffer
    std::vector<uint64_t> streams;
    for (int64_t i = 0; i < N; ++i)
      streams.push_back(Generator::stream_id(17, static_cast<uint64_t>(i) * 3 + 1));
    Generator gc = Generator::per_sample(99, streams, 5), gg = Generator::per_sample(99, streams, 5);
    const Tensor uc = rand({N, 3, 37}, gc), ug = rand({N, 3, 37}, gg, DType::f32, gpu());
    CHECK_MESSAGE(bit_mismatches(ug, uc) == 0, "per-sample rand with ", N, " streams differs from the CPU");
    const Tensor nc = randn({N, 111}, gc), ng = randn({N, 111}, gg, DType::f32, gpu());
    CHECK_MESSAGE(test::max_abs_diff(ng, nc) <= 2e-6, "per-sample randn with ", N, " streams: max |diff| ",
                  test::max_abs_diff(ng, nc));
  }
#ifdef IRIS_WITH_CUDA
  // The kernel directly, on a poisoned output.
  const uint64_t ids[3] = {11, 12, 13};
  Tensor ref = Tensor::empty({3, 10}, DType::f32);
  cpu::philox_fill(ref, Distribution::uniform, 5, ids, 3, 2, 0.0, 1.0);
  Tensor out = poisoned({3, 10}, DType::f32);
  cuda::philox_fill(out, Distribution::uniform, 5, ids, 3, 2, 0.0, 1.0);
  CHECK(bit_mismatches(out, ref) == 0);
#endif
}

TEST_CASE("gpu normal draws match the CPU to the last bit but for rare libm ulps") {
  IRIS_GPU_TEST_BEGIN();
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Shape& shape : std::vector<Shape>{{1}, {7}, {1000003}}) {
      Generator gc(77, 3), gg(77, 3);
      gc.set_offset(1000);
      gg.set_offset(1000);
      const Tensor c = randn(shape, gc, dt, Device::cpu(), 0.5, 2.0);
      const Tensor g = randn(shape, gg, dt, gpu(), 0.5, 2.0);
      const int64_t bad = bit_mismatches(g, c);
      const double diff = test::max_abs_diff(g, c);
      const double limit = dt == DType::f64 ? 1e-12 : (dt == DType::f32 ? 4e-6 : 0.07);
      CHECK_MESSAGE(diff <= limit, "randn ", dtype_name(dt), " ", shape_str(shape), ": max |diff| ", diff);
      // f64 keeps the libm differences (an ulp of a double here and there); f32 and bf16 round them away.
      if (dt != DType::f64)
        CHECK_MESSAGE(bad <= std::max<int64_t>(2, shape_numel(shape) / 100000), "randn ", dtype_name(dt), " ",
                      shape_str(shape), ": ", bad, " elements differ in their bits");
    }
  }
}
