// The BN-folding primitives (transform/fold_batch_norm.hpp, SPECS §10.3): a BN after a Linear /
// pointwise / depthwise / grouped conv folds exactly into it; a BN before a layer folds exactly
// without zero padding and is refused (or, when allowed, inexact exactly at the borders) with it.
// Every fold is compared with the unfolded layers on trained statistics and random γ, β, in
// float (1e-5 of the output scale) and double (1e-12), and every comparison is shown to fail
// when the bias update is skipped.
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/conv.hpp>
#include <asrkit/nn/depthwise_conv1d.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/pointwise_conv1d.hpp>
#include <asrkit/transform/fold_batch_norm.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "fold_test_util.hpp"

using namespace asrkit_fold_test;
namespace tf = asrkit::transform;

namespace {

/// BN over the last axis (Linear, pointwise and depthwise layers: channels last).
struct ChannelsLast {
  template <class T>
  Tensor<T> operator()(asrkit::BatchNorm<T>& bn, const Tensor<T>& y, bool train) const {
    return train ? bn.forward_train(y.view()) : bn.forward(y.view());
  }
};

/// BN over axis 1 of [B, C, ...] maps (Conv1d, Conv2d), as a BatchNorm1d/2d over channels.
struct ChannelsFirst {
  template <class T>
  Tensor<T> operator()(asrkit::BatchNorm<T>& bn, const Tensor<T>& y, bool train) const {
    const index_t b = y.dim(0), c = y.dim(1), rest = y.numel() / (b * c);
    Tensor<T> rows(Shape{b * rest, c});
    for (index_t i = 0; i < b; ++i)
      for (index_t j = 0; j < c; ++j)
        for (index_t r = 0; r < rest; ++r) rows(i * rest + r, j) = y.data()[(i * c + j) * rest + r];
    const Tensor<T> n = train ? bn.forward_train(rows.view()) : bn.forward(rows.view());
    Tensor<T> out(y.shape());
    for (index_t i = 0; i < b; ++i)
      for (index_t j = 0; j < c; ++j)
        for (index_t r = 0; r < rest; ++r) out.data()[(i * c + j) * rest + r] = n(i * rest + r, j);
    return out;
  }
};

/// A BN trained for a few steps on `make(step)` (inputs with a non-zero mean: running
/// statistics far from 0 / 1), then given random γ, β.
template <class T, class Apply, class Make>
asrkit::BatchNorm<T> trained_norm(index_t channels, Apply apply, Make make) {
  asrkit::BatchNormOptions o;
  o.momentum = 0.5;
  asrkit::BatchNorm<T> bn(channels, o);
  for (int step = 0; step < 4; ++step) apply(bn, make(step), true);
  randomize_norms(bn, 11);
  return bn;
}

/// layer → BN folded into the layer equals the two layers; with the old bias it does not.
template <class T, class Layer, class Apply>
void check_post(Layer layer, Apply apply, const Tensor<T>& x) {
  const Tensor<T> y0 = layer.forward(x.view());
  const index_t channels = apply.template channels<T>(y0);
  auto bn = trained_norm<T>(channels, apply, [&](int step) {
    return layer.forward(randn<T>(x.shape(), 100 + step, 2.0, 3.0).view());
  });
  double moved = 0;  // trained statistics: far from the defaults 0 / 1
  for (index_t j = 0; j < channels; ++j)
    moved = std::max(moved, std::fabs(double(bn.running_mean()(j))) + std::fabs(double(bn.running_var()(j)) - 1));
  CHECK(moved > 0.5);
  const auto want = apply(bn, y0, false);
  Layer folded = layer;
  const auto rec = tf::fold_into_preceding(folded, bn);
  CHECK(relative_diff(folded.forward(x.view()), want) < tolerance<T>());
  CHECK(rec.side == tf::FoldSide::post);
  CHECK(rec.exact);
  CHECK(rec.channels == channels);
  Layer stale = folded;  // W scaled, b left as it was: must not match
  stale.bias().value = layer.has_bias() ? layer.bias().value : Tensor<T>(folded.bias().value.shape());
  CHECK(relative_diff(stale.forward(x.view()), want) > 1e-3);
}

/// BN → layer folded into the layer (exact without zero padding).
template <class T, class Layer, class Apply>
void check_pre(Layer layer, Apply apply, const Tensor<T>& x) {
  const index_t channels = apply.template channels<T>(x);
  auto bn = trained_norm<T>(channels, apply, [&](int step) { return randn<T>(x.shape(), 200 + step, -1.5, 2.0); });
  const auto want = layer.forward(apply(bn, x, false).view());
  Layer folded = layer;
  const auto rec = tf::fold_into_following(bn, folded);
  CHECK(relative_diff(folded.forward(x.view()), want) < tolerance<T>());
  CHECK(rec.side == tf::FoldSide::pre);
  CHECK(rec.exact);
  Layer stale = folded;
  stale.bias().value = layer.has_bias() ? layer.bias().value : Tensor<T>(folded.bias().value.shape());
  CHECK(relative_diff(stale.forward(x.view()), want) > 1e-3);
}

struct Last : ChannelsLast {
  template <class T>
  index_t channels(const Tensor<T>& y) const { return y.dim(y.rank() - 1); }
};
struct First : ChannelsFirst {
  template <class T>
  index_t channels(const Tensor<T>& y) const { return y.dim(1); }
};

asrkit::Conv1dOptions conv1d(index_t k, index_t stride, index_t pad, index_t dil, index_t groups, bool bias) {
  asrkit::Conv1dOptions o;
  o.kernel = k;
  o.stride = stride;
  o.padding = pad;
  o.dilation = dil;
  o.groups = groups;
  o.bias = bias;
  return o;
}

}  // namespace

TEMPLATE_TEST_CASE("fold: a BN after a layer folds exactly into it (every layer kind)", "[transform][fold]",
                   float, double) {
  using T = TestType;
  SingleThreadScope one_thread;
  asrkit::Rng rng(3);
  const auto seq = randn<T>(Shape{7, 3, 6}, 1, 0.5, 1.0);  // [T, B, F]
  check_post<T>(asrkit::Linear<T>(6, 5, rng), Last{}, seq);
  check_post<T>(asrkit::Linear<T>(6, 5, rng, false), Last{}, seq);  // gains a bias
  check_post<T>(asrkit::PointwiseConv1d<T>(6, 4, rng), Last{}, seq);
  check_post<T>(asrkit::PointwiseConv1d<T>(6, 4, rng, false), Last{}, seq);
  for (auto pad : {asrkit::DepthwisePadding::centered, asrkit::DepthwisePadding::causal}) {
    asrkit::DepthwiseConv1dOptions o;
    o.kernel = 3;
    o.padding = pad;
    check_post<T>(asrkit::DepthwiseConv1d<T>(6, o, rng), Last{}, seq);  // post: padding is fine
    o.bias = false;
    check_post<T>(asrkit::DepthwiseConv1d<T>(6, o, rng), Last{}, seq);
  }
  const auto map1 = randn<T>(Shape{2, 6, 9}, 2, 0.5, 1.0);  // [B, C, L]
  check_post<T>(asrkit::Conv1d<T>(6, 4, conv1d(3, 2, 1, 1, 2, true), rng), First{}, map1);   // grouped, strided
  check_post<T>(asrkit::Conv1d<T>(6, 6, conv1d(5, 1, 4, 2, 6, false), rng), First{}, map1);  // depthwise, dilated
  asrkit::Conv2dOptions o2;
  o2.kernel = {3, 2};
  o2.stride = {2, 1};
  o2.padding = {1, 1};
  o2.groups = 2;
  const auto map2 = randn<T>(Shape{2, 4, 7, 5}, 3, 0.5, 1.0);  // [B, C, F, T]
  check_post<T>(asrkit::Conv2d<T>(4, 6, o2, rng), First{}, map2);
  o2.bias = false;
  o2.groups = 1;
  check_post<T>(asrkit::Conv2d<T>(4, 3, o2, rng), First{}, map2);
}

TEMPLATE_TEST_CASE("fold: a BN before a layer folds exactly without zero padding", "[transform][fold]",
                   float, double) {
  using T = TestType;
  SingleThreadScope one_thread;
  asrkit::Rng rng(4);
  const auto seq = randn<T>(Shape{7, 3, 6}, 1);
  check_pre<T>(asrkit::Linear<T>(6, 5, rng), Last{}, seq);
  check_pre<T>(asrkit::Linear<T>(6, 5, rng, false), Last{}, seq);
  check_pre<T>(asrkit::PointwiseConv1d<T>(6, 4, rng, false), Last{}, seq);
  asrkit::DepthwiseConv1dOptions k1;  // kernel 1: no padding, exact
  k1.kernel = 1;
  check_pre<T>(asrkit::DepthwiseConv1d<T>(6, k1, rng), Last{}, seq);
  const auto map1 = randn<T>(Shape{2, 6, 9}, 2);
  check_pre<T>(asrkit::Conv1d<T>(6, 4, conv1d(3, 2, 0, 2, 2, true), rng), First{}, map1);
  check_pre<T>(asrkit::Conv1d<T>(6, 6, conv1d(3, 1, 0, 1, 6, false), rng), First{}, map1);
  asrkit::Conv2dOptions o2;
  o2.kernel = {3, 2};
  o2.stride = {2, 1};
  o2.groups = 2;
  check_pre<T>(asrkit::Conv2d<T>(4, 6, o2, rng), First{}, randn<T>(Shape{2, 4, 7, 5}, 3));
}

TEMPLATE_TEST_CASE("fold: a BN before a zero-padded conv is refused, and when allowed differs exactly at the borders",
                   "[transform][fold]", float, double) {
  using T = TestType;
  SingleThreadScope one_thread;
  asrkit::Rng rng(5);
  // Per output frame t (axis 0 of [T, B, C] or the last axis of [B, C, L]): does it match?
  auto check_borders = [](const Tensor<T>& got, const Tensor<T>& want, index_t frames, index_t border,
                          auto frame_of) {
    double scale = 0;
    for (index_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want.data()[i])));
    std::vector<double> worst(static_cast<std::size_t>(frames), 0.0);
    for (index_t i = 0; i < want.numel(); ++i) {
      auto& w = worst[static_cast<std::size_t>(frame_of(i))];
      w = std::max(w, std::fabs(double(got.data()[i]) - double(want.data()[i])) / scale);
    }
    for (index_t t = 0; t < frames; ++t) {
      INFO("frame " << t << " of " << frames << ", border " << border);
      if (t < border || t >= frames - border)
        CHECK(worst[static_cast<std::size_t>(t)] > 1e-3);
      else
        CHECK(worst[static_cast<std::size_t>(t)] < tolerance<T>());
    }
  };

  // Depthwise, centered k = 5: the first and last ⌊k/2⌋ = 2 frames differ.
  asrkit::DepthwiseConv1dOptions o;
  o.kernel = 5;
  asrkit::DepthwiseConv1d<T> dw(3, o, rng);
  const auto x = randn<T>(Shape{10, 2, 3}, 6);
  auto bn = trained_norm<T>(3, Last{}, [&](int s) { return randn<T>(x.shape(), 300 + s, 2.0, 0.5); });
  const auto want = dw.forward(bn.forward(x.view()).view());
  auto refused = dw;
  REQUIRE_THROWS_ID(tf::fold_into_following(bn, refused), asrkit::ValueError, "fold.3");
  CHECK(relative_diff(refused.weight().value, dw.weight().value) == 0);  // nothing changed
  tf::FoldOptions allow;
  allow.allow_inexact = true;
  const auto rec = tf::fold_into_following(bn, refused, allow);
  CHECK_FALSE(rec.exact);
  CHECK(rec.note.find("first 2 and about the last 2") != std::string::npos);
  check_borders(refused.forward(x.view()), want, 10, 2, [](index_t i) { return i / 6; });

  // Conv1d, kernel 3, dilation 2, "same" padding ⌊k/2⌋·dilation = 2 on [B, C, L].
  asrkit::Conv1d<T> conv(3, 4, conv1d(3, 1, 2, 2, 1, true), rng);
  const auto m = randn<T>(Shape{2, 3, 11}, 7);
  auto bn1 = trained_norm<T>(3, First{}, [&](int s) { return randn<T>(m.shape(), 400 + s, -2.0, 0.5); });
  const auto want1 = conv.forward(First{}(bn1, m, false).view());
  auto c2 = conv;
  REQUIRE_THROWS_ID(tf::fold_into_following(bn1, c2), asrkit::ValueError, "fold.3");
  tf::fold_into_following(bn1, c2, allow);
  check_borders(c2.forward(m.view()), want1, 11, 2, [](index_t i) { return i % 11; });
}

TEST_CASE("fold: mismatched sizes and non-finite statistics are refused and change nothing", "[transform][fold]") {
  asrkit::Rng rng(8);
  asrkit::Linear<double> fc(4, 6, rng, false);
  asrkit::BatchNorm<double> five(5);
  REQUIRE_THROWS_ID(tf::fold_into_preceding(fc, five), asrkit::ShapeError,
                    "cannot fold BatchNorm (5 features) into Linear(4 -> 6): it has 6 output channels");
  REQUIRE_THROWS_ID(tf::fold_into_following(five, fc), asrkit::ShapeError, "it has 4 input channels");
  const Tensor<double> w0 = fc.weight().value;
  asrkit::BatchNorm<double> bn(6);
  bn.running_var()(1) = std::numeric_limits<double>::quiet_NaN();
  tf::FoldOptions named;
  named.norm_name = "encoders.0.feed_forward.norm_1";
  REQUIRE_THROWS_ID(tf::fold_into_preceding(fc, bn, named), asrkit::ValueError,
                    "[asrkit.fold.2] encoders.0.feed_forward.norm_1.running_var[1] = nan is not finite");
  bn.running_var()(1) = 1.0;
  bn.weight().value(4) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_ID(tf::fold_into_preceding(fc, bn), asrkit::ValueError, "BatchNorm.weight[4] = inf");
  bn.weight().value(4) = 1.0;
  bn.running_var()(2) = -1.0;  // var + eps <= 0
  REQUIRE_THROWS_ID(tf::fold_into_preceding(fc, bn), asrkit::ValueError, "fold.2");
  CHECK_FALSE(fc.has_bias());
  CHECK(relative_diff(fc.weight().value, w0) == 0);
}

TEST_CASE("fold: a BN that never trained (default statistics) folds into its near-identity map", "[transform][fold]") {
  asrkit::Rng rng(9);
  asrkit::Linear<double> fc(3, 4, rng);
  asrkit::BatchNorm<double> bn(4);
  REQUIRE(bn.num_batches_tracked()() == 0);
  const auto x = randn<double>(Shape{5, 3}, 1);
  const auto want = bn.forward(fc.forward(x.view()).view());
  const auto rec = tf::fold_into_preceding(fc, bn);
  CHECK(relative_diff(fc.forward(x.view()), want) < 1e-12);
  CHECK(rec.layer == "Linear(3 -> 4)");
  CHECK(rec.norm == "BatchNorm");
  CHECK(std::string(tf::to_string(rec.side)) == "post");
}
