// nn/activation.hpp: every activation layer's backward against finite differences (double),
// the contract (caching, errors), and SELU's self-normalisation through 32 Linear + SELU layers
// with LeCun init (Klambauer et al. 2017, SPECS 1.2-1.3).
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/activation.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/linear.hpp>

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

namespace {
template <class T>
Tensor<T> random(const Shape& s, std::uint64_t seed, T scale = T(1)) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), scale);
  return t;
}

template <class Layer>
void check_layer(Layer layer, const char* name) {
  INFO(name);
  auto x = random<double>({3, 2, 6}, 1, 3.0);
  x(0, 0, 0) = 22;  // past the DS2 clip
  const auto y = layer.forward(x);
  const auto w = random<double>(y.shape(), 2);
  auto loss = [&] { return asrkit_test::dot(layer.forward(x), w); };
  const auto yt = layer.forward_train(x);
  for (index_t i = 0; i < y.numel(); ++i) REQUIRE(yt.data()[i] == y.data()[i]);
  const auto dx = layer.backward(w);
  CHECK(dx.shape() == x.shape());
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);
  int visited = 0;
  layer.for_each_parameter([&](auto&&...) { ++visited; });
  CHECK(visited == 0);
}
}  // namespace

TEST_CASE("activation layers: backward matches central differences", "[nn][activation]") {
  check_layer(asrkit::ReLU<double>(), "ReLU");
  check_layer(asrkit::ClippedReLU<double>(), "ClippedReLU");
  check_layer(asrkit::ClippedReLU<double>(4.0), "ClippedReLU(4)");
  check_layer(asrkit::SELU<double>(), "SELU");
  check_layer(asrkit::Swish<double>(), "Swish");
  check_layer(asrkit::Tanh<double>(), "Tanh");
  check_layer(asrkit::Sigmoid<double>(), "Sigmoid");
  check_layer(asrkit::GLU<double>(), "GLU");
  CHECK(asrkit::GLU<double>().forward(Tensor<double>({2, 6})).shape() == Shape{2, 3});
}

// forward_train copies what backward reads in the pass that writes y: the input may change or go
// away afterwards, and a batch of another shape replaces the cache.
template <class Layer>
void check_cache_is_a_copy(Layer layer, const char* name) {
  INFO(name);
  auto x = random<double>({5, 4, 6}, 3, 2.0);
  const auto dy = random<double>(layer.forward(x).shape(), 4);
  layer.forward_train(random<double>({2, 6}, 5));  // another shape first
  const auto y = layer.forward_train(x);
  const auto want = [&] {
    Layer fresh = layer;
    fresh.forward_train(x);
    return fresh.backward(dy);
  }();
  x.fill(-7.0);  // the caller reuses x
  const auto dx = layer.backward(dy);
  REQUIRE(dx.shape() == want.shape());
  for (index_t i = 0; i < dx.numel(); ++i) REQUIRE(dx.data()[i] == want.data()[i]);
  CHECK(y.shape() == dy.shape());
}

TEST_CASE("activation layers cache a copy of what backward reads", "[nn][activation]") {
  check_cache_is_a_copy(asrkit::ReLU<double>(), "ReLU");  // a mask
  check_cache_is_a_copy(asrkit::ClippedReLU<double>(), "ClippedReLU");
  check_cache_is_a_copy(asrkit::SELU<double>(), "SELU");
  check_cache_is_a_copy(asrkit::Swish<double>(), "Swish");
  check_cache_is_a_copy(asrkit::GLU<double>(), "GLU");
}

// A moved or borrowed input is kept instead of a copy of y; backward recomputes y from it and
// gives the same gradient (the same element-wise code on the same chunks), for SELU within
// `tolerance` times |dy| (its λα expm1(x) + λα may be one FMA; ops/activation.hpp).
template <class Layer, class T = double>
void check_kept_input(Layer layer, const char* name, T tolerance = T(0)) {
  INFO(name);
  const auto x = random<T>({40, 3, 37}, 6, T(3));  // 4440 elements: vectors and scalar tails
  const auto dy = random<T>(x.shape(), 7);
  Layer copied = layer, moved = layer, borrowed = layer;
  const auto y = copied.forward_train(x);
  const auto want = copied.backward(dy);
  const auto ym = moved.forward_train(Tensor<T>(x));
  const auto yb = borrowed.forward_train(asrkit::borrow(x));
  const auto dxm = moved.backward(dy), dxb = borrowed.backward(dy);
  for (index_t i = 0; i < x.numel(); ++i) {
    REQUIRE(ym.data()[i] == y.data()[i]);
    REQUIRE(yb.data()[i] == y.data()[i]);
    REQUIRE(std::abs(dxm.data()[i] - want.data()[i]) <= tolerance * std::abs(dy.data()[i]));
    REQUIRE(std::abs(dxb.data()[i] - want.data()[i]) <= tolerance * std::abs(dy.data()[i]));
  }
  REQUIRE_THROWS_AS(moved.backward(Tensor<T>({40, 3, 36})), asrkit::ShapeError);
}

TEST_CASE("activation layers keep a moved or borrowed input", "[nn][activation]") {
  check_kept_input(asrkit::ReLU<double>(), "ReLU");
  check_kept_input(asrkit::ClippedReLU<double>(2.0), "ClippedReLU(2)");
  // SELU's backward recomputes λα expm1(x): within an ulp of λα (about 1.76) times |dy|
  const double la = asrkit::ops::selu_lambda_v<double> * asrkit::ops::selu_alpha_v<double>;
  check_kept_input(asrkit::SELU<double>(), "SELU", 2 * std::numeric_limits<double>::epsilon() * la);
  check_kept_input(asrkit::Swish<double>(), "Swish");
  check_kept_input(asrkit::Tanh<double>(), "Tanh");
  check_kept_input(asrkit::Sigmoid<double>(), "Sigmoid");
  check_kept_input<asrkit::SELU<float>, float>(asrkit::SELU<float>(), "SELU<float>",
                                               2 * std::numeric_limits<float>::epsilon() * float(la));
  check_kept_input<asrkit::ClippedReLU<float>, float>(asrkit::ClippedReLU<float>(), "ClippedReLU<float>");
}

TEST_CASE("activation layer errors", "[nn][activation]") {
  asrkit::SELU<float> selu;
  Tensor<float> dy({2, 3});
  REQUIRE_THROWS_ID(selu.backward(dy), asrkit::ValueError,
                    "[asrkit.activation.5] SELU::backward: no cached tensor; call forward_train first");
  selu.forward_train(Tensor<float>({3, 2}));
  REQUIRE_THROWS_ID(selu.backward(dy), asrkit::ShapeError,
                    "[asrkit.activation.6] SELU::backward: argument dy: expected shape [3, 2] (the "
                    "forward output), got [2, 3]");
  REQUIRE_THROWS_ID(asrkit::ClippedReLU<float>(-1.0f), asrkit::ValueError,
                    "[asrkit.activation.2] ClippedReLU: clip must be finite and > 0, got -1");
  asrkit::GLU<float> glu;
  REQUIRE_THROWS_ID(glu.forward(Tensor<float>({2, 3})), asrkit::ShapeError,
                    "[asrkit.activation.3] GLU: argument x: expected shape [..., 2n] (even last "
                    "dimension), got [2, 3]");
  glu.forward_train(Tensor<float>({2, 4}));
  REQUIRE_THROWS_ID(glu.backward(Tensor<float>({2, 4})), asrkit::ShapeError, "[asrkit.activation.6] GLU");
}

TEST_CASE("SELU keeps mean 0 / variance 1 through 32 Linear + SELU layers", "[nn][activation][selu]") {
  // Self-normalisation (Klambauer et al. 2017, Theorem 1): LeCun-normal weights, zero bias,
  // standardised input. The moments stay near (0, 1) at every depth; with ReLU they drift.
  const index_t n = 256, f = 128, depth = 32;
  asrkit::Rng rng(2017);
  Tensor<float> h = random<float>({n, f}, 7);
  asrkit::SELU<float> selu;
  std::vector<std::pair<double, double>> moments;
  for (index_t l = 0; l < depth; ++l) {
    asrkit::Linear<float> fc(f, f, rng);
    asrkit::init::lecun_normal(fc.weight(), rng);
    asrkit::init::zeros(fc.bias());
    h = selu.forward(fc.forward(h));
    const auto a = h.flat().cast<double>().array();
    const double mean = a.mean();
    moments.emplace_back(mean, (a - mean).square().mean());
  }
  for (index_t l = 0; l < depth; ++l) {
    INFO("layer " << l << ": mean " << moments[l].first << " var " << moments[l].second);
    CHECK(std::fabs(moments[l].first) < 0.15);
    CHECK(moments[l].second > 0.75);
    CHECK(moments[l].second < 1.3);
  }
}
