// CUDA device memory: a caching, stream-ordered allocator, plus page-locked host memory.
//
// Device memory comes from one cudaMemPool per device with a release threshold of UINT64_MAX, allocated and
// freed in order on the device's compute stream (cudaMallocFromPoolAsync / cudaFreeAsync). Freed blocks stay
// in the pool and are reused by later allocations without any synchronisation, which is safe because every
// kernel that touches a block runs on that same stream, before the free in stream order. Work issued on
// another stream (the comm stream) must be joined back to the compute stream (an event wait) before the
// memory it reads is freed.
//
// Out of memory: the allocator synchronises the stream, returns the pool's cached memory to the driver and
// tries once more; if that fails too it throws an iris::Error saying how much was asked for and what the
// pool and the device hold.
//
// This header has no CUDA types, so code built with IRIS_CUDA=OFF can include it (it links only with CUDA).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iris::cuda {

void* device_alloc(size_t bytes, int device);
// Never throws (it runs in destructors); an error is reported on stderr.
void device_free(void* ptr, size_t bytes, int device) noexcept;

// Page-locked host memory (cudaHostAlloc), for fast asynchronous copies (the data loader's batches). Freed
// blocks are cached without synchronising anything: each is reused only after the work queued on the devices'
// streams when it was freed has run (events), so no pending copy can see it rewritten. At most 4 GiB stay
// cached; the oldest blocks beyond that are returned to the driver.
void* pinned_alloc(size_t bytes);
void pinned_free(void* ptr) noexcept;
struct PinnedStats {
  size_t cached_bytes = 0;  // freed blocks kept for reuse
  size_t cached_blocks = 0;
  uint64_t allocs = 0;  // cudaHostAlloc calls
  uint64_t reuses = 0;  // allocations served from the cache
};
PinnedStats pinned_stats();

struct MemoryStats {
  size_t allocated = 0;       // bytes in live allocations made through device_alloc
  size_t peak_allocated = 0;  // the most `allocated` has been since the last reset_peak_memory
  size_t reserved = 0;        // bytes the pool holds from the driver (live + cached)
  size_t peak_reserved = 0;   // the most `reserved` has been since the last reset_peak_memory
  uint64_t alloc_count = 0;   // device_alloc calls that succeeded
  uint64_t free_count = 0;    // device_free calls
};
MemoryStats memory_stats(int device);
void reset_peak_memory(int device);
// Synchronises the device's compute stream and returns every cached (unused) block to the driver.
void release_cached_memory(int device);

}  // namespace iris::cuda
