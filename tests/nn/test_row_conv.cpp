// RowConvolution (SPECS §3.9): forward against the defining sum with per-item zero padding,
// padding invariance, backward (input and weight) against finite differences in double with
// variable lengths, streaming == full forward bit for bit, thread-count independence, error ids.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/row_conv.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

namespace {

template <class T = double>
Tensor<T> randn(const Shape& s, std::uint64_t seed) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), T(1));
  return t;
}

Tensor<std::int32_t> lengths_of(const std::vector<std::int32_t>& v) {
  Tensor<std::int32_t> l({static_cast<index_t>(v.size())});
  for (std::size_t i = 0; i < v.size(); ++i) l.data()[i] = v[i];
  return l;
}

// The definition: r[t,b,i] = Σ_{j=0..τ} W[i,0,j] x[t+j,b,i], frames >= len[b] are zero.
Tensor<double> reference(const Tensor<double>& x, const Tensor<double>& w, const Tensor<std::int32_t>& len) {
  const index_t T = x.dim(0), B = x.dim(1), D = x.dim(2), taps = w.dim(2);
  Tensor<double> y(x.shape());
  for (index_t b = 0; b < B; ++b)
    for (index_t t = 0; t < len(b); ++t)
      for (index_t i = 0; i < D; ++i)
        for (index_t j = 0; j < taps; ++j)
          if (t + j < len(b)) y(t, b, i) += w(i, 0, j) * x(t + j, b, i);
  (void)T;
  return y;
}

double max_abs_diff(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (index_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(a.data()[i] - b.data()[i]));
  return worst;
}

}  // namespace

TEST_CASE("RowConvolution forward is the lookahead sum with per-item zero padding", "[nn][rowconv]") {
  for (index_t tau : {0, 2, 5}) {
    for (index_t d : {3, 70}) {  // 70: two channel blocks (64 + 6)
      INFO("tau " << tau << " d " << d);
      asrkit::Rng rng(1);
      asrkit::RowConvolution<double> rc(d, tau, rng);
      CHECK(rc.weight().value.shape() == Shape{d, 1, tau + 1});
      auto x = randn({6, 4, d}, 2);
      const auto len = lengths_of({6, 3, 0, 1});
      const auto y = rc.forward(x.view(), len.view());
      CHECK(max_abs_diff(y, reference(x, rc.weight().value, len)) < 1e-14);
      // forward_train gives the same output; without lengths every frame is valid
      CHECK(max_abs_diff(rc.forward_train(x.view(), len.view()), y) == 0.0);
      const auto full = lengths_of({6, 6, 6, 6});
      CHECK(max_abs_diff(rc.forward(x.view()), reference(x, rc.weight().value, full)) < 1e-14);
    }
  }
}

TEST_CASE("RowConvolution: padding never changes a result", "[nn][rowconv]") {
  asrkit::Rng rng(3);
  asrkit::RowConvolution<double> rc(5, 3, rng);
  auto x = randn({7, 3, 5}, 4);
  const auto len = lengths_of({7, 4, 2});
  auto y = rc.forward_train(x.view(), len.view());
  const auto dy = randn(y.shape(), 5);
  const auto dx = rc.backward(dy.view());
  const auto dw = rc.weight().grad;
  // Poison the padding of x (and of dy): valid outputs and every gradient stay the same.
  auto xp = x;
  auto dyp = dy;
  for (index_t b = 0; b < 3; ++b)
    for (index_t t = len(b); t < 7; ++t)
      for (index_t i = 0; i < 5; ++i) {
        xp(t, b, i) = std::numeric_limits<double>::quiet_NaN();
        dyp(t, b, i) = 1e30;
      }
  asrkit::zero_grad(rc);
  auto yp = rc.forward_train(xp.view(), len.view());
  const auto dxp = rc.backward(dyp.view());
  CHECK(max_abs_diff(yp, y) == 0.0);
  CHECK(max_abs_diff(dxp, dx) == 0.0);
  CHECK(max_abs_diff(rc.weight().grad, dw) == 0.0);
  for (index_t b = 0; b < 3; ++b)
    for (index_t t = len(b); t < 7; ++t)
      for (index_t i = 0; i < 5; ++i) {
        CHECK(y(t, b, i) == 0.0);
        CHECK(dx(t, b, i) == 0.0);
      }
  // Each item alone (unpadded) gives the same frames as the padded batch.
  for (index_t b = 0; b < 3; ++b) {
    Tensor<double> item({len(b), 1, 5});
    for (index_t t = 0; t < len(b); ++t)
      for (index_t i = 0; i < 5; ++i) item(t, 0, i) = x(t, b, i);
    const auto yb = rc.forward(item.view());
    for (index_t t = 0; t < len(b); ++t)
      for (index_t i = 0; i < 5; ++i) CHECK(yb(t, 0, i) == y(t, b, i));
  }
}

TEST_CASE("RowConvolution backward matches finite differences", "[nn][rowconv][gradcheck]") {
  for (index_t tau : {0, 2, 4}) {
    for (index_t d : {3, 67}) {
      INFO("tau " << tau << " d " << d);
      asrkit::Rng rng(6);
      asrkit::RowConvolution<double> rc(d, tau, rng);
      auto x = randn({5, 3, d}, 7);
      const auto len = lengths_of({5, 2, 3});  // item 1 is shorter than τ + 1 for τ = 2, 4
      const auto w = randn({5, 3, d}, 8);
      rc.forward_train(x.view(), len.view());
      const auto dx = rc.backward(w.view());
      auto loss = [&] { return asrkit_test::dot(rc.forward(x.view(), len.view()), w); };
      CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);
      CHECK(asrkit_test::max_gradient_error(loss, rc.weight().value, rc.weight().grad) < 1e-6);
    }
  }
}

TEST_CASE("RowConvolution backward accumulates weight gradients", "[nn][rowconv]") {
  asrkit::Rng rng(9);
  asrkit::RowConvolution<double> rc(4, 2, rng);
  const auto x = randn({5, 2, 4}, 10);
  const auto dy = randn({5, 2, 4}, 11);
  rc.forward_train(x.view());
  rc.backward(dy.view());
  const auto once = rc.weight().grad;
  rc.backward(dy.view());
  for (index_t i = 0; i < once.numel(); ++i) CHECK(rc.weight().grad.data()[i] == Approx(2 * once.data()[i]));
  rc.clear_cache();
  REQUIRE_THROWS_ID(rc.backward(dy.view()), asrkit::ValueError, "[asrkit.rowconv.5]");
}

TEST_CASE("RowConvolutionStream: chunked output equals the full forward", "[nn][rowconv][stream]") {
  for (index_t tau : {0, 1, 4}) {
    for (index_t chunk : {1, 3, 7, 20}) {
      INFO("tau " << tau << " chunk " << chunk);
      asrkit::Rng rng(12);
      asrkit::RowConvolution<float> rc(70, tau, rng);
      const auto x = randn<float>({13, 2, 70}, 13);
      const auto full = rc.forward(x.view());
      asrkit::RowConvolutionStream<float> s(rc, 2);
      std::vector<float> got;
      index_t emitted = 0;
      for (index_t t0 = 0; t0 < 13; t0 += chunk) {
        const index_t n = std::min(chunk, 13 - t0);
        const asrkit::TensorView<const float> part(x.data() + t0 * 2 * 70, Shape{n, 2, 70});
        const auto out = s.push(part);
        emitted += out.dim(0);
        CHECK(emitted == std::max<index_t>(0, t0 + n - tau));  // frame t leaves once t + τ arrived
        CHECK(s.pending() == t0 + n - emitted);
        got.insert(got.end(), out.data(), out.data() + out.numel());
      }
      s.push(Tensor<float>({0, 2, 70}));  // an empty chunk is fine
      const auto rest = s.finish();
      CHECK(rest.dim(0) == std::min<index_t>(tau, 13));
      got.insert(got.end(), rest.data(), rest.data() + rest.numel());
      REQUIRE(static_cast<index_t>(got.size()) == full.numel());
      for (index_t i = 0; i < full.numel(); ++i) REQUIRE(got[static_cast<std::size_t>(i)] == full.data()[i]);
      CHECK(s.pending() == 0);
    }
  }
  // An utterance shorter than τ: everything comes from finish(); the stream is then reusable.
  asrkit::Rng rng(14);
  asrkit::RowConvolution<double> rc(3, 5, rng);
  const auto x = randn({3, 1, 3}, 15);
  asrkit::RowConvolutionStream<double> s(rc, 1);
  for (int round = 0; round < 2; ++round) {
    CHECK(s.push(x.view()).dim(0) == 0);
    CHECK(max_abs_diff(s.finish(), rc.forward(x.view())) == 0.0);
  }
}

TEST_CASE("RowConvolution results do not depend on the thread count", "[nn][rowconv]") {
  asrkit::Rng rng(16);
  asrkit::RowConvolution<float> rc(200, 6, rng);
  const auto x = randn<float>({30, 5, 200}, 17);
  const auto dy = randn<float>({30, 5, 200}, 18);
  const auto len = lengths_of({30, 12, 29, 1, 7});
  const int saved = asrkit::num_threads();
  std::vector<Tensor<float>> results;
  for (int threads : {1, 2, 3}) {
    asrkit::set_num_threads(threads);
    asrkit::zero_grad(rc);
    results.push_back(rc.forward_train(x.view(), len.view()));
    results.push_back(rc.backward(dy.view()));
    results.push_back(rc.weight().grad);
  }
  asrkit::set_num_threads(saved);
  for (std::size_t k = 3; k < results.size(); ++k)
    for (index_t i = 0; i < results[k].numel(); ++i) REQUIRE(results[k].data()[i] == results[k % 3].data()[i]);
}

TEST_CASE("RowConvolution validates its arguments", "[nn][rowconv][errors]") {
  REQUIRE_THROWS_ID(asrkit::RowConvolution<float>(0, 2), asrkit::ValueError, "[asrkit.rowconv.1]");
  REQUIRE_THROWS_ID(asrkit::RowConvolution<float>(4, -1), asrkit::ValueError, "[asrkit.rowconv.1]");
  asrkit::RowConvolution<float> rc(4, 2);
  Tensor<float> x({5, 2, 4}), wrong({5, 2, 3}), dy({5, 2, 3});
  REQUIRE_THROWS_ID(rc.forward(wrong.view()), asrkit::ShapeError,
                    "[asrkit.rowconv.2] RowConvolution(4, tau 2): argument x: expected shape [T, B, 4], got [5, 2, 3]");
  REQUIRE_THROWS_ID(rc.forward(x.view(), lengths_of({5}).view()), asrkit::ShapeError, "[asrkit.rowconv.3]");
  REQUIRE_THROWS_ID(rc.forward_train(x.view(), lengths_of({5, 6}).view()), asrkit::ValueError,
                    "[asrkit.rowconv.4] RowConvolution(4, tau 2): lengths[1] = 6 is outside [0, 5]");
  REQUIRE_THROWS_ID(rc.backward(dy.view()), asrkit::ValueError, "[asrkit.rowconv.5]");
  rc.forward_train(x.view());
  REQUIRE_THROWS_ID(rc.backward(dy.view()), asrkit::ShapeError, "[asrkit.rowconv.6]");
  REQUIRE_THROWS_ID(asrkit::RowConvolutionStream<float>(rc, 0), asrkit::ValueError, "[asrkit.rowconv.7]");
  asrkit::RowConvolutionStream<float> s(rc, 2);
  REQUIRE_THROWS_ID(s.push(Tensor<float>({3, 1, 4}).view()), asrkit::ShapeError,
                    "[asrkit.rowconv.8] RowConvolutionStream: argument chunk: expected shape [Tc, 2, 4], got [3, 1, 4]");
}
