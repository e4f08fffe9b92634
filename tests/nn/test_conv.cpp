// nn/conv.hpp: Conv1d / Conv2d layers: shapes, gradients against finite differences (double)
// for stride, padding, dilation, groups and depthwise, names, options, errors.
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/conv.hpp>

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

template <class Layer>
void check_gradients(Layer& layer, Tensor<double>& x) {
  const Shape ys = layer.forward(x).shape();
  const auto w = random<double>(ys, 99);
  auto loss = [&] { return asrkit_test::dot(layer.forward(x), w); };
  asrkit::zero_grad(layer);
  layer.forward_train(x);
  const auto dx = layer.backward(w);
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);
  CHECK(asrkit_test::max_gradient_error(loss, layer.weight().value, layer.weight().grad) < 1e-6);
  if (layer.has_bias())
    CHECK(asrkit_test::max_gradient_error(loss, layer.bias().value, layer.bias().grad) < 1e-6);
}
}  // namespace

TEST_CASE("Conv2d gradients match central differences", "[nn][conv]") {
  struct C {
    const char* name;
    index_t in, out;
    asrkit::Conv2dOptions o;
  };
  std::vector<C> cases;
  asrkit::Conv2dOptions o;
  o.kernel = {3, 2};
  cases.push_back({"plain", 2, 3, o});
  o.stride = {2, 1};
  o.padding = {1, 2};
  cases.push_back({"stride + padding", 2, 3, o});
  o.dilation = {2, 1};
  o.bias = false;
  cases.push_back({"dilation, no bias", 2, 2, o});
  o = {};
  o.kernel = {3, 3};
  o.padding = {1, 1};
  o.groups = 2;
  cases.push_back({"groups", 4, 2, o});
  o.groups = 3;
  cases.push_back({"depthwise", 3, 3, o});
  for (auto& c : cases) {
    INFO(c.name);
    asrkit::Rng rng(1);
    asrkit::Conv2d<double> conv(c.in, c.out, c.o, rng);
    auto x = random<double>({2, c.in, 5, 6}, 2);
    check_gradients(conv, x);
  }
}

TEST_CASE("Conv1d gradients match central differences", "[nn][conv]") {
  asrkit::Conv1dOptions o;
  o.kernel = 3;
  o.stride = 2;
  o.padding = 2;
  o.dilation = 2;
  asrkit::Rng rng(3);
  asrkit::Conv1d<double> conv(3, 4, o, rng);
  auto x = random<double>({2, 3, 9}, 4);
  REQUIRE(conv.forward(x).shape() == Shape{2, 4, 5});
  check_gradients(conv, x);
  asrkit::Conv1dOptions dw;  // depthwise with a channel multiplier
  dw.kernel = 5;
  dw.padding = 2;
  dw.groups = 3;
  asrkit::Conv1d<double> depthwise(3, 6, dw, rng);
  REQUIRE(depthwise.weight().value.shape() == Shape{6, 1, 5});
  auto x2 = random<double>({1, 3, 8}, 5);
  REQUIRE(depthwise.forward(x2).shape() == Shape{1, 6, 8});
  check_gradients(depthwise, x2);
}

TEST_CASE("Conv layers: names, shapes, default init, input_grad", "[nn][conv]") {
  asrkit::Conv2dOptions o;
  o.kernel = {41, 11};
  o.stride = {2, 2};
  o.padding = {20, 5};
  asrkit::Rng rng(4);
  asrkit::Conv2d<float> conv(1, 32, o, rng);  // DS2's first layer
  std::vector<std::string> names;
  conv.for_each_parameter([&](const std::string& n, asrkit::Parameter<float>& p) {
    names.push_back(n + " " + p.value.shape().str());
  }, "conv.0");
  CHECK(names == std::vector<std::string>{"conv.0.weight [32, 1, 41, 11]", "conv.0.bias [32]"});
  CHECK(conv.output_shape(Shape{2, 1, 161, 100}) == Shape{2, 32, 81, 50});
  float hi = 0;
  for (index_t i = 0; i < conv.weight().value.numel(); ++i)
    hi = std::max(hi, std::fabs(conv.weight().value.data()[i]));
  CHECK(hi <= 1 / std::sqrt(451.0f));  // U(+-1/sqrt(fan_in)), fan_in = 1 * 41 * 11
  CHECK(hi > 0.9f / std::sqrt(451.0f));

  o = {};
  o.kernel = {3, 3};
  o.input_grad = false;
  asrkit::Conv2d<float> first(2, 3, o, rng);
  const auto x = random<float>({1, 2, 5, 5}, 5);
  const auto y = first.forward_train(x);
  const auto dx = first.backward(y);
  CHECK(dx.numel() == 0);
  CHECK(first.weight().grad.flat().squaredNorm() > 0);
}

TEST_CASE("Conv errors name the layer, the argument, expected and actual", "[nn][conv]") {
  asrkit::Conv2dOptions o;
  o.kernel = {3, 3};
  o.groups = 2;
  REQUIRE_THROWS_ID(asrkit::Conv2d<float>(3, 4, o), asrkit::ValueError,
                    "[asrkit.conv.7] Conv2d: in_channels (3) and out_channels (4) must be >= 1 and "
                    "divisible by groups (2)");
  o.groups = 1;
  o.kernel = {0, 3};
  REQUIRE_THROWS_ID(asrkit::Conv2d<float>(3, 4, o), asrkit::ValueError, "[asrkit.conv.1] Conv2d:");
  o.kernel = {3, 3};
  asrkit::Conv2d<float> conv(3, 4, o);
  Tensor<float> x({1, 2, 5, 5});
  REQUIRE_THROWS_ID(conv.forward(x), asrkit::ShapeError,
                    "[asrkit.conv.2] Conv2d(3 -> 4, kernel 3x3, stride 1x1, padding 0x0, dilation "
                    "1x1, groups 1): argument x: expected shape [B, 3, H, W], got [1, 2, 5, 5]");
  Tensor<float> tiny({1, 3, 2, 5});
  REQUIRE_THROWS_ID(conv.forward(tiny), asrkit::ShapeError, "[asrkit.conv.4] Conv2d(3 -> 4");
  Tensor<float> dy({1, 4, 3, 3});
  REQUIRE_THROWS_ID(conv.backward(dy), asrkit::ValueError,
                    "[asrkit.conv.8] Conv2d(3 -> 4, kernel 3x3, stride 1x1, padding 0x0, dilation "
                    "1x1, groups 1)::backward: no cached input");
  Tensor<float> x3({1, 3, 5, 5});
  conv.forward_train(x3);
  Tensor<float> dy_bad({1, 4, 3, 2});
  REQUIRE_THROWS_ID(conv.backward(dy_bad), asrkit::ShapeError,
                    "argument dy: expected shape [1, 4, 3, 3] (the forward output), got [1, 4, 3, 2]");
  asrkit::Conv1dOptions o1;
  o1.kernel = 3;
  asrkit::Conv1d<float> c1(2, 2, o1);
  REQUIRE_THROWS_ID(c1.forward(x3), asrkit::ShapeError,
                    "[asrkit.conv.2] Conv1d(2 -> 2, kernel 3, stride 1, padding 0, dilation 1, "
                    "groups 1): argument x: expected shape [B, 2, L], got [1, 3, 5, 5]");
}
