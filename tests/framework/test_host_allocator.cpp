// The host block cache behind CPU tensor storage (framework/core/host_allocator.h).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>

#include "framework/core/host_allocator.h"
#include "framework/core/tensor.h"

using namespace iris;

TEST_CASE("host block sizes: 64-byte multiples, quarter-power-of-two classes from 16 KiB, at most 25% over") {
  CHECK(host_block_size(1) == 64);
  CHECK(host_block_size(64) == 64);
  CHECK(host_block_size(65) == 128);
  CHECK(host_block_size(16 * 1024) == 16 * 1024);
  CHECK(host_block_size(16 * 1024 + 1) == 20 * 1024);
  CHECK(host_block_size(33 * 1024) == 40 * 1024);
  for (size_t n = 1; n < (size_t(64) << 20); n = n * 3 / 2 + 7) {
    const size_t b = host_block_size(n);
    CHECK(b >= n);
    CHECK(b % 64 == 0);
    if (n >= 16 * 1024) CHECK(b <= n + n / 4 + 64);
    CHECK(host_block_size(b) == b);  // a class size is its own class: a cached block fits its next request
  }
}

TEST_CASE("host blocks: aligned, reused after free, released on request") {
  const size_t n = 300 * 1000;  // a cacheable size
  void* a = host_alloc(n);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  std::memset(a, 1, n);  // the whole block is usable
  host_free(a, n);
  const HostCacheStats before = host_cache_stats();
  CHECK(before.cached_bytes >= host_block_size(n));
  void* b = host_alloc(n - 1000);  // same class: served from the cache
  const HostCacheStats after = host_cache_stats();
  CHECK(after.hits == before.hits + 1);
  CHECK(b == a);
  host_free(b, n - 1000);
  host_cache_release();
  CHECK(host_cache_stats().cached_bytes == 0);
}

TEST_CASE("host blocks: a tensor's storage comes back to the cache when the tensor dies") {
  host_cache_release();
  {
    Tensor t = Tensor::zeros({64, 1024}, DType::f32);  // 256 KiB
    CHECK(t.data<float>()[0] == 0.0f);
  }
  CHECK(host_cache_stats().cached_bytes == host_block_size(64 * 1024 * 4));
  Tensor u = Tensor::zeros({64, 1024}, DType::f32);  // reused memory is still zeroed by zeros()
  for (int64_t i = 0; i < u.numel(); i += 997) CHECK(u.data<float>()[i] == 0.0f);
  CHECK(host_cache_stats().cached_bytes == 0);
}
