// Dropout and AlphaDropout: masks, determinism, scaling, backward, and alpha dropout keeping the
// SELU fixed point (mean 0, variance 1) statistically (SPECS §1.4).
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/dropout.hpp>
#include <asrkit/ops/activation.hpp>

#include <cmath>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;

namespace {
Tensor<double> randn(const asrkit::Shape& s, std::uint64_t seed) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0, 1.0);
  return t;
}

// The layer's backward against central differences of its own training forward, with the mask
// held fixed: a fresh layer of the same seed draws the same mask (it depends on the seed and
// the element count only), so L(x) = Σ w ⊙ forward_train(x) is smooth in x.
template <class Layer>
void check_gradient_with_fixed_mask(double p, std::uint64_t seed) {
  auto x = randn({7, 9}, 1);
  const auto w = randn(x.shape(), 2);
  Layer layer(p, seed);
  layer.forward_train(x.view());
  const auto dx = layer.backward(w.view());
  auto loss = [&] {
    Layer fresh(p, seed);
    return asrkit_test::dot(fresh.forward_train(x.view()), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-8);
  index_t dropped = 0;  // the mask is not all ones: the check sees both kinds of element
  for (index_t i = 0; i < x.numel(); ++i) dropped += layer.mask().data()[i] == 0.0;
  CHECK(dropped > 0);
  CHECK(dropped < x.numel());
}
}  // namespace

TEST_CASE("Dropout zeroes with probability p and scales by 1/(1-p)", "[nn][dropout]") {
  asrkit::Dropout<double> drop(0.25, 42);
  Tensor<double> x({200, 50}, 1.0);
  auto y = drop.forward_train(x.view());
  index_t zeros = 0;
  for (index_t i = 0; i < y.numel(); ++i) {
    const double v = y.data()[i];
    CHECK((v == 0.0 || v == Approx(1.0 / 0.75).epsilon(1e-15)));
    zeros += v == 0.0;
  }
  // 10000 Bernoulli(0.25): standard deviation 43, so 2500 +- 200 is a 4.6-sigma band.
  CHECK(std::abs(zeros - 2500) < 200);
  // Inference is the identity.
  auto yi = drop.forward(x.view());
  CHECK(std::equal(yi.data(), yi.data() + yi.numel(), x.data()));
  check_gradient_with_fixed_mask<asrkit::AlphaDropout<double>>(0.3, 5);
}

TEST_CASE("Dropout masks are deterministic for a seed and backward uses them", "[nn][dropout]") {
  auto x = randn({7, 9}, 1);
  asrkit::Dropout<double> a(0.5, 7), b(0.5, 7), c(0.5, 8);
  auto ya = a.forward_train(x.view()), yb = b.forward_train(x.view()), yc = c.forward_train(x.view());
  CHECK(std::equal(ya.data(), ya.data() + ya.numel(), yb.data()));
  CHECK(!std::equal(ya.data(), ya.data() + ya.numel(), yc.data()));
  auto y2 = a.forward_train(x.view());  // the stream moves on: a new mask
  CHECK(!std::equal(ya.data(), ya.data() + ya.numel(), y2.data()));
  // Backward: dL/dx = mask ⊙ dy (the mask holds 0 or 1/(1-p)), and by finite differences.
  const auto w = randn(x.shape(), 2);
  const auto dx = a.backward(w.view());
  for (index_t i = 0; i < x.numel(); ++i) CHECK(dx.data()[i] == w.data()[i] * a.mask().data()[i]);
  check_gradient_with_fixed_mask<asrkit::Dropout<double>>(0.5, 7);
}

TEST_CASE("AlphaDropout constants match SPECS §1.4", "[nn][dropout][alpha]") {
  asrkit::AlphaDropout<float> a05(0.05), a10(0.10);
  CHECK(a05.alpha_prime() == Approx(-1.7580993408473766).epsilon(1e-15));
  CHECK(a05.a() == Approx(0.9548444760).epsilon(1e-9));
  CHECK(a05.b() == Approx(0.0839355722).epsilon(1e-9));
  CHECK(a10.a() == Approx(0.9212845161).epsilon(1e-9));
  CHECK(a10.b() == Approx(0.1619709701).epsilon(1e-9));
  // The general fixed point reduces to the (0, 1) formula.
  asrkit::AlphaDropoutOptions o;
  o.fixed_mean = 0.0;
  o.fixed_var = 1.0;
  asrkit::AlphaDropout<float> g(0.05, 0, o);
  CHECK(g.a() == a05.a());
}

TEST_CASE("AlphaDropout keeps mean 0 and variance 1 of SELU-normalised inputs", "[nn][dropout][alpha]") {
  // Inputs at the SELU fixed point: selu(z) with z ~ N(0, 1) has mean ~0 and variance ~1.
  const index_t n = 200000;
  Tensor<double> x({n});
  asrkit::Rng rng(3);
  const double la = asrkit::ops::selu_lambda, al = asrkit::ops::selu_alpha;
  double mx = 0, vx = 0;
  for (index_t i = 0; i < n; ++i) {
    const double z = rng.normal();
    x(i) = z > 0 ? la * z : la * al * std::expm1(z);
    mx += x(i) / n;
  }
  for (index_t i = 0; i < n; ++i) vx += (x(i) - mx) * (x(i) - mx) / n;
  REQUIRE(std::fabs(mx) < 0.01);
  REQUIRE(std::fabs(vx - 1) < 0.02);
  for (double p : {0.05, 0.1, 0.2}) {
    INFO("p = " << p);
    asrkit::AlphaDropout<double> drop(p, 11);
    auto y = drop.forward_train(x.view());
    double my = 0, vy = 0;
    for (index_t i = 0; i < n; ++i) my += y(i) / n;
    for (index_t i = 0; i < n; ++i) vy += (y(i) - my) * (y(i) - my) / n;
    // Sampling error: sd(mean) ~ 1/sqrt(n) = 0.0022, sd(var) ~ sqrt(2/n) = 0.003.
    CHECK(std::fabs(my - mx) < 0.015);
    CHECK(std::fabs(vy - vx) < 0.03);
    // Plain dropout would not: its variance is 1/(1-p) times larger.
  }
}

TEST_CASE("AlphaDropout backward and inference", "[nn][dropout][alpha]") {
  auto x = randn({5, 6}, 4);
  asrkit::AlphaDropout<double> drop(0.3, 5);
  auto y = drop.forward_train(x.view());
  const auto w = randn(x.shape(), 6);
  const auto dx = drop.backward(w.view());
  for (index_t i = 0; i < x.numel(); ++i) {
    const bool kept = drop.mask().data()[i] != 0.0;
    if (kept) CHECK(y.data()[i] == Approx(drop.a() * x.data()[i] + drop.b()).epsilon(1e-14));
    else CHECK(y.data()[i] == Approx(drop.a() * drop.alpha_prime() + drop.b()).epsilon(1e-14));
    CHECK(dx.data()[i] == (kept ? w.data()[i] * drop.a() : 0.0));
  }
  auto yi = drop.forward(x.view());
  CHECK(std::equal(yi.data(), yi.data() + yi.numel(), x.data()));
  check_gradient_with_fixed_mask<asrkit::AlphaDropout<double>>(0.3, 5);
}

TEST_CASE("Dropout layers validate their arguments", "[nn][dropout][errors]") {
  REQUIRE_THROWS_ID(asrkit::Dropout<float>(1.0), asrkit::ValueError, "[asrkit.dropout.1] Dropout: p must be in [0, 1), got 1");
  REQUIRE_THROWS_ID(asrkit::AlphaDropout<float>(-0.1), asrkit::ValueError, "[asrkit.dropout.1]");
  asrkit::AlphaDropoutOptions o;
  o.fixed_var = 0;
  REQUIRE_THROWS_ID(asrkit::AlphaDropout<float>(0.1, 0, o), asrkit::ValueError, "[asrkit.dropout.1]");
  asrkit::Dropout<float> d(0.1);
  Tensor<float> x({2, 3}), wrong({3, 2});
  REQUIRE_THROWS_ID(d.backward(x.view()), asrkit::ValueError, "[asrkit.dropout.2]");
  d.forward_train(x.view());
  REQUIRE_THROWS_ID(d.backward(wrong.view()), asrkit::ShapeError, "[asrkit.dropout.3]");
}
