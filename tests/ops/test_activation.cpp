// ops/activation.hpp: SELU constants and test vectors (SPECS 1.1), the fixed point, every
// derivative against central differences (double), clipped ReLU kinks, GLU, fused bias.
#include <asrkit/core/rng.hpp>
#include <asrkit/ops/activation.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::ops::ActivationKind;

namespace {

template <class T>
Tensor<T> random(const Shape& s, std::uint64_t seed, T scale = T(2)) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), scale);
  return t;
}

const ActivationKind kAll[] = {ActivationKind::identity, ActivationKind::relu,
                               ActivationKind::clipped_relu, ActivationKind::selu,
                               ActivationKind::swish, ActivationKind::tanh,
                               ActivationKind::sigmoid};

}  // namespace

TEST_CASE("SELU constants are the canonical literals", "[ops][activation][selu]") {
  STATIC_REQUIRE(asrkit::ops::selu_alpha == 1.6732632423543772);
  STATIC_REQUIRE(asrkit::ops::selu_lambda == 1.0507009873554805);
  STATIC_REQUIRE(asrkit::ops::selu_alpha_v<float> == 1.6732632f);
  // The closed forms (SPECS 1.1) agree to within a few ulp.
  const double e = std::exp(1.0), pi = 3.14159265358979323846, c = std::erfc(1 / std::sqrt(2.0));
  const double a01 = -std::sqrt(2 / pi) / (c * std::exp(0.5) - 1);
  const double l01 = (1 - std::sqrt(e) * c) *
                     std::sqrt(2 * pi / (2 + pi - 2 * std::sqrt(e) * (2 + pi) * c + e * pi * c * c +
                                         2 * e * e * std::erfc(std::sqrt(2.0))));
  CHECK(a01 == Approx(asrkit::ops::selu_alpha).epsilon(1e-14));
  CHECK(l01 == Approx(asrkit::ops::selu_lambda).epsilon(1e-14));
}

TEST_CASE("SELU test vectors (10 decimals)", "[ops][activation][selu]") {
  const double xs[] = {-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0};
  const double want[] = {-1.6705687288, -1.1113307378, -0.6917581878, 0.0,
                         0.5253504937,  1.0507009874,  3.1521029621};
  Tensor<double> x({7}), y({7});
  Tensor<float> xf({7}), yf({7});
  for (int i = 0; i < 7; ++i) {
    x(i) = xs[i];
    xf(i) = static_cast<float>(xs[i]);
  }
  asrkit::ops::selu(x, y.view());
  asrkit::ops::selu(xf, yf.view());
  for (int i = 0; i < 7; ++i) {
    CHECK(std::fabs(y(i) - want[i]) < 5e-11);
    CHECK(std::fabs(yf(i) - want[i]) < 1e-6);
  }
  // expm1: precision holds next to 0 (exp(x) - 1 would lose every digit here).
  Tensor<double> tiny({1}, -1e-12), out({1});
  asrkit::ops::selu(tiny, out.view());
  CHECK(out(0) == Approx(-1e-12 * asrkit::ops::selu_lambda * asrkit::ops::selu_alpha).epsilon(1e-12));
}

// SELU's negative side, λα·expm1(x), in SIMD (exp, then a Taylor polynomial above −1/2): against
// long double std::expm1 over 12 decades and the range's ends, an odd count so the scalar tail
// runs too.
template <class T>
double selu_negative_worst_error(double tolerance) {
  const index_t n = 200001;
  Tensor<T> x({n}), y({n});
  for (index_t i = 0; i < n; ++i)
    x(i) = static_cast<T>(-std::pow(10.0, -12.0 + 14.0 * static_cast<double>(i) / static_cast<double>(n - 1)));
  asrkit::ops::selu(x, y.view());
  const long double la = static_cast<long double>(asrkit::ops::selu_lambda_v<T>) *
                         static_cast<long double>(asrkit::ops::selu_alpha_v<T>);
  double worst = 0;
  for (index_t i = 0; i < n; ++i) {
    const long double want = la * std::expm1(static_cast<long double>(x(i)));
    worst = std::max(worst, static_cast<double>(std::fabs((static_cast<long double>(y(i)) - want) / want)));
  }
  CHECK(worst < tolerance);
  return worst;
}

TEST_CASE("SELU's negative side is within a few ulps of lambda alpha expm1", "[ops][activation][selu]") {
  // measured: 1.8 / 1.4 epsilon (float / double); a degree-4 polynomial fails both
  CHECK(selu_negative_worst_error<float>(4 * 1.19e-7) > 0);
  CHECK(selu_negative_worst_error<double>(4 * 2.22e-16) > 0);
  Tensor<float> x({35}, NAN), y({35});  // 35: the ends in a SIMD vector and in the scalar tail
  for (index_t i : {index_t(0), index_t(32)}) {
    x(i) = -INFINITY, x(i + 1) = -0.0f, x(i + 2) = INFINITY;
  }
  asrkit::ops::selu(x, y.view());
  for (index_t i : {index_t(0), index_t(32)}) {
    CHECK(y(i) == -asrkit::ops::selu_lambda_v<float> * asrkit::ops::selu_alpha_v<float>);
    CHECK(y(i + 1) == 0.0f);
    CHECK(y(i + 2) == INFINITY);
  }
  for (index_t i = 3; i < 32; ++i) CHECK(std::isnan(y(i)));
}

TEST_CASE("activation_backward recomputes y from x when only x is given", "[ops][activation]") {
  auto x = random<double>({7, 301}, 11, 3.0);  // chunks' vectors and scalar tails
  const auto dy = random<double>(x.shape(), 12);
  // the kinks and the far ends, inside vectors and in a tail
  const double special[] = {0.0, -0.0, INFINITY, -INFINITY, -100.0, 2.0, 1e-300, -1e-300};
  for (index_t i = 0; i < 8; ++i) x.data()[40 + i] = x.data()[x.numel() - 1 - i] = special[i];
  for (ActivationKind kind : kAll) {
    INFO(asrkit::ops::to_string(kind));
    Tensor<double> y(x.shape()), from_y(x.shape()), from_x(x.shape());
    asrkit::ops::activation(kind, x, y.view(), 2.0);
    asrkit::ops::activation_backward(kind, x, y, dy, from_y.view(), 2.0);
    asrkit::ops::activation_backward(kind, x, {}, dy, from_x.view(), 2.0);
    // SELU from x computes λα expm1(x) + λα in one pass, where the compiler may fuse the
    // product into the sum: within about an ulp of λα times |dy| of y + λα. The rest: the same.
    const double la = kind == ActivationKind::selu
                          ? asrkit::ops::selu_lambda_v<double> * asrkit::ops::selu_alpha_v<double>
                          : 0.0;
    for (index_t i = 0; i < x.numel(); ++i) {
      const double a = from_x.data()[i], b = from_y.data()[i];  // swish'(-inf) is NaN either way
      REQUIRE((a == b || (std::isnan(a) && std::isnan(b)) ||
               std::fabs(a - b) <= 2 * std::numeric_limits<double>::epsilon() * la * std::fabs(dy.data()[i])));
    }
  }
}

// activation_saving from asrkit::ops::detail::kStreamBytes writes the saved copy with streaming
// stores; below, with the cache.
TEST_CASE("activation_saving copies y (x for swish), streamed or not", "[ops][activation]") {
  for (index_t rows : {3, 1100}) {  // 12 KiB and 4.4 MiB of floats
    const auto x = random<float>({rows, 1024}, 13, 3.0f);
    for (ActivationKind kind : {ActivationKind::clipped_relu, ActivationKind::swish}) {
      INFO(rows << " rows, " << asrkit::ops::to_string(kind));
      Tensor<float> y(x.shape()), saved(x.shape()), want(x.shape());
      asrkit::ops::activation_saving(kind, x, y.view(), saved.view(), 4.0f);
      asrkit::ops::activation(kind, x, want.view(), 4.0f);
      const Tensor<float>& kept = asrkit::ops::backward_needs_input(kind) ? x : want;
      index_t wrong = 0;
      for (index_t i = 0; i < x.numel(); ++i)
        wrong += (y.data()[i] != want.data()[i]) + (saved.data()[i] != kept.data()[i]);
      CHECK(wrong == 0);
    }
  }
}

// ReLU's and clipped ReLU's mask gives activation_backward's gradient from y, on random values
// (several chunks, two threads' worth) and on the edges: 0, -0, the clip, +-inf, NaN.
TEST_CASE("activation_masking and masked_backward give the derivative from y", "[ops][activation]") {
  auto x = random<float>({70001}, 17, 3.0f);
  const float edges[] = {0.0f, -0.0f, 2.0f, std::numeric_limits<float>::infinity(),
                         -std::numeric_limits<float>::infinity(),
                         std::numeric_limits<float>::quiet_NaN(), 1.9999999f, 2.0000002f};
  for (index_t i = 0; i < 8; ++i) x(i * 9001) = edges[i];
  const auto dy = random<float>(x.shape(), 18);
  for (ActivationKind kind : {ActivationKind::relu, ActivationKind::clipped_relu}) {
    INFO(asrkit::ops::to_string(kind));
    Tensor<float> y(x.shape()), want_y(x.shape()), dx(x.shape()), want(x.shape());
    Tensor<std::uint8_t> mask(x.shape());
    asrkit::ops::activation_masking(kind, x, y.view(), mask.view(), 2.0f);
    asrkit::ops::activation(kind, x, want_y.view(), 2.0f);
    asrkit::ops::masked_backward(mask, dy, dx.view());
    asrkit::ops::activation_backward(kind, {}, want_y, dy, want.view(), 2.0f);
    index_t wrong = 0, passed = 0;
    for (index_t i = 0; i < x.numel(); ++i) {
      const bool same_y = y(i) == want_y(i) || (std::isnan(y(i)) && std::isnan(want_y(i)));
      wrong += !same_y + (dx(i) != want(i)) + (mask(i) > 1);
      passed += mask(i);
    }
    CHECK(wrong == 0);
    CHECK(passed > x.numel() / 8);  // the mask is not all zeros
  }
  Tensor<float> y(x.shape());
  Tensor<std::uint8_t> mask(x.shape()), short_mask({70000});
  REQUIRE_THROWS_ID(asrkit::ops::activation_masking(ActivationKind::selu, x, y.view(), mask.view()),
                    asrkit::ValueError,
                    "[asrkit.activation.7] activation_masking: kind must be relu or clipped_relu, "
                    "got selu");
  REQUIRE_THROWS_AS(asrkit::ops::activation_masking(ActivationKind::relu, x, y.view(),
                                                    short_mask.view()),
                    asrkit::ShapeError);
  REQUIRE_THROWS_AS(asrkit::ops::masked_backward(short_mask, dy, y.view()), asrkit::ShapeError);
}

// Swish's derivative in one SIMD pass, sigmoid from the same expm1: against long double over
// [-100, 100], to a few epsilons of s (1 + |x|); near -100 the float derivative (1e-42,
// subnormal) is 0 or saturates at 6e-37 (exp clamped at e^88), within an absolute 1e3 FLT_MIN.
template <class T>
void check_swish_derivative() {
  const index_t n = 20001;
  Tensor<T> x({n}), dy({n}, T(1)), dx({n});
  for (index_t i = 0; i < n; ++i) x(i) = static_cast<T>(-100.0 + 200.0 * static_cast<double>(i) / (n - 1));
  asrkit::ops::swish_backward(x, dy, dx.view());
  index_t wrong = 0;
  for (index_t i = 0; i < n; ++i) {
    const long double xi = x(i), s = 1.0L / (1.0L + std::exp(-xi)), term = xi * s * (1.0L - s);
    const long double want = s + term;
    const long double scale = s * (1 + std::fabs(xi));  // 1 - s is rounded from s: error x·eps
    wrong += std::fabs(static_cast<long double>(dx(i)) - want) >
             8 * static_cast<long double>(std::numeric_limits<T>::epsilon()) * scale +
                 1e3L * static_cast<long double>(std::numeric_limits<T>::min());
  }
  CHECK(wrong == 0);
}

TEST_CASE("Swish's derivative holds over [-100, 100]", "[ops][activation]") {
  check_swish_derivative<float>();
  check_swish_derivative<double>();
}

TEST_CASE("SELU maps N(0, 1) to mean 0, variance 1", "[ops][activation][selu]") {
  // Numerical integral over z ~ N(0, 1) (SPECS 1.1): Simpson on [-12, 12].
  const int n = 200000;
  const double lo = -12, hi = 12, h = (hi - lo) / n;
  Tensor<double> z({n + 1}), s({n + 1});
  for (int i = 0; i <= n; ++i) z(i) = lo + i * h;
  asrkit::ops::selu(z, s.view());
  double m = 0, m2 = 0;
  for (int i = 0; i <= n; ++i) {
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    const double pdf = std::exp(-0.5 * z(i) * z(i)) / std::sqrt(2 * 3.14159265358979323846);
    m += w * pdf * s(i);
    m2 += w * pdf * s(i) * s(i);
  }
  m *= h / 3;
  m2 *= h / 3;
  CHECK(std::fabs(m) < 1e-9);
  CHECK(std::fabs(m2 - m * m - 1) < 1e-9);
}

TEST_CASE("every activation derivative matches central differences", "[ops][activation]") {
  auto x = random<double>({3, 4, 5}, 11);
  x(0, 0, 0) = 25.0;  // beyond the DS2 clip
  for (auto kind : kAll) {
    INFO(asrkit::ops::to_string(kind));
    const auto w = random<double>(x.shape(), 12, 1.0);
    Tensor<double> y(x.shape());
    auto loss = [&] {
      asrkit::ops::activation(kind, x, y.view());
      return asrkit_test::dot(y, w);
    };
    asrkit::ops::activation(kind, x, y.view());
    Tensor<double> dx(x.shape());
    asrkit::ops::activation_backward(kind, x, y, w, dx.view());
    CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-7);
  }
}

TEST_CASE("clipped ReLU: DS2's g with a parameter clip, zero slope at the kinks", "[ops][activation]") {
  Tensor<float> x({6}), y({6}), dy({6}, 1.0f), dx({6});
  const float xs[] = {-1.0f, 0.0f, 5.0f, 20.0f, 21.0f, 23.9f};
  for (int i = 0; i < 6; ++i) x(i) = xs[i];
  asrkit::ops::clipped_relu(x, y.view());
  CHECK(y(0) == 0.0f);
  CHECK(y(2) == 5.0f);
  CHECK(y(4) == 20.0f);
  asrkit::ops::clipped_relu_backward(y, dy, dx.view());
  const float want[] = {0, 0, 1, 0, 0, 0};  // torch.nn.Hardtanh(0, 20): 0 at both kinks
  for (int i = 0; i < 6; ++i) CHECK(dx(i) == want[i]);
  asrkit::ops::clipped_relu(x, y.view(), 24.0f);  // Paddle's bounded ReLU variant
  CHECK(y(4) == 21.0f);
  CHECK(y(5) == 23.9f);
  REQUIRE_THROWS_ID(asrkit::ops::clipped_relu(x, y.view(), 0.0f), asrkit::ValueError,
                    "[asrkit.activation.2] clipped_relu: clip must be finite and > 0, got 0");
}

TEST_CASE("activations work in place and on large inputs", "[ops][activation]") {
  for (int threads : {1, 2}) {
    asrkit::set_num_threads(threads);
    auto x = random<float>({70000}, 13);
    Tensor<float> y(x.shape());
    asrkit::ops::tanh(x, y.view());
    asrkit::ops::tanh(x, x.view());  // in place
    for (index_t i = 0; i < x.numel(); ++i) REQUIRE(x(i) == y(i));
  }
  asrkit::set_num_threads(1);
}

TEST_CASE("GLU forward and backward", "[ops][activation][glu]") {
  auto x = random<double>({2, 3, 8}, 14);
  Tensor<double> y({2, 3, 4});
  asrkit::ops::glu(x, y.view());
  CHECK(y(1, 2, 3) == Approx(x(1, 2, 3) / (1 + std::exp(-x(1, 2, 7)))).epsilon(1e-14));
  const auto w = random<double>(y.shape(), 15, 1.0);
  auto loss = [&] {
    asrkit::ops::glu(x, y.view());
    return asrkit_test::dot(y, w);
  };
  Tensor<double> dx(x.shape());
  asrkit::ops::glu_backward(x, w, dx.view());
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);
  Tensor<double> odd({2, 3});
  REQUIRE_THROWS_ID(asrkit::ops::glu(odd, y.view()), asrkit::ShapeError,
                    "[asrkit.activation.3] glu: input x must have an even last dimension, got "
                    "shape [2, 3]");
  Tensor<double> wrong({2, 3, 5});
  REQUIRE_THROWS_ID(asrkit::ops::glu(x, wrong.view()), asrkit::ShapeError, "[asrkit.activation.3]");
  REQUIRE_THROWS_ID(asrkit::ops::glu_backward(x, wrong, dx.view()), asrkit::ShapeError,
                    "[asrkit.activation.3]");
}

TEST_CASE("fused bias + activation equals the two steps", "[ops][activation]") {
  for (auto kind : kAll) {
    INFO(asrkit::ops::to_string(kind));
    // Linear-style: bias along the last axis.
    auto z = random<double>({5, 7}, 16);
    const auto b = random<double>({7}, 17);
    Tensor<double> want(z.shape());
    for (index_t r = 0; r < 5; ++r)
      for (index_t c = 0; c < 7; ++c) want(r, c) = z(r, c) + b(c);
    asrkit::ops::activation(kind, want, want.view());
    asrkit::ops::bias_activation(kind, z.view(), b, asrkit::ops::BiasAxis::last);
    for (index_t i = 0; i < z.numel(); ++i) CHECK(z.data()[i] == Approx(want.data()[i]).epsilon(1e-14));
    // Conv-style: bias along axis 1 of [B, C, H, W].
    auto m = random<double>({2, 3, 4, 5}, 18);
    const auto bc = random<double>({3}, 19);
    Tensor<double> want2(m.shape());
    for (index_t i = 0; i < 2; ++i)
      for (index_t c = 0; c < 3; ++c)
        for (index_t h = 0; h < 4; ++h)
          for (index_t w = 0; w < 5; ++w) want2(i, c, h, w) = m(i, c, h, w) + bc(c);
    asrkit::ops::activation(kind, want2, want2.view());
    asrkit::ops::bias_activation(kind, m.view(), bc, asrkit::ops::BiasAxis::channel);
    for (index_t i = 0; i < m.numel(); ++i) CHECK(m.data()[i] == Approx(want2.data()[i]).epsilon(1e-14));
  }
  // No bias: a default view.
  auto z = random<float>({4, 4}, 20);
  Tensor<float> want(z.shape());
  asrkit::ops::relu(z, want.view());
  asrkit::ops::bias_activation(ActivationKind::relu, z.view(), {}, asrkit::ops::BiasAxis::last);
  for (index_t i = 0; i < z.numel(); ++i) CHECK(z.data()[i] == want.data()[i]);
  Tensor<float> bad({5});
  REQUIRE_THROWS_ID(asrkit::ops::bias_activation(ActivationKind::relu, z.view(), bad,
                                                 asrkit::ops::BiasAxis::last),
                    asrkit::ShapeError, "[asrkit.activation.4] bias_activation: bias must be [4]");
}

TEST_CASE("activation shape errors name the argument", "[ops][activation]") {
  Tensor<float> x({2, 3}), y({3, 2});
  REQUIRE_THROWS_ID(asrkit::ops::selu(x, y.view()), asrkit::ShapeError,
                    "[asrkit.activation.1] selu: output must have the shape of the input [2, 3], "
                    "got [3, 2]");
  REQUIRE_THROWS_ID(asrkit::ops::swish_backward(x, x, y.view()), asrkit::ShapeError,
                    "[asrkit.activation.1] swish: input gradient");
}
