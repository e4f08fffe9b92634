// asrkit/core/memory_cache.hpp - large host blocks kept for reuse between tensors.
//
//   asrkit::set_memory_cache_limit(std::size_t{256} << 20);  // keep at most 256 MiB (0: none)
//   asrkit::cached_memory_bytes();                            // what is kept now
//   asrkit::release_cached_memory();                          // give it all back now
//
// A training loop frees and allocates tensors of the same sizes every step. glibc hands freed
// blocks above its trim / mmap thresholds back to the kernel, and the next tensor of that size
// page-faults every 4 KiB page in again: BatchNorm forward + backward on [500, 8, 1024] floats
// took 11.5 ms so against 4.9 ms with the thresholds raised (docs/core.md). So tensors of at
// least 1 MiB keep their block here when freed, by size, up to a byte limit (oldest blocks go
// first), and the next tensor of the same size takes it. Smaller blocks are malloc's business.
// Under AddressSanitizer a kept block is poisoned, so a use after free is still reported.
#pragma once

#include <cstddef>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define ASRKIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASRKIT_ASAN 1
#endif
#endif
#ifdef ASRKIT_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace asrkit {
namespace detail {

class HostBlockCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t{1} << 20;  // smaller: left to malloc
  static constexpr std::size_t kDefaultLimit = std::size_t{1} << 30;
  static constexpr std::size_t kAlignment = 64;

  // Never destroyed: a tensor in static storage may be freed after any other static object.
  static HostBlockCache& instance() {
    static HostBlockCache* cache = new HostBlockCache;
    return *cache;
  }

  /// A block of `bytes` (>= kMinBytes), kept or new.
  void* allocate(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (std::size_t i = blocks_.size(); i-- > 0;) {  // the most recently freed first
        if (blocks_[i].first != bytes) continue;
        void* block = blocks_[i].second;
        blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
        kept_ -= bytes;
        unpoison(block, bytes);
        return block;
      }
    }
    return ::operator new(bytes, std::align_val_t{kAlignment});
  }

  /// Keeps a freed block of `bytes` (>= kMinBytes) for the next allocation of that size, or
  /// frees it when the limit does not allow it.
  void deallocate(void* block, std::size_t bytes) noexcept {
    std::vector<std::pair<std::size_t, void*>> evicted;
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      if (bytes <= limit_) {
        std::size_t drop = 0, kept = kept_;  // the oldest blocks that make room
        while (kept + bytes > limit_) kept -= blocks_[drop++].first;
        blocks_.reserve(blocks_.size() + 1);  // the only steps that can throw come first
        const auto first = blocks_.begin(), last = first + static_cast<std::ptrdiff_t>(drop);
        evicted.assign(first, last);
        blocks_.erase(first, last);
        blocks_.emplace_back(bytes, block);
        kept_ = kept + bytes;
        poison(block, bytes);
        block = nullptr;
      }
    } catch (...) {  // no memory for the list (or the lock failed): free the block instead
    }
    for (const auto& [size, old] : evicted) {
      unpoison(old, size);
      free(old);
    }
    if (block != nullptr) free(block);
  }

  void set_limit(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    trim_locked();
  }
  std::size_t limit() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return limit_;
  }
  std::size_t kept_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return kept_;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t limit = limit_;
    limit_ = 0;
    trim_locked();
    limit_ = limit;
  }

 private:
  HostBlockCache() = default;

  static void free(void* block) noexcept { ::operator delete(block, std::align_val_t{kAlignment}); }

  void trim_locked() {
    std::size_t drop = 0;
    while (kept_ > limit_) {
      kept_ -= blocks_[drop].first;
      unpoison(blocks_[drop].second, blocks_[drop].first);
      free(blocks_[drop++].second);
    }
    blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(drop));
  }

#ifdef ASRKIT_ASAN
  static void poison(void* block, std::size_t bytes) noexcept { ASAN_POISON_MEMORY_REGION(block, bytes); }
  static void unpoison(void* block, std::size_t bytes) noexcept { ASAN_UNPOISON_MEMORY_REGION(block, bytes); }
#else
  static void poison(void*, std::size_t) noexcept {}
  static void unpoison(void*, std::size_t) noexcept {}
#endif

  mutable std::mutex mutex_;
  std::vector<std::pair<std::size_t, void*>> blocks_;  // (bytes, block), oldest first; a few dozen
  std::size_t kept_ = 0;
  std::size_t limit_ = kDefaultLimit;
};

}  // namespace detail

/// The most bytes of freed tensor storage (blocks of 1 MiB or more) asrkit keeps for reuse;
/// 1 GiB by default, 0 turns the cache off. Lowering it frees the oldest kept blocks at once.
inline void set_memory_cache_limit(std::size_t bytes) { detail::HostBlockCache::instance().set_limit(bytes); }
inline std::size_t memory_cache_limit() { return detail::HostBlockCache::instance().limit(); }
/// Bytes of freed tensor storage kept now.
inline std::size_t cached_memory_bytes() { return detail::HostBlockCache::instance().kept_bytes(); }
/// Frees every kept block (the limit stays).
inline void release_cached_memory() { detail::HostBlockCache::instance().release(); }

}  // namespace asrkit
