#include <asrkit/core/threading.hpp>

#include <stdexcept>
#include <vector>

#include "../test_util.hpp"

TEST_CASE("set_num_threads validates and parallel_for visits every index once", "[core][threading]") {
  REQUIRE_THROWS_ID(asrkit::set_num_threads(0), asrkit::ValueError, "[asrkit.threads.1] num_threads must be >= 1, got 0");
  const int before = asrkit::num_threads();
  for (int threads : {1, 2, 3}) {
    asrkit::set_num_threads(threads);
#if defined(_OPENMP)
    CHECK(asrkit::num_threads() == threads);
#endif
    std::vector<int> hits(1000, 0);
    asrkit::parallel_for(1000, [&](asrkit::index_t i) { hits[static_cast<std::size_t>(i)] += 1; });
    for (int h : hits) REQUIRE(h == 1);
  }
  asrkit::set_num_threads(before);
}

TEST_CASE("parallel_for rethrows the first exception on the calling thread", "[core][threading]") {
  asrkit::set_num_threads(2);
  CHECK_THROWS_AS(asrkit::parallel_for(100, [](asrkit::index_t i) {
                    if (i == 57) throw std::runtime_error("boom");
                  }),
                  std::runtime_error);
}
