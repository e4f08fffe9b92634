#include <asrkit/core/device.hpp>

#include <cstdint>

#include "../test_util.hpp"

TEST_CASE("device tags and CPU traits", "[core][device]") {
  STATIC_REQUIRE(asrkit::is_device_v<asrkit::Cpu>);
  STATIC_REQUIRE(asrkit::is_device_v<asrkit::Cuda>);
  STATIC_REQUIRE(!asrkit::is_device_v<int>);
  STATIC_REQUIRE(asrkit::DeviceTraits<asrkit::Cpu>::available);
  using Traits = asrkit::DeviceTraits<asrkit::Cpu>;
  void* p = Traits::allocate(1000);
  REQUIRE(p != nullptr);
  CHECK(reinterpret_cast<std::uintptr_t>(p) % Traits::alignment == 0);
  Traits::zero(p, 1000);
  CHECK(static_cast<unsigned char*>(p)[999] == 0);
  Traits::deallocate(p);
  CHECK(Traits::allocate(0) == nullptr);
  Traits::deallocate(nullptr);
}
