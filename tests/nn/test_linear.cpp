// nn/linear.hpp: forward on any leading axes, every gradient against finite differences
// (double), accumulation, parameter names, default init, errors.
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/linear.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

namespace {
template <class T>
Tensor<T> random(const Shape& s, std::uint64_t seed) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), T(1));
  return t;
}
}  // namespace

TEST_CASE("Linear forward is x W^T + b on any leading axes", "[nn][linear]") {
  asrkit::Rng rng(1);
  asrkit::Linear<double> fc(5, 3, rng);
  const auto x = random<double>({4, 2, 5}, 2);  // [T, B, F]
  const auto y = fc.forward(x);
  REQUIRE(y.shape() == Shape{4, 2, 3});
  for (index_t t = 0; t < 4; ++t)
    for (index_t b = 0; b < 2; ++b)
      for (index_t o = 0; o < 3; ++o) {
        double s = fc.bias().value(o);
        for (index_t i = 0; i < 5; ++i) s += x(t, b, i) * fc.weight().value(o, i);
        CHECK(y(t, b, o) == Approx(s).epsilon(1e-14));
      }
  // Rank 1 input (one frame) and forward_train give the same numbers.
  const auto y1 = fc.forward(x[1][0]);
  REQUIRE(y1.shape() == Shape{3});
  CHECK(y1(2) == y(1, 0, 2));
  const auto yt = fc.forward_train(x);
  for (index_t i = 0; i < y.numel(); ++i) CHECK(yt.data()[i] == y.data()[i]);
}

TEST_CASE("Linear gradients match central differences", "[nn][linear]") {
  for (bool bias : {true, false}) {
    INFO("bias " << bias);
    asrkit::Rng rng(3);
    asrkit::Linear<double> fc(6, 4, rng, bias);
    auto x = random<double>({3, 2, 6}, 4);
    const auto w = random<double>({3, 2, 4}, 5);
    auto loss = [&] { return asrkit_test::dot(fc.forward(x), w); };
    fc.forward_train(x);
    const auto dx = fc.backward(w);
    CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-7);
    CHECK(asrkit_test::max_gradient_error(loss, fc.weight().value, fc.weight().grad) < 1e-7);
    if (bias) CHECK(asrkit_test::max_gradient_error(loss, fc.bias().value, fc.bias().grad) < 1e-7);
    // Gradients accumulate over backward calls until zero_grad.
    const Tensor<double> g1 = fc.weight().grad;
    fc.backward(w);
    CHECK(fc.weight().grad(1, 2) == Approx(2 * g1(1, 2)).epsilon(1e-14));
    asrkit::zero_grad(fc);
    CHECK(fc.weight().grad(1, 2) == 0.0);
  }
}

TEST_CASE("Linear parameters, names and default init", "[nn][linear]") {
  asrkit::Rng rng(6);
  asrkit::Linear<float> fc(100, 7, rng);
  std::vector<std::string> names;
  fc.for_each_parameter([&](const std::string& n, asrkit::Parameter<float>& p) {
    names.push_back(n);
    if (n == "enc.fc.weight") CHECK(p.value.shape() == Shape{7, 100});
    if (n == "enc.fc.bias") CHECK(p.value.shape() == Shape{7});
  }, "enc.fc");
  CHECK(names == std::vector<std::string>{"enc.fc.weight", "enc.fc.bias"});
  // PyTorch's default: U(+-1/sqrt(in)) for weight and bias.
  float lo = 1, hi = -1;
  for (index_t i = 0; i < fc.weight().value.numel(); ++i) {
    lo = std::min(lo, fc.weight().value.data()[i]);
    hi = std::max(hi, fc.weight().value.data()[i]);
  }
  CHECK(lo >= -0.1f);
  CHECK(hi < 0.1f);
  CHECK(lo < -0.09f);
  CHECK(hi > 0.09f);
  asrkit::Linear<float> nobias(3, 2, rng, false);
  names.clear();
  nobias.for_each_parameter([&](const std::string& n, asrkit::Parameter<float>&) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"weight"});
  // Same seed, same weights; the global generator reseeds like torch.manual_seed.
  asrkit::Rng r1(9), r2(9);
  asrkit::Linear<float> a(4, 4, r1), b(4, 4, r2);
  CHECK(a.weight().value(3, 3) == b.weight().value(3, 3));
  asrkit::init::manual_seed(5);
  asrkit::Linear<float> c(4, 4);
  asrkit::init::manual_seed(5);
  asrkit::Linear<float> d(4, 4);
  CHECK(c.weight().value(2, 1) == d.weight().value(2, 1));
}

TEST_CASE("Linear errors name the layer, the argument, expected and actual", "[nn][linear]") {
  REQUIRE_THROWS_ID(asrkit::Linear<float>(0, 3), asrkit::ValueError,
                    "[asrkit.linear.1] Linear: in_features and out_features must be >= 1, got 0 and 3");
  asrkit::Linear<float> fc(4, 3);
  Tensor<float> x({2, 5});
  REQUIRE_THROWS_ID(fc.forward(x), asrkit::ShapeError,
                    "[asrkit.linear.2] Linear(4 -> 3): argument x: expected shape [..., 4], got [2, 5]");
  Tensor<float> dy({2, 3});
  REQUIRE_THROWS_ID(fc.backward(dy), asrkit::ValueError,
                    "[asrkit.linear.3] Linear(4 -> 3)::backward: no cached input; call forward_train first");
  Tensor<float> x4({2, 4});
  fc.forward_train(x4);
  Tensor<float> dy_bad({3, 3});
  REQUIRE_THROWS_ID(fc.backward(dy_bad), asrkit::ShapeError,
                    "[asrkit.linear.2] Linear(4 -> 3)::backward: argument dy: expected shape [2, 3] "
                    "(the forward output), got [3, 3]");
}
