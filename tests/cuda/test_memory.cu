// Host <-> device round trip of tensors and a device-to-device deep copy.
#include "cuda_test.cuh"

int main() {
  skip_without_gpu();
  asrkit::Tensor<float> host({3, 5});
  for (int i = 0; i < 15; ++i) host.data()[i] = static_cast<float>(i) * 0.5f;
  asrkit::Tensor<float, asrkit::Cuda> dev = asrkit::cuda::to_device(host);
  asrkit::Tensor<float, asrkit::Cuda> dev2 = dev;  // deep copy on the device
  asrkit::Tensor<float> back = asrkit::cuda::to_host(dev2);
  ASRKIT_CUDA_REQUIRE(back.shape() == host.shape());
  for (int i = 0; i < 15; ++i) ASRKIT_CUDA_REQUIRE(back.data()[i] == host.data()[i]);
  asrkit::Tensor<float> wrong({5, 3});
  bool threw = false;
  try {
    asrkit::cuda::copy<float>(wrong.view(), dev.view());
  } catch (const asrkit::ShapeError&) {
    threw = true;
  }
  ASRKIT_CUDA_REQUIRE(threw);
  std::printf("cuda memory round trip OK\n");
  return 0;
}
