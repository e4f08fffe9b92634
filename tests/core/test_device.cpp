#include <asrkit/core/device.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>

#include <cstdint>
#include <vector>

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
  Traits::deallocate(p, 1000);
  CHECK(Traits::allocate(0) == nullptr);
  Traits::deallocate(nullptr, 0);
}

namespace {
// Restores the cache limit a test changes.
struct CacheLimit {
  std::size_t saved = asrkit::memory_cache_limit();
  explicit CacheLimit(std::size_t bytes) {
    asrkit::release_cached_memory();
    asrkit::set_memory_cache_limit(bytes);
  }
  ~CacheLimit() {
    asrkit::release_cached_memory();
    asrkit::set_memory_cache_limit(saved);
  }
};
constexpr asrkit::index_t kMiB = 1 << 20;
}  // namespace

TEST_CASE("freed large tensors leave their blocks for the next tensor of the same size", "[core][device]") {
  CacheLimit limit(std::size_t{64} << 20);
  const float* first;
  {
    asrkit::Tensor<float> a({kMiB});  // 4 MiB
    a.fill(7.f);
    first = a.data();
  }
  CHECK(asrkit::cached_memory_bytes() == std::size_t{4} << 20);
  {
    asrkit::Tensor<float> other({kMiB / 2});  // another size: a new block
    CHECK(other.data() != first);
    asrkit::Tensor<float> b({kMiB});  // the same size: the kept block, zeroed again
    CHECK(b.data() == first);
    CHECK(b(0) == 0.f);
    CHECK(b(kMiB - 1) == 0.f);
    CHECK(asrkit::cached_memory_bytes() == 0);
  }
  CHECK(asrkit::cached_memory_bytes() == std::size_t{6} << 20);
  {
    asrkit::Tensor<float> small({1000});  // under 1 MiB: malloc's, never kept
  }
  CHECK(asrkit::cached_memory_bytes() == std::size_t{6} << 20);
  asrkit::release_cached_memory();
  CHECK(asrkit::cached_memory_bytes() == 0);
}

TEST_CASE("the cache keeps at most its limit, dropping the oldest blocks", "[core][device]") {
  CacheLimit limit(std::size_t{5} << 20);
  const float* a_data;
  const float* b_data;
  {
    asrkit::Tensor<float> a({kMiB / 2});  // 2 MiB each
    asrkit::Tensor<float> b({kMiB / 2});
    asrkit::Tensor<float> c({kMiB / 2});
    a_data = a.data();
    b_data = b.data();
  }  // freed c, b, a: only two fit, so c (the oldest) went back to the system
  CHECK(asrkit::cached_memory_bytes() == std::size_t{4} << 20);
  {
    asrkit::Tensor<float> x({kMiB / 2});  // the most recently freed first: a, then b
    asrkit::Tensor<float> y({kMiB / 2});
    CHECK(x.data() == a_data);
    CHECK(y.data() == b_data);
  }
  asrkit::set_memory_cache_limit(std::size_t{3} << 20);  // lowering the limit frees at once
  CHECK(asrkit::cached_memory_bytes() == std::size_t{2} << 20);
  asrkit::set_memory_cache_limit(0);  // off: nothing kept
  CHECK(asrkit::cached_memory_bytes() == 0);
  { asrkit::Tensor<float> z({kMiB}); }
  CHECK(asrkit::cached_memory_bytes() == 0);
}

TEST_CASE("tensors are allocated and freed from many threads at once", "[core][device]") {
  CacheLimit limit(std::size_t{16} << 20);
  asrkit::set_num_threads(2);
  std::vector<double> sums(64);
  asrkit::parallel_for(64, [&](asrkit::index_t i) {
    asrkit::Tensor<float> t({kMiB / 4 + (i % 3) * 1024}, static_cast<float>(i));
    sums[static_cast<std::size_t>(i)] = static_cast<double>(t(0) + t(t.numel() - 1));
  });
  for (std::size_t i = 0; i < sums.size(); ++i) CHECK(sums[i] == 2.0 * static_cast<double>(i));
  CHECK(asrkit::cached_memory_bytes() <= std::size_t{16} << 20);
}
