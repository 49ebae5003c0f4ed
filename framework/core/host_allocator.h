// Host (CPU) memory for tensor storage, with freed blocks kept for reuse.
//
// Why: a training or sampling step allocates and frees the same few hundred activation and gradient blocks
// every step. Through plain malloc, blocks above glibc's mmap threshold (and the top of the heap, once
// trimmed) go back to the kernel when freed and come back as fresh zeroed pages: measured ~5,000 page
// faults per training step of the CPU benchmark U-Net (sr3_cpu_bench_32, batch 8), about 8% of the step.
// Freed blocks of 16 KiB and more are therefore kept in per-size-class free lists and handed out again.
//
// Size classes: a request is rounded up to a quarter of its power of two (at most 25% more than asked),
// so a block serves any later request of its class. Cached (free) bytes are capped by IRIS_HOST_CACHE_MB
// (default 2048; 0 turns the cache off): a block freed beyond the cap goes back to the system. When the
// system refuses an allocation, the cache is emptied and the allocation tried once more.
// Thread-safe (one mutex; blocks may be freed on another thread than the one that allocated them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iris {

// 64-byte aligned block of at least `nbytes` (> 0) bytes; throws iris::Error when out of memory.
void* host_alloc(size_t nbytes);
// Returns a block from host_alloc; `nbytes` must be the size it was asked for.
void host_free(void* ptr, size_t nbytes);

struct HostCacheStats {
  size_t cached_bytes = 0;  // held in the free lists now
  uint64_t hits = 0;        // allocations served from the cache
  uint64_t misses = 0;      // cacheable allocations that went to the system
};
HostCacheStats host_cache_stats();

// Frees every cached block (e.g. before handing memory to another library).
void host_cache_release();

// The size a request of `nbytes` is rounded up to (exposed for tests).
size_t host_block_size(size_t nbytes);

}  // namespace iris
