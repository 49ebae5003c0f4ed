#include "framework/core/host_allocator.h"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/core/error.h"

namespace iris {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMinCached = 16 * 1024;  // smaller blocks live happily in malloc's own bins

size_t cap_from_env() {
  const char* v = std::getenv("IRIS_HOST_CACHE_MB");
  if (v == nullptr || *v == '\0') return size_t(2048) << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  IRIS_CHECK(end != v && *end == '\0' && mb >= 0, "IRIS_HOST_CACHE_MB='", v,
             "' is not a whole number of MiB (0 turns the host block cache off)");
  return static_cast<size_t>(mb) << 20;
}

class BlockCache {
 public:
  void* alloc(size_t nbytes) {
    const size_t size = host_block_size(nbytes);
    if (size >= kMinCached)
      if (void* p = take(size)) return p;
    void* p = std::aligned_alloc(kAlign, size);
    if (p == nullptr) {
      release();
      p = std::aligned_alloc(kAlign, size);
    }
    IRIS_CHECK(p != nullptr, "out of host memory: could not allocate ", nbytes, " bytes");
    return p;
  }

  void free(void* p, size_t nbytes) {
    const size_t size = host_block_size(nbytes);
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + size <= cap_) {  // cap_ was read by the alloc() of this block
        try {
          free_[size].push_back(p);
          cached_ += size;
          return;
        } catch (const std::bad_alloc&) {  // no room for the list entry: give the block back instead
        }
      }
    }
    std::free(p);
  }

  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }

  HostCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {cached_, hits_, misses_};
  }

 private:
  // A cached block of `size` bytes, or nullptr (counted as a miss).
  void* take(size_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cap() == 0) return nullptr;  // the cache is off
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) {
      ++misses_;
      return nullptr;
    }
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    ++hits_;
    return p;
  }

  // Read once, by the first cacheable alloc() (under mu_): a bad value throws there, never in a destructor.
  size_t cap() {
    if (!cap_known_) {
      cap_ = cap_from_env();
      cap_known_ = true;
    }
    return cap_;
  }

  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // block size -> free blocks of that size
  size_t cached_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
  size_t cap_ = 0;
  bool cap_known_ = false;
};

// Never destroyed: storages held by other static objects may be freed after main() returns.
BlockCache& cache() {
  static BlockCache* c = new BlockCache();
  return *c;
}

}  // namespace

size_t host_block_size(size_t nbytes) {
  const size_t aligned = (nbytes + kAlign - 1) / kAlign * kAlign;
  if (aligned < kMinCached) return aligned;
  // A quarter of the power of two at or below `aligned`: classes 16, 20, 24, 28, 32, 40, ... KiB.
  const size_t step = std::bit_floor(aligned) / 4;
  return (aligned + step - 1) / step * step;
}

void* host_alloc(size_t nbytes) { return cache().alloc(nbytes); }
void host_free(void* ptr, size_t nbytes) { cache().free(ptr, nbytes); }
HostCacheStats host_cache_stats() { return cache().stats(); }
void host_cache_release() { cache().release(); }

}  // namespace iris
