// asrkit/cuda/memory.cuh - CUDA device memory: DeviceTraits<Cuda>, an RAII buffer, host/device
// copies of tensors. Compiled by nvcc only, with ASRKIT_WITH_CUDA (link asrkit::cuda).
//
//   asrkit::Tensor<float> host({T, B, V});
//   asrkit::Tensor<float, asrkit::Cuda> dev = asrkit::cuda::to_device(host);
//   asrkit::Tensor<float> back = asrkit::cuda::to_host(dev);
#pragma once

#if !defined(__CUDACC__)
#error "asrkit/cuda/*.cuh must be compiled by nvcc (a .cu file linking asrkit::cuda)"
#endif
#if !defined(ASRKIT_WITH_CUDA)
#error "define ASRKIT_WITH_CUDA (link the asrkit::cuda CMake target) to use asrkit's CUDA backend"
#endif

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include <asrkit/core/device.hpp>
#include <asrkit/core/error.hpp>

namespace asrkit {
namespace cuda {

/// Throws CudaError "[asrkit.cuda.1] <what>: <cuda error string>" when `status` is not success.
inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw CudaError("cuda.1", detail::str(what, " failed: ", cudaGetErrorName(status), " (",
                                          cudaGetErrorString(status), ")"));
}

}  // namespace cuda

template <>
struct DeviceTraits<Cuda> {
  static constexpr bool available = true;

  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    cuda::check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  static void deallocate(void* p) noexcept {
    if (p != nullptr) cudaFree(p);  // never throws from a destructor
  }
  static void deallocate(void* p, std::size_t /*bytes*/) noexcept { deallocate(p); }
  static void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes != 0) cuda::check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy D2D");
  }
  static void zero(void* dst, std::size_t bytes) {
    if (bytes != 0) cuda::check(cudaMemset(dst, 0, bytes), "cudaMemset");
  }
};

}  // namespace asrkit

// Tensor needs DeviceTraits<Cuda> complete before it is instantiated for Cuda.
#include <asrkit/core/tensor.hpp>

namespace asrkit {
namespace cuda {

/// RAII device scratch memory of `count` elements of T (workspaces, kernel temporaries).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count)
      : data_(static_cast<T*>(DeviceTraits<Cuda>::allocate(count * sizeof(T)))), count_(count) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
    return *this;
  }
  ~DeviceBuffer() { DeviceTraits<Cuda>::deallocate(data_); }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

/// Copies `host` into device memory `dst` of the same shape.
template <class T>
void copy(TensorView<T, Cuda> dst, TensorView<const T, Cpu> src) {
  check_shape(dst.shape(), src.shape(), "cuda::copy host->device destination");
  check(cudaMemcpy(dst.data(), src.data(), src.size_bytes(), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
}

/// Copies device memory `src` into host memory `dst` of the same shape.
template <class T>
void copy(TensorView<T, Cpu> dst, TensorView<const T, Cuda> src) {
  check_shape(dst.shape(), src.shape(), "cuda::copy device->host destination");
  check(cudaMemcpy(dst.data(), src.data(), src.size_bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
}

template <class T>
Tensor<T, Cuda> to_device(TensorView<const T, Cpu> host) {
  Tensor<T, Cuda> dev(host.shape());
  copy<T>(dev.view(), host);
  return dev;
}
template <class T>
Tensor<T, Cuda> to_device(const Tensor<T, Cpu>& host) { return to_device<T>(host.view()); }

template <class T>
Tensor<T, Cpu> to_host(TensorView<const T, Cuda> dev) {
  Tensor<T, Cpu> host(dev.shape());
  copy<T>(host.view(), dev);
  return host;
}
template <class T>
Tensor<T, Cpu> to_host(const Tensor<T, Cuda>& dev) { return to_host<T>(dev.view()); }

/// Number of visible CUDA devices (0 when there is no GPU or no driver; never throws).
inline int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}

}  // namespace cuda
}  // namespace asrkit
