// ops/reduce.hpp: column / channel sums (bias gradients), sums and means over axes.
#include <asrkit/core/rng.hpp>
#include <asrkit/ops/reduce.hpp>

#include <cmath>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

namespace {
Tensor<double> random(const Shape& s, std::uint64_t seed) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0, 1.0);
  return t;
}
}  // namespace

TEST_CASE("column_sums and channel_sums", "[ops][reduce]") {
  const auto x = random({3, 4, 300}, 1);  // more than one column block
  Tensor<double> y({300}, 1.0);
  asrkit::ops::column_sums(x, y.view(), true);
  for (index_t f : {0, 17, 299}) {
    double s = 1;
    for (index_t a = 0; a < 3; ++a)
      for (index_t b = 0; b < 4; ++b) s += x(a, b, f);
    CHECK(y(f) == Approx(s).epsilon(1e-13));
  }
  asrkit::ops::column_sums(x, y.view());
  CHECK(y(0) == Approx(x(0, 0, 0) + x(0, 1, 0) + x(0, 2, 0) + x(0, 3, 0) + x(1, 0, 0) + x(1, 1, 0) +
                       x(1, 2, 0) + x(1, 3, 0) + x(2, 0, 0) + x(2, 1, 0) + x(2, 2, 0) + x(2, 3, 0))
                    .epsilon(1e-13));
  const auto m = random({2, 3, 4, 5}, 2);
  Tensor<double> c({3});
  asrkit::ops::channel_sums(m, c.view());
  for (index_t ch = 0; ch < 3; ++ch) {
    double s = 0;
    for (index_t b = 0; b < 2; ++b)
      for (index_t h = 0; h < 4; ++h)
        for (index_t w = 0; w < 5; ++w) s += m(b, ch, h, w);
    CHECK(c(ch) == Approx(s).epsilon(1e-13));
  }
  Tensor<double> bad({4});
  REQUIRE_THROWS_ID(asrkit::ops::column_sums(x, bad.view()), asrkit::ShapeError,
                    "[asrkit.reduce.1] column_sums: output must be [300] (the last axis of x "
                    "[3, 4, 300]), got [4]");
  REQUIRE_THROWS_ID(asrkit::ops::channel_sums(m, bad.view()), asrkit::ShapeError,
                    "[asrkit.reduce.1] channel_sums: output must be [3]");
}

TEST_CASE("sum and mean over any axes", "[ops][reduce]") {
  const auto x = random({2, 3, 4}, 3);
  Tensor<double> y({3});
  asrkit::ops::sum(x, {0, 2}, y.view());
  for (index_t j = 0; j < 3; ++j) {
    double s = 0;
    for (index_t i = 0; i < 2; ++i)
      for (index_t k = 0; k < 4; ++k) s += x(i, j, k);
    CHECK(y(j) == Approx(s).epsilon(1e-13));
  }
  Tensor<double> z({2, 4});
  asrkit::ops::mean(x, {-2}, z.view());
  CHECK(z(1, 3) == Approx((x(1, 0, 3) + x(1, 1, 3) + x(1, 2, 3)) / 3).epsilon(1e-13));
  Tensor<double> all(Shape{});
  asrkit::ops::sum(x, {0, 1, 2}, all.view());
  double s = 0;
  for (index_t i = 0; i < x.numel(); ++i) s += x.data()[i];
  CHECK(all() == Approx(s).epsilon(1e-13));
  Tensor<double> same(x.shape());
  asrkit::ops::sum(x, {}, same.view());
  CHECK(same(1, 2, 3) == x(1, 2, 3));
  REQUIRE_THROWS_ID(asrkit::ops::sum(x, {0, 0}, y.view()), asrkit::ValueError,
                    "[asrkit.reduce.2] sum: axis 0 is out of range or repeated");
  REQUIRE_THROWS_ID(asrkit::ops::sum(x, {1}, y.view()), asrkit::ShapeError,
                    "[asrkit.reduce.1] sum: output must have shape [2, 4]");
}
