// Building blocks of Conformer / FusionFormer encoders: the depthwise-over-time convolution, the
// pointwise conv, the feed-forward module (plain and FusionFormer), the Conformer convolution
// module (plain, causal, FusionFormer), convolutional subsampling and the stochastic-depth
// schedule. Every backward is checked against finite differences in double (input and every
// parameter, with variable lengths); padding never changes a valid result.
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/conformer_conv.hpp>
#include <asrkit/nn/conv.hpp>
#include <asrkit/nn/depthwise_conv1d.hpp>
#include <asrkit/nn/feed_forward.hpp>
#include <asrkit/nn/pointwise_conv1d.hpp>
#include <asrkit/nn/stochastic_depth.hpp>
#include <asrkit/nn/subsampling.hpp>

#include <cmath>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"
#include "conformer_test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::as_view;
using namespace asrkit_conformer_test;

TEST_CASE("depthwise_conv1d equals Conv1d(groups = C) on [B, C, T] for every padding", "[nn][conformer][depthwise]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(1);
  for (auto pad : {asrkit::DepthwisePadding::centered, asrkit::DepthwisePadding::causal,
                   asrkit::DepthwisePadding::lookahead}) {
    asrkit::DepthwiseConv1dOptions o;
    o.kernel = 4;
    o.padding = pad;
    asrkit::DepthwiseConv1d<double> dw(3, o, rng);
    const auto x = randn({7, 2, 3}, 2);
    const auto y = dw.forward(x.view());
    REQUIRE(y.shape() == Shape{7, 2, 3});
    const auto p = o.params();
    for (index_t t = 0; t < 7; ++t)
      for (index_t b = 0; b < 2; ++b)
        for (index_t c = 0; c < 3; ++c) {
          double want = dw.bias().value(c);
          for (index_t j = 0; j < 4; ++j) {
            const index_t s = t - p.left + j;
            if (s >= 0 && s < 7) want += dw.weight().value(c, 0, j) * x(s, b, c);
          }
          CHECK(y(t, b, c) == Approx(want).epsilon(1e-12));
        }
    check_layer_gradients(dw, x, [](auto& l, const Tensor<double>& in) { return l.forward_train(in.view()); });
  }
  asrkit::DepthwiseConv1dOptions bad;
  bad.kernel = 0;
  REQUIRE_THROWS_ID(asrkit::DepthwiseConv1d<double>(3, bad, rng), asrkit::ValueError, "depthwise_conv.1");
  asrkit::DepthwiseConv1d<double> dw(3, {}, rng);
  REQUIRE_THROWS_ID(dw.forward(randn({5, 2, 4}, 1).view()), asrkit::ShapeError, "depthwise_conv.2");
  REQUIRE_THROWS_ID(dw.backward(randn({5, 2, 3}, 1).view()), asrkit::ValueError, "depthwise_conv.4");
  asrkit::DepthwiseConv1dOptions wide;
  wide.kernel = 9;
  wide.padding = asrkit::DepthwisePadding::causal;
  auto short_in = randn({3, 1, 3}, 1);
  asrkit::DepthwiseConv1d<double> dwc(3, wide, rng);
  CHECK(dwc.forward(short_in.view()).shape() == Shape{3, 1, 3});  // causal: any length works
  asrkit::ops::DepthwiseConv1dParams none{9, 0, 0};
  Tensor<double> y({1, 1, 3});
  REQUIRE_THROWS_ID(asrkit::ops::depthwise_conv1d_forward<double>(none, short_in.view(), dwc.weight().value.view(),
                                                                  {}, y.view()),
                    asrkit::ShapeError, "depthwise_conv.3");
}

TEST_CASE("depthwise_conv1d results do not depend on the thread count", "[nn][conformer][depthwise]") {
  asrkit::Rng rng(3);
  asrkit::DepthwiseConv1dOptions o;
  o.kernel = 5;
  asrkit::DepthwiseConv1d<float> dw(130, o, rng);
  const auto x = to_float(randn({40, 3, 130}, 4));
  const auto dy = to_float(randn({40, 3, 130}, 5));
  std::vector<Tensor<float>> outs;
  for (int threads : {1, 2}) {
    asrkit::set_num_threads(threads);
    auto l = dw;
    outs.push_back(l.forward_train(x.view()));
    outs.push_back(l.backward(dy.view()));
    outs.push_back(l.weight().grad);
  }
  asrkit::set_num_threads(1);
  for (std::size_t i = 0; i < 3; ++i) CHECK(max_abs_diff(outs[i], outs[i + 3]) == 0.0);
}

TEST_CASE("PointwiseConv1d is a Linear with Conv1d's weight shape", "[nn][conformer][pointwise]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(4);
  asrkit::PointwiseConv1d<double> pw(3, 5, rng);
  CHECK(pw.weight().value.shape() == Shape{5, 3, 1});
  const auto x = randn({4, 2, 3}, 5);
  const auto y = pw.forward(x.view());
  for (index_t r = 0; r < 8; ++r)
    for (index_t o = 0; o < 5; ++o) {
      double want = pw.bias().value(o);
      for (index_t i = 0; i < 3; ++i) want += pw.weight().value(o, i, 0) * x.data()[r * 3 + i];
      CHECK(y.data()[r * 5 + o] == Approx(want).epsilon(1e-12));
    }
  check_layer_gradients(pw, x, [](auto& l, const Tensor<double>& in) { return l.forward_train(in.view()); });
  REQUIRE_THROWS_ID(pw.forward(randn({4, 2, 4}, 1).view()), asrkit::ShapeError, "pointwise_conv.2");
  REQUIRE_THROWS_ID(asrkit::PointwiseConv1d<double>(0, 5, rng), asrkit::ValueError, "pointwise_conv.1");
  asrkit::PointwiseConv1d<double> fresh(3, 5, rng);
  REQUIRE_THROWS_ID(fresh.backward(y.view()), asrkit::ValueError, "pointwise_conv.3");
}

TEST_CASE("FeedForward: Swish and FusionFormer forms, gradients with lengths and dropout", "[nn][conformer][ffn][gradcheck]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(5);
  const std::vector<std::int32_t> lengths{5, 3};
  const auto x = randn({5, 2, 4}, 6);
  SECTION("plain (Swish, dropout)") {
    asrkit::FeedForwardOptions o;
    o.hidden = 6;
    o.dropout = 0.3;
    o.seed = 11;
    asrkit::FeedForward<double> ffn(4, o, rng);
    // inference: w_2 swish(w_1 x), padded frames 0
    const auto y = ffn.forward(x.view(), as_view(lengths));
    auto h = ffn.w_1().forward(x.view());
    for (index_t i = 0; i < h.numel(); ++i) h.data()[i] = h.data()[i] / (1 + std::exp(-h.data()[i]));
    const auto want = ffn.w_2().forward(h.view());
    for (index_t t = 0; t < 5; ++t)
      for (index_t b = 0; b < 2; ++b)
        for (index_t j = 0; j < 4; ++j)
          CHECK(y(t, b, j) == Approx(t < lengths[b] ? want(t, b, j) : 0.0).margin(1e-14));
    check_sequence_gradients(ffn, x, lengths);
  }
  SECTION("FusionFormer (Linear → BN → ReLU → Dropout → Linear → BN)") {
    asrkit::FeedForwardOptions o;
    o.hidden = 6;
    o.activation = asrkit::ops::ActivationKind::relu;
    o.batch_norm = true;
    asrkit::FeedForward<double> ffn(4, o, rng);
    std::vector<std::string> names;
    ffn.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); });
    CHECK(names == std::vector<std::string>{"w_1.weight", "w_1.bias", "norm_1.weight", "norm_1.bias",
                                            "w_2.weight", "w_2.bias", "norm_2.weight", "norm_2.bias"});
    check_sequence_gradients(ffn, x, lengths);
    check_padding_invariance(ffn, x, lengths);
  }
  asrkit::FeedForwardOptions bad;
  bad.activation = asrkit::ops::ActivationKind::tanh;
  REQUIRE_THROWS_ID(asrkit::FeedForward<double>(4, bad, rng), asrkit::ValueError, "feed_forward.1");
  asrkit::FeedForward<double> ffn(4, {}, rng);
  REQUIRE_THROWS_ID(ffn.backward(x.view()), asrkit::ValueError, "feed_forward.2");
  ffn.forward_train(x.view());
  REQUIRE_THROWS_ID(ffn.backward(randn({4, 2, 4}, 1).view()), asrkit::ShapeError, "feed_forward.3");
  REQUIRE_THROWS_ID(ffn.forward(randn({4, 2, 3}, 1).view()), asrkit::ShapeError, "sequence.1");
  const std::vector<std::int32_t> too_long{6, 1};
  REQUIRE_THROWS_ID(ffn.forward(x.view(), as_view(too_long)), asrkit::ValueError, "sequence.3");
  const std::vector<std::int32_t> wrong_size{1, 1, 1};
  REQUIRE_THROWS_ID(ffn.forward(x.view(), as_view(wrong_size)), asrkit::ShapeError, "sequence.2");
}

TEST_CASE("ConformerConvolution: gradients (plain, causal, FusionFormer) with lengths", "[nn][conformer][conv_module][gradcheck]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(7);
  const std::vector<std::int32_t> lengths{6, 4};
  const auto x = randn({6, 2, 4}, 8);
  for (int variant = 0; variant < 3; ++variant) {
    INFO("variant " << variant);
    asrkit::ConformerConvolutionOptions o;
    o.kernel = 3;
    o.causal = variant == 1;
    o.fusionformer = variant == 2;
    asrkit::ConformerConvolution<double> conv(4, o, rng);
    check_sequence_gradients(conv, x, lengths);
    check_padding_invariance(conv, x, lengths);
  }
  asrkit::ConformerConvolutionOptions even;
  even.kernel = 4;
  REQUIRE_THROWS_ID(asrkit::ConformerConvolution<double>(4, even, rng), asrkit::ValueError, "conformer_conv.1");
  asrkit::ConformerConvolution<double> conv(4, {}, rng);
  REQUIRE_THROWS_ID(conv.backward(x.view()), asrkit::ValueError, "conformer_conv.2");
  conv.forward_train(x.view());
  REQUIRE_THROWS_ID(conv.backward(randn({5, 2, 4}, 1).view()), asrkit::ShapeError, "conformer_conv.3");
}

TEST_CASE("ConformerConvolution: the inference forward matches a hand-written composition", "[nn][conformer][conv_module]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(9);
  asrkit::ConformerConvolutionOptions o;
  o.kernel = 5;
  asrkit::ConformerConvolution<double> conv(3, o, rng);
  conv.norm().running_mean().fill(0.3);
  conv.norm().running_var().fill(2.0);
  const auto x = randn({7, 1, 3}, 10);
  const auto y = conv.forward(x.view());
  // PW1 -> GLU -> DW -> BN(running) -> Swish -> PW2, written out directly.
  const auto a = conv.pointwise_conv1().forward(x.view());
  Tensor<double> g({7, 1, 3});
  for (index_t t = 0; t < 7; ++t)
    for (index_t c = 0; c < 3; ++c) g(t, 0, c) = a(t, 0, c) / (1 + std::exp(-a(t, 0, c + 3)));
  Tensor<double> s({7, 1, 3});
  for (index_t t = 0; t < 7; ++t)
    for (index_t c = 0; c < 3; ++c) {
      double d = conv.depthwise_conv().bias().value(c);
      for (index_t j = 0; j < 5; ++j)
        if (t - 2 + j >= 0 && t - 2 + j < 7) d += conv.depthwise_conv().weight().value(c, 0, j) * g(t - 2 + j, 0, c);
      const double n = (d - 0.3) / std::sqrt(2.0 + 1e-5);
      s(t, 0, c) = n / (1 + std::exp(-n));
    }
  const auto want = conv.pointwise_conv2().forward(s.view());
  CHECK(max_abs_diff(y, want) < 1e-12);
}

TEST_CASE("ConformerConvolution: a causal module never reads future frames", "[nn][conformer][conv_module][streaming]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(11);
  for (bool fusion : {false, true}) {
    asrkit::ConformerConvolutionOptions o;
    o.kernel = 5;
    o.causal = true;
    o.fusionformer = fusion;
    asrkit::ConformerConvolution<double> conv(4, o, rng);
    auto x = randn({9, 2, 4}, 12);
    const auto y = conv.forward(x.view());
    for (index_t t = 5; t < 9; ++t)
      for (index_t b = 0; b < 2; ++b)
        for (index_t j = 0; j < 4; ++j) x(t, b, j) += 3.0;
    const auto y2 = conv.forward(x.view());
    for (index_t t = 0; t < 9; ++t) {
      double d = 0;
      for (index_t i = 0; i < 8; ++i) d = std::max(d, std::fabs(y.data()[t * 8 + i] - y2.data()[t * 8 + i]));
      if (t < 5)
        CHECK(d == 0.0);
      else
        CHECK(d > 1e-6);
    }
  }
}

TEST_CASE("Conv2dSubsampling: ESPnet output lengths for factors 4, 6 and 8", "[nn][conformer][subsampling]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(13);
  for (index_t factor : {4, 6, 8}) {
    asrkit::SubsamplingOptions o;
    o.factor = factor;
    asrkit::Conv2dSubsampling<double> sub(20, 3, o, rng);
    for (index_t len = 0; len < 60; ++len) {
      // ESPnet's masks: x_mask[:, :, :-2:2] per 3x3 stride-2 conv, [:-4:3] for the 5x5 stride-3 one
      auto slice = [](index_t n, index_t drop, index_t step) { return n <= drop ? 0 : (n - drop + step - 1) / step; };
      index_t want = slice(len, 2, 2);
      want = factor == 6 ? slice(want, 4, 3) : slice(want, 2, 2);
      if (factor == 8) want = slice(want, 2, 2);
      CHECK(sub.output_length(len) == want);
    }
    const index_t steps = 2 * factor + 7;
    const std::vector<std::int32_t> lengths{static_cast<std::int32_t>(steps), static_cast<std::int32_t>(steps - 5)};
    const auto x = randn({steps, 2, 20}, 14);
    const auto y = sub.forward(x.view(), as_view(lengths));
    CHECK(y.shape() == Shape{sub.output_length(steps), 2, 3});
    CHECK(sub.output_lengths(lengths) ==
          std::vector<std::int32_t>{static_cast<std::int32_t>(sub.output_length(steps)),
                                    static_cast<std::int32_t>(sub.output_length(steps - 5))});
  }
  asrkit::SubsamplingOptions bad;
  bad.factor = 3;
  REQUIRE_THROWS_ID(asrkit::Conv2dSubsampling<double>(20, 3, bad, rng), asrkit::ValueError, "subsampling.1");
  REQUIRE_THROWS_ID(asrkit::Conv2dSubsampling<double>(4, 3, {}, rng), asrkit::ValueError, "subsampling.1");
  asrkit::Conv2dSubsampling<double> sub(20, 3, {}, rng);
  REQUIRE_THROWS_ID(sub.forward(randn({6, 1, 20}, 1).view()), asrkit::ShapeError, "subsampling.2");
  REQUIRE_THROWS_ID(sub.backward(randn({1, 1, 3}, 1).view()), asrkit::ValueError, "subsampling.3");
}

TEST_CASE("Conv2dSubsampling: gradients (plain and FusionFormer) with lengths", "[nn][conformer][subsampling][gradcheck]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(15);
  for (index_t factor : {4, 6}) {
    for (bool fusion : {false, true}) {
      INFO("factor " << factor << " fusion " << fusion);
      asrkit::SubsamplingOptions o;
      o.factor = factor;
      o.fusionformer = fusion;
      asrkit::Conv2dSubsampling<double> sub(11, 2, o, rng);
      const auto x = randn({17, 2, 11}, 16);
      const std::vector<std::int32_t> lengths{17, 12};
      check_sequence_gradients(sub, x, lengths);
      check_padding_invariance(sub, x, lengths);
    }
  }
  asrkit::SubsamplingOptions fusion;
  fusion.fusionformer = true;
  fusion.factor = 8;
  asrkit::Conv2dSubsampling<double> sub(17, 2, fusion, rng);
  std::vector<std::string> names;
  sub.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"conv.0.weight", "conv.0.bias", "conv.1.weight", "conv.1.bias",
                                          "conv.3.weight", "conv.3.bias", "conv.4.weight", "conv.4.bias",
                                          "conv.6.weight", "conv.6.bias", "conv.7.weight", "conv.7.bias",
                                          "out.0.weight", "out.0.bias"});
}

TEST_CASE("StochasticDepth: ESPnet schedules and coins", "[nn][conformer][stochastic_depth]") {
  SingleThreadScope one_thread;
  asrkit::StochasticDepth sd;
  sd.rate = 0.3;
  const auto p = sd.skip_probabilities(24);
  CHECK(p.front() == Approx(0.0125));
  CHECK(p[11] == Approx(0.15));
  CHECK(p.back() == Approx(0.3));
  sd.schedule = asrkit::DepthSchedule::constant;
  CHECK(sd.skip_probabilities(3) == std::vector<double>{0.3, 0.3, 0.3});
  sd.schedule = asrkit::DepthSchedule::list;
  sd.rates = {0.1, 0.2};
  CHECK(sd.skip_probability(2, 2) == 0.2);
  REQUIRE_THROWS_ID(sd.skip_probability(1, 3), asrkit::ValueError, "stochastic_depth.1");
  REQUIRE_THROWS_ID(sd.skip_probability(3, 2), asrkit::ValueError, "stochastic_depth.1");
  sd.rates = {0.1, 1.0};
  REQUIRE_THROWS_ID(sd.skip_probability(2, 2), asrkit::ValueError, "stochastic_depth.1");

  asrkit::Rng rng(17);
  int skipped = 0, items_skipped = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    const auto d = asrkit::LayerDrop<double>::draw(0.25, asrkit::DepthGranularity::batch, 3, rng);
    CHECK((d.all_skipped() || !d.any_skipped()));  // one coin for the whole batch
    if (d.all_skipped()) ++skipped;
    else CHECK(d.factor[0] == Approx(1 / 0.75));
    const auto s = asrkit::LayerDrop<double>::draw(0.25, asrkit::DepthGranularity::sample, 4, rng);
    for (double f : s.factor) items_skipped += f == 0.0;
  }
  // Binomial(20000, 0.25): sd = 61; 5 sd bounds
  CHECK(std::abs(skipped - draws / 4) < 310);
  CHECK(std::abs(items_skipped - draws) < 620);
  // p = 0 draws no numbers
  asrkit::Rng a(1), b(1);
  (void)asrkit::LayerDrop<double>::draw(0.0, asrkit::DepthGranularity::batch, 2, a);
  CHECK(a.next_u64() == b.next_u64());
}
