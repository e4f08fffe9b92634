// RandomWalkSmoothing (SPECS §11.2-11.3): rows of A sum to 1 on the band, equal affinities give a
// moving average, padded frames never influence valid ones, k steps = k single steps, the
// affinity loss against its definition, and every gradient (logits, φ, weight_raw; walk and
// affinity loss) against finite differences in double with variable lengths.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/random_walk.hpp>

#include <cmath>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

namespace {

Tensor<double> randn(const Shape& s, std::uint64_t seed, double stddev = 1.0) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0, stddev);
  return t;
}

Tensor<std::int32_t> lengths_of(const std::vector<std::int32_t>& v) {
  Tensor<std::int32_t> l({static_cast<index_t>(v.size())});
  for (std::size_t i = 0; i < v.size(); ++i) l.data()[i] = v[i];
  return l;
}

asrkit::RandomWalkOptions options(index_t radius, index_t steps, bool self) {
  asrkit::RandomWalkOptions o;
  o.radius = radius;
  o.steps = steps;
  o.include_self = self;
  return o;
}

double max_abs_diff(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (index_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(a.data()[i] - b.data()[i]));
  return worst;
}

}  // namespace

TEST_CASE("RandomWalkSmoothing: rows of A sum to 1 and live on the band", "[nn][randomwalk]") {
  for (bool self : {false, true}) {
    INFO("include_self " << self);
    asrkit::RandomWalkSmoothing<double> rw(4, options(2, 1, self));
    const auto phi = randn({7, 4, 4}, 1);
    const auto len = lengths_of({7, 3, 1, 0});
    const auto a = rw.transition(phi.view(), len.view());
    REQUIRE(a.shape() == Shape{7, 4, 5});
    for (index_t b = 0; b < 4; ++b)
      for (index_t t = 0; t < 7; ++t) {
        double sum = 0;
        for (index_t o = 0; o < 5; ++o) {
          const index_t j = t + o - 2;
          const bool neighbour = t < len(b) && j >= 0 && j < len(b) && (j != t || self);
          if (!neighbour && !(len(b) == 1 && j == t && t == 0)) CHECK(a(t, b, o) == 0.0);
          if (neighbour) CHECK(a(t, b, o) > 0.0);
          sum += a(t, b, o);
        }
        CHECK(sum == Approx(t < len(b) ? 1.0 : 0.0).margin(1e-15));
      }
    // An isolated frame (length 1, no self loop) keeps its logits: A_tt = 1.
    CHECK(a(0, 2, 2) == 1.0);
  }
}

TEST_CASE("RandomWalkSmoothing: equal affinities give a moving average of the logits", "[nn][randomwalk]") {
  // φ constant over time: every W_tj = exp(0) = 1 inside the band, so ŷ_t is the plain mean of
  // the logits of t's neighbours (clipped at the item's ends).
  const index_t T = 9, V = 3, R = 2;
  for (bool self : {false, true}) {
    asrkit::RandomWalkSmoothing<double> rw(2, options(R, 1, self));
    Tensor<double> phi({T, 2, 2}, 0.7);
    const auto logits = randn({T, 2, V}, 2);
    const auto len = lengths_of({9, 6});
    const auto y = rw.forward(logits.view(), phi.view(), len.view());
    for (index_t b = 0; b < 2; ++b)
      for (index_t t = 0; t < len(b); ++t)
        for (index_t v = 0; v < V; ++v) {
          double sum = 0;
          int count = 0;
          for (index_t j = std::max<index_t>(0, t - R); j <= std::min<index_t>(len(b) - 1, t + R); ++j)
            if (j != t || self) {
              sum += logits(j, b, v);
              ++count;
            }
          CHECK(y(t, b, v) == Approx(sum / count).epsilon(1e-13));
        }
  }
}

TEST_CASE("RandomWalkSmoothing: padded frames never influence valid ones", "[nn][randomwalk]") {
  asrkit::RandomWalkSmoothing<double> rw(3, options(2, 2, false));
  auto logits = randn({6, 3, 4}, 3);
  auto phi = randn({6, 3, 3}, 4);
  const auto len = lengths_of({6, 4, 2});
  const auto dy = randn({6, 3, 4}, 5);
  const auto y = rw.forward_train(logits.view(), phi.view(), len.view());
  const auto g = rw.backward(dy.view());
  const auto dw = rw.weight_raw().grad;
  auto dyp = dy;
  for (index_t b = 0; b < 3; ++b)
    for (index_t t = len(b); t < 6; ++t) {
      for (index_t v = 0; v < 4; ++v) {
        logits(t, b, v) = 1e6;
        dyp(t, b, v) = -1e6;
      }
      for (index_t p = 0; p < 3; ++p) phi(t, b, p) = phi(0, b, p);  // would be the closest frame
    }
  asrkit::zero_grad(rw);
  const auto yp = rw.forward_train(logits.view(), phi.view(), len.view());
  const auto gp = rw.backward(dyp.view());
  CHECK(max_abs_diff(yp, y) == 0.0);
  CHECK(max_abs_diff(gp.logits, g.logits) == 0.0);
  CHECK(max_abs_diff(gp.phi, g.phi) == 0.0);
  CHECK(max_abs_diff(rw.weight_raw().grad, dw) == 0.0);
  for (index_t b = 0; b < 3; ++b)
    for (index_t t = len(b); t < 6; ++t) {
      for (index_t v = 0; v < 4; ++v) CHECK((y(t, b, v) == 0.0 && g.logits(t, b, v) == 0.0));
      for (index_t p = 0; p < 3; ++p) CHECK(g.phi(t, b, p) == 0.0);
    }
  // An item alone (unpadded) gives the same frames as in the padded batch.
  Tensor<double> l1({4, 1, 4}), p1({4, 1, 3});
  for (index_t t = 0; t < 4; ++t) {
    for (index_t v = 0; v < 4; ++v) l1(t, 0, v) = logits(t, 1, v);
    for (index_t p = 0; p < 3; ++p) p1(t, 0, p) = phi(t, 1, p);
  }
  const auto y1 = rw.forward(l1.view(), p1.view(), lengths_of({4}).view());
  for (index_t t = 0; t < 4; ++t)
    for (index_t v = 0; v < 4; ++v) CHECK(y1(t, 0, v) == Approx(y(t, 1, v)).epsilon(1e-14));
}

TEST_CASE("RandomWalkSmoothing: k steps are k single steps with the same A", "[nn][randomwalk]") {
  asrkit::RandomWalkSmoothing<double> three(3, options(1, 3, false)), one(3, options(1, 1, false));
  const auto phi = randn({8, 2, 3}, 6);
  auto y = randn({8, 2, 5}, 7);
  const auto len = lengths_of({8, 5});
  const auto y3 = three.forward(y.view(), phi.view(), len.view());
  for (int s = 0; s < 3; ++s) y = one.forward(y.view(), phi.view(), len.view());
  CHECK(max_abs_diff(y3, y) < 1e-14);
  // A is not the identity and the walk smooths: the output differs from the input.
  CHECK(max_abs_diff(y3, randn({8, 2, 5}, 7)) > 0.1);
}

TEST_CASE("RandomWalkSmoothing backward matches finite differences", "[nn][randomwalk][gradcheck]") {
  struct Case {
    index_t radius, steps;
    bool self;
  };
  for (const Case c : {Case{1, 1, false}, Case{2, 1, true}, Case{2, 3, false}, Case{3, 2, true}}) {
    INFO("radius " << c.radius << " steps " << c.steps << " self " << c.self);
    asrkit::RandomWalkSmoothing<double> rw(3, options(c.radius, c.steps, c.self));
    asrkit::Rng rng(8);
    rng.fill_normal(rw.weight_raw().value.view(), -0.5, 0.5);
    auto logits = randn({6, 4, 5}, 9);
    auto phi = randn({6, 4, 3}, 10);
    const auto len = lengths_of({6, 4, 1, 0});
    const auto w = randn({6, 4, 5}, 11);
    asrkit::zero_grad(rw);
    rw.forward_train(logits.view(), phi.view(), len.view());
    const auto g = rw.backward(w.view());
    auto loss = [&] { return asrkit_test::dot(rw.forward(logits.view(), phi.view(), len.view()), w); };
    CHECK(asrkit_test::max_gradient_error(loss, logits, g.logits) < 1e-7);
    CHECK(asrkit_test::max_gradient_error(loss, phi, g.phi) < 1e-7);
    CHECK(asrkit_test::max_gradient_error(loss, rw.weight_raw().value, rw.weight_raw().grad) < 1e-7);
  }
}

TEST_CASE("RandomWalkSmoothing affinity loss: value and gradients", "[nn][randomwalk][gradcheck]") {
  const index_t T = 7, B = 3, P = 2, R = 2;
  asrkit::RandomWalkSmoothing<double> rw(P, options(R, 1, false));
  asrkit::Rng rng(12);
  rng.fill_normal(rw.weight_raw().value.view(), 0.0, 0.5);
  auto phi = randn({T, B, P}, 13);
  const auto len = lengths_of({7, 5, 2});
  Tensor<std::int32_t> align({T, B});
  for (index_t t = 0; t < T; ++t)
    for (index_t b = 0; b < B; ++b) align(t, b) = static_cast<std::int32_t>((t + b) / 3);
  // The definition: Σ over ordered neighbour pairs of (exp(−wᵀ|φ_t − φ_j|) − [a_t == a_j])².
  const auto w = rw.weight();
  double expect = 0;
  for (index_t b = 0; b < B; ++b)
    for (index_t t = 0; t < len(b); ++t)
      for (index_t j = std::max<index_t>(0, t - R); j <= std::min<index_t>(len(b) - 1, t + R); ++j) {
        if (j == t) continue;
        double e = 0;
        for (index_t p = 0; p < P; ++p) e += w(p) * std::fabs(phi(t, b, p) - phi(j, b, p));
        const double d = std::exp(-e) - (align(t, b) == align(j, b) ? 1.0 : 0.0);
        expect += 0.5 * d * d;
      }
  asrkit::zero_grad(rw);
  const auto res = rw.affinity_loss(phi.view(), align.view(), len.view(), 0.5);
  CHECK(res.loss == Approx(expect).epsilon(1e-13));
  auto loss = [&] {
    auto copy = rw;
    return copy.affinity_loss(phi.view(), align.view(), len.view(), 0.5).loss;
  };
  const auto dw = rw.weight_raw().grad;
  CHECK(asrkit_test::max_gradient_error(loss, phi, res.grad_phi) < 1e-7);
  CHECK(asrkit_test::max_gradient_error(loss, rw.weight_raw().value, dw) < 1e-7);
  for (index_t t = 2; t < T; ++t)
    for (index_t p = 0; p < P; ++p) CHECK(res.grad_phi(t, 2, p) == 0.0);  // padding of item 2
}

TEST_CASE("RandomWalkSmoothing: float agrees with double; thread count does not matter", "[nn][randomwalk]") {
  // Big enough for the threaded path (detail::kParallelWork).
  asrkit::RandomWalkSmoothing<double> rd(8, options(3, 2, false));
  asrkit::RandomWalkSmoothing<float> rf(8, options(3, 2, false));
  const auto logits = randn({200, 4, 40}, 14);
  const auto phi = randn({200, 4, 8}, 15);
  const auto dy = randn({200, 4, 40}, 16);
  const auto len = lengths_of({200, 110, 170, 3});
  auto to_float = [](const Tensor<double>& t) {
    Tensor<float> f(t.shape());
    for (index_t i = 0; i < t.numel(); ++i) f.data()[i] = static_cast<float>(t.data()[i]);
    return f;
  };
  const auto yd = rd.forward_train(logits.view(), phi.view(), len.view());
  const auto gd = rd.backward(dy.view());
  const int saved = asrkit::num_threads();
  std::vector<std::vector<Tensor<float>>> runs;
  for (int threads : {1, 2, 3}) {
    asrkit::set_num_threads(threads);
    asrkit::zero_grad(rf);
    auto y = rf.forward_train(to_float(logits).view(), to_float(phi).view(), len.view());
    auto g = rf.backward(to_float(dy).view());
    runs.push_back({y, g.logits, g.phi, rf.weight_raw().grad});
  }
  asrkit::set_num_threads(saved);
  for (std::size_t r = 1; r < runs.size(); ++r)
    for (std::size_t k = 0; k < 4; ++k)
      for (index_t i = 0; i < runs[0][k].numel(); ++i) REQUIRE(runs[r][k].data()[i] == runs[0][k].data()[i]);
  const std::vector<const Tensor<double>*> want = {&yd, &gd.logits, &gd.phi, &rd.weight_raw().grad};
  for (std::size_t k = 0; k < 4; ++k)
    for (index_t i = 0; i < want[k]->numel(); ++i)
      CHECK(runs[0][k].data()[i] == Approx(want[k]->data()[i]).margin(1e-4).epsilon(1e-4));
}

TEST_CASE("RandomWalkSmoothing validates its arguments", "[nn][randomwalk][errors]") {
  REQUIRE_THROWS_ID(asrkit::RandomWalkSmoothing<float>(0), asrkit::ValueError, "[asrkit.randomwalk.1]");
  REQUIRE_THROWS_ID(asrkit::RandomWalkSmoothing<float>(3, options(0, 1, false)), asrkit::ValueError,
                    "[asrkit.randomwalk.1]");
  REQUIRE_THROWS_ID(asrkit::RandomWalkSmoothing<float>(3, options(1, 0, false)), asrkit::ValueError,
                    "[asrkit.randomwalk.1]");
  asrkit::RandomWalkOptions neg;
  neg.initial_weight = -1.0;
  REQUIRE_THROWS_ID(asrkit::RandomWalkSmoothing<float>(3, neg), asrkit::ValueError, "[asrkit.randomwalk.1]");
  asrkit::RandomWalkSmoothing<float> rw(3);
  CHECK(rw.weight()(0) == Approx(1.0 / 3.0));  // default w = 1 / P
  Tensor<float> logits({5, 2, 4}), phi({5, 2, 3}), bad_phi({5, 2, 2}), bad_logits({4, 2, 4});
  const auto len = lengths_of({5, 3});
  REQUIRE_THROWS_ID(rw.forward(logits.view(), bad_phi.view(), len.view()), asrkit::ShapeError,
                    "[asrkit.randomwalk.2] RandomWalkSmoothing: argument phi: expected shape [T, B, 3], got [5, 2, 2]");
  REQUIRE_THROWS_ID(rw.forward(bad_logits.view(), phi.view(), len.view()), asrkit::ShapeError, "[asrkit.randomwalk.2]");
  REQUIRE_THROWS_ID(rw.forward(logits.view(), phi.view(), lengths_of({5}).view()), asrkit::ShapeError,
                    "[asrkit.randomwalk.3]");
  REQUIRE_THROWS_ID(rw.forward_train(logits.view(), phi.view(), lengths_of({5, 6}).view()), asrkit::ValueError,
                    "[asrkit.randomwalk.4] RandomWalkSmoothing: lengths[1] = 6 is outside [0, 5]");
  REQUIRE_THROWS_ID(rw.backward(logits.view()), asrkit::ValueError, "[asrkit.randomwalk.5]");
  rw.forward_train(logits.view(), phi.view(), len.view());
  REQUIRE_THROWS_ID(rw.backward(phi.view()), asrkit::ShapeError, "[asrkit.randomwalk.6]");
  Tensor<std::int32_t> align({5, 3});
  REQUIRE_THROWS_ID(rw.affinity_loss(phi.view(), align.view(), len.view()), asrkit::ShapeError,
                    "[asrkit.randomwalk.7]");
}
