// The CPU umbrella header and the CUDA headers compile together under nvcc, and the CUDA
// tensor API instantiates (this file is compiled, not run).
#include <asrkit.hpp>
#include <asrkit/cuda/memory.cuh>

template <class T>
asrkit::Tensor<T> round_trip(const asrkit::Tensor<T>& host) {
  asrkit::Tensor<T, asrkit::Cuda> dev = asrkit::cuda::to_device(host);
  asrkit::Tensor<T, asrkit::Cuda> copy = dev;
  auto slice = copy[0];
  (void)slice;
  asrkit::cuda::DeviceBuffer<T> scratch(16);
  return asrkit::cuda::to_host(copy);
}

template asrkit::Tensor<float> round_trip(const asrkit::Tensor<float>&);
template asrkit::Tensor<double> round_trip(const asrkit::Tensor<double>&);
