#include <asrkit/core/rng.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "../test_util.hpp"

TEST_CASE("portable_log agrees with std::log to ~1 ulp", "[core][rng]") {
  asrkit::Rng rng(1);
  for (int i = 0; i < 100000; ++i) {
    const double x = std::ldexp(1.0 + rng.uniform(), static_cast<int>(rng.uniform_int(200)) - 100);
    const double expected = std::log(x);
    const double got = asrkit::detail::portable_log(x);
    REQUIRE(std::fabs(got - expected) <= 2.5e-16 * std::max(1.0, std::fabs(expected)));
  }
  CHECK(asrkit::detail::portable_log(1.0) == 0.0);
}

TEST_CASE("same seed same stream; streams and seeds differ", "[core][rng]") {
  asrkit::Rng a(7), b(7), c(8), d(7, 1);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    REQUIRE(x == b.next_u64());
    REQUIRE(x != c.next_u64());
    REQUIRE(x != d.next_u64());
  }
}

TEST_CASE("distributions have the right moments", "[core][rng]") {
  asrkit::Rng rng(123);
  const int n = 200000;
  double sum = 0, sum2 = 0, usum = 0, bern = 0;
  float fmin = 1, fmax = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    sum += z;
    sum2 += z * z;
    usum += rng.uniform();
    bern += rng.bernoulli(0.3);
    const float f = rng.uniform<float>();
    fmin = std::min(fmin, f);
    fmax = std::max(fmax, f);
  }
  // 5-sigma bounds: failures are real bugs, not noise.
  CHECK(std::fabs(sum / n) < 5.0 / std::sqrt(n));
  CHECK(std::fabs(sum2 / n - 1.0) < 5.0 * std::sqrt(2.0 / n));
  CHECK(std::fabs(usum / n - 0.5) < 5.0 * std::sqrt(1.0 / 12.0 / n));
  CHECK(std::fabs(bern / n - 0.3) < 5.0 * std::sqrt(0.21 / n));
  CHECK(fmin >= 0.0f);
  CHECK(fmax < 1.0f);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) counts[rng.uniform_int(7)]++;
  for (int c : counts) CHECK(std::abs(c - 10000) < 5 * 93);  // sd = sqrt(70000 * 1/7 * 6/7) ~ 93
}

TEST_CASE("fill functions and argument checks", "[core][rng]") {
  asrkit::Rng rng(5);
  asrkit::Tensor<float> w({100, 10});
  rng.fill_normal(w.view(), 2.0f, 0.5f);
  CHECK(w.flat().mean() == Approx(2.0).margin(0.05));
  rng.fill_uniform(w.view(), -1.0f, 1.0f);
  CHECK(w.flat().minCoeff() >= -1.0f);
  CHECK(w.flat().maxCoeff() < 1.0f);
  rng.fill_bernoulli(w.view(), 1.0);
  CHECK(w.flat().sum() == 1000.0f);
  REQUIRE_THROWS_ID(rng.bernoulli(1.5), asrkit::ValueError, "[asrkit.rng.4] bernoulli(p) needs p in [0, 1], got 1.5");
  REQUIRE_THROWS_ID(rng.uniform(1.0, 1.0), asrkit::ValueError, "[asrkit.rng.1]");
  REQUIRE_THROWS_ID(rng.uniform_int(0), asrkit::ValueError, "[asrkit.rng.2]");
  REQUIRE_THROWS_ID(rng.normal(0.0, -1.0), asrkit::ValueError, "[asrkit.rng.3]");
  REQUIRE_THROWS_ID(rng.normal(double(NAN), 1.0), asrkit::ValueError, "[asrkit.rng.3]");
}
