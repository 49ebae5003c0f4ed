// The CUDA runtime layer: device discovery, the per-device context, the error-checking macros, the caching
// allocator (accounting, reuse, churn, out of memory) and pinned host memory.
#include <random>

#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/allocator.h"
#include "framework/cuda/check.h"
#include "framework/cuda/context.h"
#include "framework/cuda/runtime.h"
#endif

using namespace iris;
using namespace iris::gputest;

TEST_CASE("gpu runtime finds a device and rejects devices that do not exist") {
  IRIS_GPU_TEST_BEGIN();
  CHECK(cuda_device_count() >= 1);
  const int missing = cuda_device_count();
  test::check_throws_with([&] { (void)Tensor::empty({4}, DType::f32, Device::cuda(missing)); },
                          {"cuda:" + std::to_string(missing), "does not exist"});
#ifdef IRIS_WITH_CUDA
  cuda::Context& ctx = cuda::context(0);
  CHECK(ctx.device == 0);
  CHECK(ctx.sm_count > 0);
  REQUIRE(ctx.compute != nullptr);
  unsigned flags = 0;
  REQUIRE(cudaStreamGetFlags(ctx.compute, &flags) == cudaSuccess);
  CHECK_MESSAGE((flags & cudaStreamNonBlocking) != 0,
                "the compute stream must not sync with the legacy stream");
  CHECK(ctx.comm != nullptr);
  CHECK(ctx.comm != ctx.compute);
  CHECK(ctx.cublaslt() != nullptr);
  CHECK(ctx.cublaslt_workspace() != nullptr);
  cudnnHandle_t h = ctx.cudnn();
  REQUIRE(h != nullptr);
  cudaStream_t s = nullptr;
  REQUIRE(cudnnGetStream(h, &s) == CUDNN_STATUS_SUCCESS);
  CHECK(s == ctx.compute);
  CHECK(&cuda::context(0) == &ctx);  // one context per device
  cuda::synchronize(0);
#endif
}

TEST_CASE("gpu check macros throw iris::Error naming the call and the place and the library message") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  try {
    IRIS_CUDA_CHECK(cudaSetDevice(4242));
    FAIL("IRIS_CUDA_CHECK did not throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find("cudaSetDevice(4242)") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("cudaErrorInvalidDevice") != std::string::npos, msg);
    CHECK_MESSAGE(e.where().find("test_gpu_runtime.cpp") != std::string::npos, e.where());
  }
  cublasLtMatrixLayout_t layout = nullptr;
  REQUIRE(cublasLtMatrixLayoutCreate(&layout, CUDA_R_32F, 4, 4, 4) == CUBLAS_STATUS_SUCCESS);
  try {
    const int32_t count = 2;
    // The attribute's size is wrong (1 byte for an int32): documented as CUBLAS_STATUS_INVALID_VALUE.
    IRIS_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, 1));
    FAIL("IRIS_CUBLAS_CHECK did not throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find("cublasLtMatrixLayoutSetAttribute") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("CUBLAS_STATUS_INVALID_VALUE") != std::string::npos, msg);
  }
  cublasLtMatrixLayoutDestroy(layout);
  try {
    IRIS_CUDNN_CHECK(cudnnSetStream(nullptr, nullptr));  // a null handle
    FAIL("IRIS_CUDNN_CHECK did not throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find("cudnnSetStream") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("CUDNN_STATUS_") != std::string::npos, msg);
  }
  // The device still works after the errors.
  expect_equal(Tensor::full({5}, 3.0, DType::f32, gpu()).cpu(), Tensor::full({5}, 3.0), "fill after errors");
#endif
}

TEST_CASE("gpu allocator accounts allocated and peak bytes exactly and resets the peak") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  cuda::synchronize(0);
  const cuda::MemoryStats s0 = cuda::memory_stats(0);
  {
    Tensor t = Tensor::empty({(int64_t{1} << 20) + 3}, DType::u8, gpu());
    const cuda::MemoryStats s1 = cuda::memory_stats(0);
    CHECK(s1.allocated == s0.allocated + (size_t{1} << 20) + 3);
    CHECK(s1.peak_allocated >= s1.allocated);
    CHECK(s1.reserved >= s1.allocated);
    CHECK(s1.alloc_count == s0.alloc_count + 1);
  }
  const cuda::MemoryStats s2 = cuda::memory_stats(0);
  CHECK(s2.allocated == s0.allocated);
  CHECK(s2.free_count == s0.free_count + 1);
  cuda::reset_peak_memory(0);
  CHECK(cuda::memory_stats(0).peak_allocated == s0.allocated);
  {
    Tensor a = Tensor::empty({8 << 20}, DType::u8, gpu());
    Tensor b = Tensor::empty({4 << 20}, DType::f32, gpu());  // 16 MiB
  }
  const cuda::MemoryStats s3 = cuda::memory_stats(0);
  CHECK(s3.peak_allocated == s0.allocated + (size_t{24} << 20));
  CHECK(s3.allocated == s0.allocated);
  CHECK(s3.peak_reserved >= s3.peak_allocated);
#endif
}

TEST_CASE("gpu allocator reuses freed blocks and does not grow under churn of many sizes") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  const size_t base_alloc = cuda::memory_stats(0).allocated;
  // The same size again and again: the pool hands the block back without reserving more.
  { Tensor warm = Tensor::empty({64 << 20}, DType::u8, gpu()); }
  const size_t r0 = cuda::memory_stats(0).reserved;
  for (int i = 0; i < 20; ++i) {
    Tensor t = Tensor::empty({64 << 20}, DType::u8, gpu());
    t.fill_(static_cast<double>(i));
  }
  CHECK_MESSAGE(cuda::memory_stats(0).reserved == r0, "reserved grew from ", r0, " to ",
                cuda::memory_stats(0).reserved, " re-allocating one size");
  // Churn: log-uniform sizes from 1 byte to 32 MiB, at most 16 alive, many rounds of the same sequence.
  std::mt19937_64 rng(7);
  std::vector<int64_t> sizes(300);
  for (int64_t& s : sizes)
    s = static_cast<int64_t>(std::exp(std::uniform_real_distribution<double>(0, 17.3)(rng)));
  auto round = [&] {
    std::vector<Tensor> live(16);
    for (size_t i = 0; i < sizes.size(); ++i) {
      Tensor t = Tensor::empty({sizes[i]}, DType::u8, gpu());
      if (i % 5 == 0 && sizes[i] > 0) t.fill_(1.0);  // some real work on the stream in between
      live[i % 16] = t;
    }
  };
  round();
  round();
  const size_t r2 = cuda::memory_stats(0).reserved;
  for (int k = 0; k < 10; ++k) round();
  const size_t r12 = cuda::memory_stats(0).reserved;
  CHECK_MESSAGE(r12 <= r2 + (size_t{256} << 20), "reserved memory grew under churn: ", r2,
                " bytes after 2 rounds, ", r12, " after 12");
  CHECK(cuda::memory_stats(0).allocated == base_alloc);
  // Releasing the cache returns memory to the driver.
  cuda::release_cached_memory(0);
  CHECK(cuda::memory_stats(0).reserved <= r12);
#endif
}

TEST_CASE("gpu allocator reports out of memory with the size asked and what the pool holds") {
  IRIS_GPU_TEST_BEGIN();
  const int64_t absurd = int64_t{1} << 46;  // 64 TiB
  test::check_throws_with([&] { (void)Tensor::empty({absurd}, DType::u8, gpu()); },
                          {"out of memory", "cuda:0", std::to_string(absurd), "reserved", "free"});
  // The device still allocates and computes afterwards.
  const Tensor t = add(Tensor::full({1000}, 1.5, DType::f32, gpu()), 1.0);
  expect_equal(t.cpu(), Tensor::full({1000}, 2.5), "add after out of memory");
}

TEST_CASE("gpu pinned host memory round-trips through the device") {
  IRIS_GPU_TEST_BEGIN();
  const Tensor src = test::randn({1000003}, 401, DType::f32);
  Tensor pinned = Tensor::empty({1000003}, DType::f32, Device::cpu(), /*pinned=*/true);
  CHECK(pinned.storage()->pinned());
  {
    NoGradGuard ng;
    pinned.copy_(src);
  }
  const Tensor d = pinned.to(gpu());
  Tensor back = Tensor::empty({1000003}, DType::f32, Device::cpu(), /*pinned=*/true);
  {
    NoGradGuard ng;
    back.copy_(d);
  }
  expect_equal(back, src, "pinned round trip");
}

TEST_CASE("gpu pinned blocks are reused, never while a copy from them is still queued") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  const int64_t n = 1 << 22;  // 16 MiB of f32
  const Tensor src = test::randn({n}, 402, DType::f32);
  Tensor device_copy;
  {
    // Keep the compute stream busy, then queue a copy out of a pinned block and free the block at once.
    Tensor busy = test::randn({2048, 2048}, 403, DType::f32).to(gpu());
    for (int i = 0; i < 20; ++i) busy = mul(matmul(busy, busy), 1e-3);
    Tensor pinned = Tensor::empty({n}, DType::f32, Device::cpu(), /*pinned=*/true);
    {
      NoGradGuard ng;
      pinned.copy_(src);
    }
    device_copy = pinned.to(gpu());
  }  // the pinned block is freed here, its copy possibly still queued behind the matmuls
  const cuda::PinnedStats before = cuda::pinned_stats();
  CHECK(before.cached_blocks >= 1);
  {
    // A block handed out now must not be one a queued copy still reads: overwrite it at once.
    Tensor other = Tensor::empty({n}, DType::f32, Device::cpu(), /*pinned=*/true);
    NoGradGuard ng;
    other.fill_(-7.0);
  }
  expect_equal(device_copy.cpu(), src, "copy out of a freed pinned block");  // synchronises
  // Once the device is idle, a request of the same size is served from the cache.
  const uint64_t reuses = cuda::pinned_stats().reuses;
  { Tensor again = Tensor::empty({n}, DType::f32, Device::cpu(), /*pinned=*/true); }
  CHECK(cuda::pinned_stats().reuses == reuses + 1);
  MESSAGE("pinned cache: ", cuda::pinned_stats().cached_blocks, " blocks, ", cuda::pinned_stats().allocs,
          " cudaHostAlloc calls, ", cuda::pinned_stats().reuses, " reuses");
#endif
}

TEST_CASE("gpu ops leave no device memory behind") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  (void)cuda::context(0).cublaslt_workspace();  // allocated once per process, on first use
  cuda::synchronize(0);
  const size_t before = cuda::memory_stats(0).allocated;
  {
    Tensor x = test::randn({64, 300}, 501, DType::f32).to(gpu()).set_requires_grad();
    Tensor w = test::randn({300, 40}, 502, DType::f32).to(gpu()).set_requires_grad();
    Tensor loss = sum(softmax(matmul(x, w)));
    loss = add(loss, mean(var(x, {0})));
    loss.backward();
    CHECK(x.grad().defined());
  }
  CHECK(cuda::memory_stats(0).allocated == before);
#endif
}
