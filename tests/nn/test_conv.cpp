// nn/conv.hpp: Conv1d / Conv2d layers: shapes, gradients against finite differences (double)
// for stride, padding, dilation, groups and depthwise, names, options, padded batches with
// lengths against the items alone, errors.
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

namespace {
// Item b of a [B, C, ..., T] batch, cut to its first `frames` frames: [1, C, ..., frames].
Tensor<double> item(const Tensor<double>& x, index_t b, index_t frames) {
  std::vector<index_t> dims;
  for (int a = 0; a < x.rank(); ++a) dims.push_back(x.dim(a));
  const index_t steps = dims.back(), rows = x.numel() / (dims[0] * steps);
  dims.front() = 1;
  dims.back() = frames;
  Tensor<double> out(Shape(dims.begin(), dims.end()));
  for (index_t r = 0; r < rows; ++r)
    std::copy_n(x.data() + (b * rows + r) * steps, frames, out.data() + r * frames);
  return out;
}

// A padded batch through forward(x, lengths) and forward_train + backward gives, item by item,
// the outputs and input gradients of the item alone, and the sum of the items' parameter
// gradients; padded output frames are zero. The padding holds 1e6 and dy's padding too.
template <class Layer>
void check_padded_batch(Layer& layer, Tensor<double> x, const std::vector<std::int32_t>& lengths) {
  const index_t batch = x.dim(0), steps = x.dim(-1), rows = x.numel() / (batch * steps);
  for (index_t b = 0; b < batch; ++b)
    for (index_t r = 0; r < rows; ++r)
      std::fill(x.data() + (b * rows + r) * steps + lengths[static_cast<std::size_t>(b)],
                x.data() + (b * rows + r + 1) * steps, 1e6);
  Tensor<std::int32_t> lens(Shape{batch});
  std::copy(lengths.begin(), lengths.end(), lens.data());
  const auto y = layer.forward(x, lens);
  auto dy = random<double>(y.shape(), 5);
  Layer alone = layer;
  asrkit::zero_grad(layer);
  asrkit::zero_grad(alone);
  const auto y_train = layer.forward_train(x, lens);
  const auto dx = layer.backward(dy);
  const index_t out_steps = y.dim(-1), out_rows = y.numel() / (batch * out_steps);
  for (index_t b = 0; b < batch; ++b) {
    INFO("item " << b << ", " << lengths[static_cast<std::size_t>(b)] << " frames");
    const index_t n = lengths[static_cast<std::size_t>(b)], no = layer.output_length(lengths[static_cast<std::size_t>(b)]);
    // An item shorter than the dilated kernel has no output alone: all its outputs and input
    // gradients are zero, and it adds nothing to the parameter gradients.
    Tensor<double> yb(Shape{1, 1, 1}, 0.0), dxb(item(x, b, n).shape(), 0.0);
    if (no > 0) {
      yb = alone.forward_train(item(x, b, n));
      REQUIRE(yb.dim(-1) == no);
      dxb = alone.backward(item(dy, b, no));
    }
    for (index_t r = 0; r < out_rows; ++r)
      for (index_t t = 0; t < out_steps; ++t) {
        const double got = y.data()[(b * out_rows + r) * out_steps + t];
        REQUIRE(y_train.data()[(b * out_rows + r) * out_steps + t] == got);
        if (t < no) REQUIRE(got == Approx(yb.data()[r * no + t]).margin(1e-12));
        else REQUIRE(got == 0.0);
      }
    for (index_t r = 0; r < rows; ++r)
      for (index_t t = 0; t < steps; ++t) {
        const double got = dx.data()[(b * rows + r) * steps + t];
        if (t < n) REQUIRE(got == Approx(dxb.data()[r * n + t]).margin(1e-12));
        else REQUIRE(got == 0.0);
      }
  }
  for (index_t i = 0; i < layer.weight().grad.numel(); ++i)
    REQUIRE(layer.weight().grad.data()[i] == Approx(alone.weight().grad.data()[i]).margin(1e-10));
  for (index_t i = 0; i < layer.bias().grad.numel(); ++i)
    REQUIRE(layer.bias().grad.data()[i] == Approx(alone.bias().grad.data()[i]).margin(1e-10));
}
}  // namespace

TEST_CASE("Conv1d and Conv2d with lengths: a padded batch gives each item's own results", "[nn][conv]") {
  asrkit::Rng rng(3);
  struct Case1d {
    const char* name;
    index_t kernel, stride, padding, dilation;
    std::vector<std::int32_t> lengths;
  };
  const Case1d cases[] = {
      {"Conv1d, kernel 5, stride 2, padding 2", 5, 2, 2, 1, {40, 23, 9}},
      {"Conv1d, kernel 3, dilation 2, no padding (an item shorter than the kernel)", 3, 1, 0, 2, {40, 12, 4}},
  };
  for (const Case1d& k : cases) {
    INFO(k.name);
    asrkit::Conv1dOptions o;
    o.kernel = k.kernel;
    o.stride = k.stride;
    o.padding = k.padding;
    o.dilation = k.dilation;
    asrkit::Conv1d<double> conv(3, 4, o, rng);
    check_padded_batch(conv, random<double>({3, 3, 40}, 1), k.lengths);
  }
  {
    INFO("Conv2d over [B, C, F, T], kernel 3x5, stride 1x2, padding 1x2");
    asrkit::Conv2dOptions o;
    o.kernel = {3, 5};
    o.stride = {1, 2};
    o.padding = {1, 2};
    asrkit::Conv2d<double> conv(2, 3, o, rng);
    check_padded_batch(conv, random<double>({2, 2, 6, 31}, 3), {31, 17});
  }
}

TEST_CASE("Conv lengths errors name the layer, the argument and the item", "[nn][conv]") {
  asrkit::Conv1dOptions o;
  o.kernel = 3;
  asrkit::Conv1d<float> conv(2, 2, o);
  Tensor<float> x({2, 2, 10});
  REQUIRE_THROWS_ID(conv.forward(x, Tensor<std::int32_t>({3})), asrkit::ShapeError,
                    "[asrkit.conv.9] Conv1d(2 -> 2, kernel 3, stride 1, padding 0, dilation 1, "
                    "groups 1): argument lengths: expected shape [2] (or an empty view), got [3]");
  Tensor<std::int32_t> bad({2});
  bad(0) = 10;
  bad(1) = 11;
  REQUIRE_THROWS_ID(conv.forward_train(x, bad), asrkit::ValueError,
                    "[asrkit.conv.10] Conv1d(2 -> 2, kernel 3, stride 1, padding 0, dilation 1, "
                    "groups 1): lengths[1] = 11 is outside [0, 10]");
}
