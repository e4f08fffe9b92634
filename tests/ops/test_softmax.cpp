// ops/softmax.hpp: values, stability, -inf entries, backward against finite differences.
#include <asrkit/core/rng.hpp>
#include <asrkit/ops/softmax.hpp>

#include <cmath>
#include <limits>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;

TEST_CASE("softmax and log_softmax values", "[ops][softmax]") {
  Tensor<double> x({2, 3});
  x(0, 0) = 1;
  x(0, 1) = 2;
  x(0, 2) = 3;
  x(1, 0) = 1000;  // stable: shifted by the row maximum
  x(1, 1) = 1000;
  x(1, 2) = -std::numeric_limits<double>::infinity();
  Tensor<double> p(x.shape()), lp(x.shape());
  asrkit::ops::softmax(x, p.view());
  asrkit::ops::log_softmax(x, lp.view());
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(p(0, 2) == Approx(std::exp(3.0) / z).epsilon(1e-15));
  CHECK(lp(0, 0) == Approx(1 - std::log(z)).epsilon(1e-15));
  CHECK(p(1, 0) == 0.5);
  CHECK(p(1, 2) == 0.0);
  CHECK(lp(1, 1) == Approx(-std::log(2.0)).epsilon(1e-12));
  CHECK(std::isinf(lp(1, 2)));
  // float, in place
  Tensor<float> xf({1, 4}, 88.0f);
  asrkit::ops::softmax(xf, xf.view());
  CHECK(xf(0, 3) == 0.25f);
}

TEST_CASE("softmax backward matches central differences", "[ops][softmax]") {
  Tensor<double> x({3, 2, 7});
  asrkit::Rng rng(3);
  rng.fill_normal(x.view(), 0.0, 3.0);
  Tensor<double> w(x.shape());
  rng.fill_normal(w.view(), 0.0, 1.0);
  Tensor<double> y(x.shape()), dx(x.shape());
  for (bool log : {false, true}) {
    INFO((log ? "log_softmax" : "softmax"));
    auto f = [&] {
      if (log)
        asrkit::ops::log_softmax(x, y.view());
      else
        asrkit::ops::softmax(x, y.view());
    };
    auto loss = [&] {
      f();
      return asrkit_test::dot(y, w);
    };
    f();
    if (log)
      asrkit::ops::log_softmax_backward(y, w, dx.view());
    else
      asrkit::ops::softmax_backward(y, w, dx.view());
    CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);
  }
}

TEST_CASE("softmax shape errors", "[ops][softmax]") {
  Tensor<float> x({2, 3}), y({3, 2});
  REQUIRE_THROWS_ID(asrkit::ops::softmax(x, y.view()), asrkit::ShapeError,
                    "[asrkit.softmax.1] softmax: output must have shape [2, 3], got [3, 2]");
  REQUIRE_THROWS_ID(asrkit::ops::log_softmax_backward(x, y, x.view()), asrkit::ShapeError,
                    "[asrkit.softmax.1] log_softmax_backward: output gradient dy");
  Tensor<float> s(asrkit::Shape{}), t(asrkit::Shape{});
  REQUIRE_THROWS_ID(asrkit::ops::softmax(s, t.view()), asrkit::ShapeError,
                    "[asrkit.softmax.1] softmax: input must have rank >= 1");
}
