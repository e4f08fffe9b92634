// Transformer, Conformer and FusionFormer blocks and the encoder stack: gradients against finite
// differences in double (input and every parameter, variable lengths, dropout, stochastic depth
// in both granularities), stochastic-depth semantics (SPECS §6), InterCTC taps (SPECS §7),
// depth pruning (SPECS §8.2) and streaming (causal convolution + chunk mask).
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/transformer_block.hpp>

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

namespace {

asrkit::TransformerBlockOptions small_transformer(double dropout = 0.0) {
  asrkit::TransformerBlockOptions o;
  o.heads = 2;
  o.ff = 6;
  o.dropout = dropout;
  return o;
}

asrkit::ConformerBlockOptions small_conformer(double dropout = 0.0) {
  asrkit::ConformerBlockOptions o;
  o.heads = 2;
  o.ff = 6;
  o.kernel = 3;
  o.dropout = dropout;
  return o;
}

Tensor<double> pos_table(index_t steps, index_t d) {
  return asrkit::RelPositionalEncoding<double>(d).table(steps);
}

// Block forward_train for either block kind (Conformer-family blocks take pos_emb).
template <class Block>
Tensor<double> block_train(Block& b, const Tensor<double>& x, const std::vector<std::int32_t>& len,
                           asrkit::AttentionMask mask = {}) {
  if constexpr (Block::relative_positions)
    return b.forward_train(x.view(), pos_table(x.dim(0), x.dim(2)).view(), as_view(len), mask);
  else
    return b.forward_train(x.view(), as_view(len), mask);
}
template <class Block>
Tensor<double> block_infer(const Block& b, const Tensor<double>& x, const std::vector<std::int32_t>& len,
                           asrkit::AttentionMask mask = {}) {
  if constexpr (Block::relative_positions)
    return b.forward(x.view(), pos_table(x.dim(0), x.dim(2)).view(), as_view(len), mask);
  else
    return b.forward(x.view(), as_view(len), mask);
}

template <class Block>
void check_block_gradients(const Block& block, const Tensor<double>& x, const std::vector<std::int32_t>& len,
                           asrkit::AttentionMask mask = {}) {
  check_layer_gradients(block, x, [&](auto& l, const Tensor<double>& in) { return block_train(l, in, len, mask); });
  Block l = block;
  const auto y = block_train(l, x, len, mask);
  const auto dx = l.backward(randn(y.shape(), 3).view());
  for (index_t t = 0; t < x.dim(0); ++t)
    for (index_t b = 0; b < x.dim(1); ++b)
      for (index_t j = 0; j < x.dim(2); ++j)
        if (t >= len[static_cast<std::size_t>(b)]) {
          CHECK(dx(t, b, j) == 0.0);
          CHECK(y(t, b, j) == 0.0);
        }
}

}  // namespace

TEST_CASE("TransformerBlock: gradients with lengths, dropout and attention dropout", "[nn][conformer][transformer][gradcheck]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(1);
  auto o = small_transformer(0.2);
  o.attention_dropout = 0.1;
  asrkit::TransformerBlock<double> block(4, o, rng);
  const auto x = randn({5, 2, 4}, 2);
  check_block_gradients(block, x, {5, 3});
  std::vector<std::string> names;
  block.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias",
                                          "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                                          "feed_forward.w_1.weight", "feed_forward.w_1.bias",
                                          "feed_forward.w_2.weight", "feed_forward.w_2.bias",
                                          "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"});
}

TEST_CASE("ConformerBlock and FusionFormerBlock: gradients with lengths and dropout", "[nn][conformer][block][gradcheck]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(3);
  const auto x = randn({6, 2, 4}, 4);
  SECTION("Conformer") {
    asrkit::ConformerBlock<double> block(4, small_conformer(0.2), rng);
    check_block_gradients(block, x, {6, 4});
    check_block_gradients(block, x, {6, 6}, asrkit::AttentionMask::chunked(2, 1));
  }
  SECTION("FusionFormer") {
    asrkit::FusionFormerBlock<double> block(4, small_conformer(0.2), rng);
    CHECK(block.norm_final() == nullptr);
    CHECK(block.norm_mha() == nullptr);
    check_block_gradients(block, x, {6, 4});
    std::size_t norms = 0;
    block.for_each_parameter([&](const std::string& n, auto&) { norms += n.find("norm") != std::string::npos; });
    // BN weight + bias: FFN 2 × 2 each, attention q/k/v/out 4, conv 3
    CHECK(norms == 2 * (4 + 4 + 3));
  }
}

TEST_CASE("Stochastic depth in a block: gradients for skipped and kept draws, both granularities", "[nn][conformer][stochastic_depth][gradcheck]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(5);
  const auto x = randn({4, 3, 4}, 6);
  const std::vector<std::int32_t> len{4, 2, 3};
  for (auto granularity : {asrkit::DepthGranularity::batch, asrkit::DepthGranularity::sample}) {
    auto o = small_conformer();
    o.skip_probability = 0.5;
    o.granularity = granularity;
    asrkit::ConformerBlock<double> block(4, o, rng);
    bool saw_skip = false, saw_keep = false;
    for (int draw = 0; draw < 4; ++draw) {
      auto probe = block;
      block_train(probe, x, len);
      saw_skip = saw_skip || probe.last_drop().any_skipped();
      saw_keep = saw_keep || !probe.last_drop().all_skipped();
      check_block_gradients(block, x, len);  // the copies replay the same coins
      block_train(block, x, len);             // advance the coin stream
    }
    CHECK(saw_skip);
    CHECK(saw_keep);
  }
}

TEST_CASE("Stochastic depth: eval is deterministic and unscaled; training skips with probability p", "[nn][conformer][stochastic_depth]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(7);
  auto o = small_transformer();
  asrkit::TransformerBlock<double> plain(4, o, rng);
  auto dropped = plain;
  dropped.set_skip_probability(0.4);
  const auto x = randn({5, 2, 4}, 8);
  const std::vector<std::int32_t> len{5, 4};
  const auto y0 = plain.forward(x.view(), as_view(len));
  CHECK(max_abs_diff(dropped.forward(x.view(), as_view(len)), y0) == 0.0);
  CHECK(max_abs_diff(dropped.forward(x.view(), as_view(len)), y0) == 0.0);
  // p = 0 in training (no dropout) equals inference
  auto train0 = plain;
  CHECK(max_abs_diff(train0.forward_train(x.view(), as_view(len)), y0) < 1e-12);

  int skips = 0;
  const int draws = 2000;
  Tensor<double> xz(x);
  asrkit::detail::seq::zero_padding(xz.view(), len);
  for (int i = 0; i < draws; ++i) {
    const auto y = dropped.forward_train(x.view(), as_view(len));
    if (dropped.last_drop().all_skipped()) {
      ++skips;
      CHECK(max_abs_diff(y, xz) == 0.0);  // identity
    }
  }
  // Binomial(2000, 0.4): sd 21.9; 5 sd
  CHECK(std::abs(skips - 800) < 110);
}

TEST_CASE("Stochastic depth: a kept Conformer block scales every residual branch by 1/(1 - p)", "[nn][conformer][stochastic_depth]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(9);
  auto o = small_conformer();
  o.skip_probability = 0.2;
  asrkit::ConformerBlock<double> block(4, o, rng);
  const auto x = randn({5, 2, 4}, 10);
  const std::vector<std::int32_t> len{5, 3};
  const auto pos = pos_table(5, 4);
  auto ref = block;  // modules for the hand-written composition (same weights)
  Tensor<double> y;
  do y = block.forward_train(x.view(), pos.view(), as_view(len));
  while (block.last_drop().all_skipped());
  const double s = 1.0 / 0.8;
  CHECK(block.last_drop().factor[0] == Approx(s));
  Tensor<double> h(x);
  auto add = [&](double coef, const Tensor<double>& branch) {
    for (index_t i = 0; i < h.numel(); ++i) h.data()[i] += coef * s * branch.data()[i];
  };
  add(0.5, ref.feed_forward_macaron().forward_train(ref.norm_ff_macaron()->forward(h.view()).view(), as_view(len)));
  add(1.0, ref.self_attn().forward_train(ref.norm_mha()->forward(h.view()).view(), pos.view(), as_view(len)));
  add(1.0, ref.conv_module().forward_train(ref.norm_conv()->forward(h.view()).view(), as_view(len)));
  add(0.5, ref.feed_forward().forward_train(ref.norm_ff()->forward(h.view()).view(), as_view(len)));
  auto want = ref.norm_final()->forward(h.view());
  asrkit::detail::seq::zero_padding(want.view(), len);
  CHECK(max_abs_diff(y, want) < 1e-12);
}

TEST_CASE("Sample granularity: skipped items pass through unchanged", "[nn][conformer][stochastic_depth]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(11);
  auto o = small_conformer();
  o.skip_probability = 0.5;
  o.granularity = asrkit::DepthGranularity::sample;
  asrkit::ConformerBlock<double> block(4, o, rng);
  const auto x = randn({3, 6, 4}, 12);
  const auto pos = pos_table(3, 4);
  bool mixed = false;
  for (int i = 0; i < 10 && !mixed; ++i) {
    const auto y = block.forward_train(x.view(), pos.view());
    const auto& f = block.last_drop().factor;
    if (!block.last_drop().any_skipped() || block.last_drop().all_skipped()) continue;
    mixed = true;
    for (index_t b = 0; b < 6; ++b) {
      double d = 0;
      for (index_t t = 0; t < 3; ++t)
        for (index_t j = 0; j < 4; ++j) d = std::max(d, std::fabs(y(t, b, j) - x(t, b, j)));
      if (f[static_cast<std::size_t>(b)] == 0.0) CHECK(d == 0.0);
      else CHECK(d > 1e-3);
    }
  }
  CHECK(mixed);
}

TEST_CASE("Encoder: InterCTC taps, their gradients and the final norm flag", "[nn][conformer][encoder][gradcheck]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(13);
  asrkit::EncoderOptions eo;
  eo.intermediate_layers = {3, 1};
  eo.stochastic_depth.rate = 0.3;
  eo.positional.dropout = 0.1;
  const auto x = randn({5, 2, 4}, 14);
  const std::vector<std::int32_t> len{5, 3};
  for (bool tap_norm : {true, false}) {
    eo.tap_final_norm = tap_norm;
    asrkit::Encoder<asrkit::ConformerBlock<double>> enc(3, 4, small_conformer(0.1), eo, rng);
    CHECK(enc.layer(3).skip_probability() == Approx(0.3));
    CHECK(enc.layer(1).skip_probability() == Approx(0.1));
    // loss = <w, out> + <w1, tap(3)> + <w2, tap(1)>
    const auto w = randn({5, 2, 4}, 20), w1 = randn({5, 2, 4}, 21), w2 = randn({5, 2, 4}, 22);
    auto model = enc;
    auto out = model.forward_train(x.view(), as_view(len));
    REQUIRE(out.intermediates.size() == 2);
    asrkit::zero_grad(model);
    const auto dx = model.backward(w.view(), {w1, w2});
    auto initial = enc;
    Tensor<double> xv(x);
    auto loss = [&] {
      auto m = initial;
      const auto o = m.forward_train(xv.view(), as_view(len));
      return asrkit_test::dot(o.output, w) + asrkit_test::dot(o.intermediates[0], w1) +
             asrkit_test::dot(o.intermediates[1], w2);
    };
    CHECK(asrkit_test::max_gradient_error(loss, xv, dx) < 1e-6);
    std::vector<Tensor<double>*> values;
    std::vector<const Tensor<double>*> grads;
    std::vector<std::string> names;
    initial.for_each_parameter([&](const std::string&, auto& p) { values.push_back(&p.value); });
    model.for_each_parameter([&](const std::string& n, auto& p) {
      grads.push_back(&p.grad);
      names.push_back(n);
    });
    // the after_norm gradient sums the final output's and the normalised taps' contributions
    for (std::size_t k = 0; k < values.size(); ++k) {
      INFO("parameter " << names[k]);
      CHECK(asrkit_test::max_gradient_error(loss, *values[k], *grads[k]) < 1e-6);
    }
    // inference taps: the stream after layers 3 and 1, through after_norm when the flag is on
    const auto inf = enc.forward(x.view(), as_view(len));
    auto by_hand = enc;
    auto h = by_hand.positional_encoding().forward(x.view(), as_view(len));
    const auto pos = h.pos_emb;
    Tensor<double> s = h.x;
    s = by_hand.layer(1).forward(s.view(), pos.view(), as_view(len));
    auto tap1 = tap_norm ? by_hand.after_norm()->forward(s.view()) : s;
    asrkit::detail::seq::zero_padding(tap1.view(), len);
    CHECK(max_abs_diff(inf.intermediates[1], tap1) < 1e-12);
  }
  asrkit::EncoderOptions bad;
  bad.intermediate_layers = {4};
  REQUIRE_THROWS_ID((asrkit::Encoder<asrkit::TransformerBlock<double>>(3, 4, small_transformer(), bad, rng)),
                    asrkit::ValueError, "encoder.1");
}

TEST_CASE("Encoder: depth pruning equals running the kept layers by hand", "[nn][conformer][encoder][pruning]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(15);
  asrkit::EncoderOptions eo;
  eo.intermediate_layers = {2};
  asrkit::Encoder<asrkit::TransformerBlock<double>> enc(4, 4, small_transformer(), eo, rng);
  const auto x = randn({5, 2, 4}, 16);
  const std::vector<std::int32_t> len{5, 4};
  enc.set_layers({4, 1});
  const auto out = enc.forward(x.view(), as_view(len));
  Tensor<double> h = enc.positional_encoding().forward(x.view(), as_view(len));
  h = enc.layer(1).forward(h.view(), as_view(len));
  auto tap = enc.after_norm()->forward(h.view());  // layer 2 removed: the tap reads layer 1's output
  h = enc.layer(4).forward(h.view(), as_view(len));
  auto want = enc.after_norm()->forward(h.view());
  asrkit::detail::seq::zero_padding(want.view(), len);
  asrkit::detail::seq::zero_padding(tap.view(), len);
  CHECK(max_abs_diff(out.output, want) < 1e-12);
  CHECK(max_abs_diff(out.intermediates[0], tap) < 1e-12);
  // truncation to depth 2 equals the tap at layer 2 of the full model
  enc.set_depth(4);
  const auto full = enc.forward(x.view(), as_view(len));
  enc.set_depth(2);
  CHECK(max_abs_diff(enc.forward(x.view(), as_view(len)).output, full.intermediates[0]) < 1e-12);
  // and the pruned model trains: gradients against finite differences
  enc.set_layers({1, 3});
  check_layer_gradients(enc, x, [&](auto& e, const Tensor<double>& in) {
    return e.forward_train(in.view(), as_view(len)).output;
  });
  REQUIRE_THROWS_ID(enc.set_layers({0}), asrkit::ValueError, "encoder.4");
  REQUIRE_THROWS_ID(enc.set_depth(5), asrkit::ValueError, "encoder.4");
  auto fresh = enc;
  REQUIRE_THROWS_ID(fresh.backward(x.view()), asrkit::ValueError, "encoder.2");
  enc.forward_train(x.view(), as_view(len));
  REQUIRE_THROWS_ID(enc.backward(x.view(), {x, x}), asrkit::ShapeError, "encoder.3");
  REQUIRE_THROWS_ID(enc.backward(randn({4, 2, 4}, 1).view()), asrkit::ShapeError, "encoder_block.2");
}

TEST_CASE("FusionFormer encoder has no LayerNorm anywhere and trains", "[nn][conformer][encoder][gradcheck]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(17);
  asrkit::Encoder<asrkit::FusionFormerBlock<double>> enc(2, 4, small_conformer(), {}, rng);
  CHECK(enc.after_norm() == nullptr);
  enc.for_each_parameter([&](const std::string& n, auto&) { CHECK(n.find("norm_f") == std::string::npos); });
  const auto x = randn({5, 2, 4}, 18);
  const std::vector<std::int32_t> len{5, 4};
  check_layer_gradients(enc, x, [&](auto& e, const Tensor<double>& in) {
    return e.forward_train(in.view(), as_view(len)).output;
  });
}

TEST_CASE("Streaming: causal convolution + chunk mask make a frame independent of later chunks", "[nn][conformer][streaming]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(19);
  auto o = small_conformer();
  o.causal = true;
  o.kernel = 5;
  const auto mask = asrkit::AttentionMask::chunked(3);
  for (bool fusion : {false, true}) {
    INFO("fusion " << fusion);
    asrkit::EncoderOptions eo;
    eo.intermediate_layers = {1};
    std::optional<asrkit::Encoder<asrkit::ConformerBlock<double>>> conf;
    std::optional<asrkit::Encoder<asrkit::FusionFormerBlock<double>>> fuse;
    if (fusion) fuse.emplace(2, 4, o, eo, rng);
    else conf.emplace(2, 4, o, eo, rng);
    auto run = [&](const Tensor<double>& in) {
      return fusion ? fuse->forward(in.view(), {}, mask).output : conf->forward(in.view(), {}, mask).output;
    };
    auto x = randn({12, 2, 4}, 20);
    const auto y = run(x);
    for (index_t chunk = 0; chunk < 3; ++chunk) {
      auto z = x;
      for (index_t t = 3 * (chunk + 1); t < 12; ++t)
        for (index_t j = 0; j < 8; ++j) z.data()[t * 8 + j] += 1.0 + static_cast<double>(j);
      const auto yz = run(z);
      double same = 0, later = 0;
      for (index_t t = 0; t < 12; ++t)
        for (index_t j = 0; j < 8; ++j) {
          const double d = std::fabs(y.data()[t * 8 + j] - yz.data()[t * 8 + j]);
          if (t < 3 * (chunk + 1)) same = std::max(same, d);
          else later = std::max(later, d);
        }
      CHECK(same == 0.0);
      CHECK(later > 1e-3);
    }
  }
}
