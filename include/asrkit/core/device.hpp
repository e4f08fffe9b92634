// asrkit/core/device.hpp - device tags and the per-device memory traits.
//
// Devices are empty structs passed as template arguments (as Eigen does), never run-time enums:
//
//   asrkit::Tensor<float, asrkit::Cpu> x({2, 3});
//
// DeviceTraits<Device> says how to allocate, free and copy memory on that device. The CPU
// traits live here; the CUDA traits live in <asrkit/cuda/memory.cuh>, which only nvcc compiles.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>

#include <asrkit/core/memory_cache.hpp>

namespace asrkit {

/// Host memory, Eigen kernels, OpenMP threads.
struct Cpu {};
/// NVIDIA GPU memory and kernels (needs <asrkit/cuda/...> and nvcc).
struct Cuda {};

template <class Device>
struct DeviceTraits {
  // Unspecialised: the device is not available in this translation unit.
  static constexpr bool available = false;
};

template <>
struct DeviceTraits<Cpu> {
  static constexpr bool available = true;
  /// 64 bytes: one cache line and one AVX-512 register, so Eigen packets load aligned.
  static constexpr std::size_t alignment = 64;
  static_assert(alignment == detail::HostBlockCache::kAlignment, "cached blocks must be aligned alike");

  /// Blocks of 1 MiB or more come from and go back to asrkit's cache of freed blocks
  /// (core/memory_cache.hpp); deallocate must be given the size allocate was asked for.
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    if (bytes >= detail::HostBlockCache::kMinBytes) return detail::HostBlockCache::instance().allocate(bytes);
    return ::operator new(bytes, std::align_val_t{alignment});
  }
  static void deallocate(void* p, std::size_t bytes) noexcept {
    if (p == nullptr) return;
    if (bytes >= detail::HostBlockCache::kMinBytes) detail::HostBlockCache::instance().deallocate(p, bytes);
    else ::operator delete(p, std::align_val_t{alignment});
  }
  static void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes != 0) std::memcpy(dst, src, bytes);
  }
  static void zero(void* dst, std::size_t bytes) {
    if (bytes != 0) std::memset(dst, 0, bytes);
  }
};

template <class T>
struct is_device : std::bool_constant<std::is_same_v<T, Cpu> || std::is_same_v<T, Cuda>> {};
template <class T>
inline constexpr bool is_device_v = is_device<T>::value;

}  // namespace asrkit
