// The module passes of transform/fusionformer.hpp and transform/fold_recurrent.hpp: after a few
// training steps on non-zero-mean data (running statistics far from 0 / 1) and random γ, β, each
// pass leaves no BN (no buffers, no BN names), reports every fold, and the folded module's
// inference output equals the unfolded one (float 1e-5, double 1e-12 of the output scale) with
// variable lengths (padded frames stay 0). Skipping the bias updates breaks every comparison.
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/conformer_conv.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/feed_forward.hpp>
#include <asrkit/nn/positional_encoding.hpp>
#include <asrkit/nn/recurrent.hpp>
#include <asrkit/nn/subsampling.hpp>
#include <asrkit/train/checkpoint.hpp>
#include <asrkit/transform/fold_recurrent.hpp>
#include <asrkit/transform/fusionformer.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "fold_test_util.hpp"

using namespace asrkit_fold_test;
using asrkit::as_view;
namespace tf = asrkit::transform;

namespace {

constexpr index_t kD = 8, kSteps = 9, kBatch = 3;
const std::vector<std::int32_t> kLengths{9, 6, 4};

/// The layer of every record gets its pre-fold bias back (zeros where it had none): the folded
/// weights with the old biases, i.e. a fold that skipped the bias update.
template <class Module>
Module with_stale_biases(const Module& folded, Module& unfolded, const tf::FoldReport& report,
                         const std::string& prefix, const std::string& bias_of_weight) {
  Module stale = folded;
  std::map<std::string, std::vector<double>> old;
  unfolded.for_each_parameter([&](const std::string& n, auto& p) {
    old[n] = std::vector<double>(p.value.data(), p.value.data() + p.value.numel());
  }, prefix);
  std::vector<std::string> biases;
  for (const auto& r : report.folded)
    biases.push_back(bias_of_weight.empty() ? r.layer + ".bias" : bias_of_weight + r.layer.substr(r.layer.find("_l0")));
  stale.for_each_parameter([&](const std::string& n, auto& p) {
    for (const auto& b : biases)
      if (n == b)
        for (index_t i = 0; i < p.value.numel(); ++i)
          p.value.data()[i] = static_cast<std::decay_t<decltype(*p.value.data())>>(
              old.count(n) ? old[n][static_cast<std::size_t>(i)] : 0.0);
  }, prefix);
  return stale;
}

/// Trains `m` for three steps, randomises its BNs' γ and β, folds it with fold(m, prefix) and
/// compares `infer` before and after. Returns the report.
template <class T, class Module, class Train, class Infer>
tf::FoldReport check_fold(Module m, Train train, Infer infer, const std::string& prefix,
                          std::size_t expected_folds, const std::string& bias_of_weight = "") {
  for (int step = 0; step < 3; ++step) train(m, step);
  randomize_norms(m, 21);
  const Tensor<T> want = infer(m);
  Module folded = m;
  const auto report = tf::fold_batch_norms(folded, prefix);
  CHECK(report.size() == expected_folds);
  for (const auto& r : report.folded) {
    CHECK(r.side == tf::FoldSide::post);
    CHECK(r.exact);
  }
  CHECK(buffer_names(folded).empty());  // no running statistics left
  const Tensor<T> got = infer(folded);
  CHECK(relative_diff(got, want) < tolerance<T>());
  if (got.rank() == 3 && got.dim(1) == kBatch)  // padded frames stay 0
    for (index_t t = 0; t < got.dim(0); ++t)
      for (index_t b = 0; b < kBatch; ++b)
        if (t >= kLengths[static_cast<std::size_t>(b)])
          for (index_t j = 0; j < got.dim(2); ++j) CHECK(got(t, b, j) == T(0));
  const Module stale = with_stale_biases(folded, m, report, prefix, bias_of_weight);
  CHECK(relative_diff(infer(stale), want) > 1e-3);
  return report;
}

template <class T>
Tensor<T> input(std::uint64_t seed) {
  return randn<T>(Shape{kSteps, kBatch, kD}, seed, 1.5, 2.0);
}

asrkit::ConformerBlockOptions block_options() {
  asrkit::ConformerBlockOptions o;
  o.heads = 2;
  o.ff = 16;
  o.kernel = 5;
  o.dropout = 0.0;
  return o;
}

bool any_name_contains(const std::vector<std::string>& names, const std::string& part) {
  for (const auto& n : names)
    if (n.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEMPLATE_TEST_CASE("fold pass: FeedForward, attention and convolution modules", "[transform][fold]", float, double) {
  using T = TestType;
  SingleThreadScope one_thread;
  asrkit::Rng rng(31);
  const auto x = input<T>(1);
  const auto lv = as_view(kLengths);

  asrkit::FeedForwardOptions fo;
  fo.hidden = 16;
  fo.activation = asrkit::ops::ActivationKind::relu;
  fo.batch_norm = true;
  const auto r = check_fold<T>(
      asrkit::FeedForward<T>(kD, fo, rng), [&](auto& m, int s) { m.forward_train(input<T>(10 + s).view(), lv); },
      [&](const auto& m) { return m.forward(x.view(), lv); }, "ff",
      2);
  CHECK(r.folded[0].norm == "ff.norm_1");
  CHECK(r.folded[0].layer == "ff.w_1");
  CHECK(r.folded[1].norm == "ff.norm_2");

  const auto pos = asrkit::RelPositionalEncoding<T>(kD).table(kSteps);
  for (bool bias : {true, false}) {
    asrkit::MultiHeadAttentionOptions ao;
    ao.projection_norm = asrkit::ProjectionNorm::batch_norm;
    ao.bias = bias;  // false: the pass gives linear_q/k/v/out biases
    const auto ra = check_fold<T>(
        asrkit::RelPositionMultiHeadAttention<T>(kD, 2, rng, ao),
        [&](auto& m, int s) { m.forward_train(input<T>(20 + s).view(), pos.view(), lv); },
        [&](const auto& m) { return m.forward(x.view(), pos.view(), lv); },
        "self_attn", 4);
    CHECK(ra.folded[3].norm == "self_attn.norm_out");
    CHECK(ra.folded[3].layer == "self_attn.linear_out");
  }

  for (bool fusion : {true, false})
    for (bool causal : {false, true}) {
      asrkit::ConformerConvolutionOptions co;
      co.kernel = 5;
      co.fusionformer = fusion;
      co.causal = causal;
      const auto rc = check_fold<T>(
          asrkit::ConformerConvolution<T>(kD, co, rng), [&](auto& m, int s) { m.forward_train(input<T>(30 + s).view(), lv); },
          [&](const auto& m) { return m.forward(x.view(), lv); }, "conv",
          fusion ? 3 : 1);
      CHECK(rc.folded[fusion ? 1 : 0].layer == "conv.depthwise_conv");
    }
  asrkit::ConformerConvolutionOptions co;
  co.fusionformer = true;
  co.kernel = 3;
  asrkit::ConformerConvolution<T> conv(kD, co, rng);
  tf::fold_batch_norms(conv);
  CHECK(conv.depthwise_norm() == nullptr);
  REQUIRE_THROWS_ID(conv.norm(), asrkit::ValueError, "conformer_conv.4");
  CHECK(state_names(conv) == std::vector<std::string>{"pointwise_conv1.weight", "pointwise_conv1.bias",
                                                      "depthwise_conv.weight", "depthwise_conv.bias",
                                                      "pointwise_conv2.weight", "pointwise_conv2.bias"});
  // A folded module still trains (forward_train / backward without BN).
  auto y = conv.forward_train(x.view(), lv);
  CHECK(relative_diff(y, conv.forward(x.view(), lv)) < tolerance<T>());
  CHECK(conv.backward(y.view()).shape() == x.shape());
}

TEMPLATE_TEST_CASE("fold pass: subsampling, blocks and encoders", "[transform][fold]", float, double) {
  using T = TestType;
  SingleThreadScope one_thread;
  asrkit::Rng rng(41);
  const auto lv = as_view(kLengths);

  // Conv2dSubsampling ×4 with BN after each conv: features [T, B, F], lengths in frames.
  asrkit::SubsamplingOptions so;
  so.fusionformer = true;
  const std::vector<std::int32_t> feat_lengths{19, 14, 11};
  const auto feats = randn<T>(Shape{19, kBatch, 12}, 2, 1.0, 2.0);
  const auto rs = check_fold<T>(
      asrkit::Conv2dSubsampling<T>(12, kD, so, rng),
      [&](auto& m, int s) { m.forward_train(randn<T>(feats.shape(), 50 + s, 1.0, 2.0).view(), as_view(feat_lengths)); },
      [&](const auto& m) { return m.forward(feats.view(), as_view(feat_lengths)); },
      "embed", 2);
  CHECK(rs.folded[1].norm == "embed.conv.4");
  CHECK(rs.folded[1].layer == "embed.conv.3");

  const auto x = input<T>(3);
  const auto pos = asrkit::RelPositionalEncoding<T>(kD).table(kSteps);
  check_fold<T>(asrkit::FusionFormerBlock<T>(kD, block_options(), rng),
                [&](auto& m, int s) { m.forward_train(input<T>(60 + s).view(), pos.view(), lv); },
                [&](const auto& m) { return m.forward(x.view(), pos.view(), lv); },
                "", 4 + 2 + 2 + 3);
  asrkit::ConformerBlock<T> conformer(kD, block_options(), rng);
  const auto rcb = check_fold<T>(conformer, [&](auto& m, int s) { m.forward_train(input<T>(70 + s).view(), pos.view(), lv); },
                                 [&](const auto& m) { return m.forward(x.view(), pos.view(), lv); },
                                 "encoders.0", 1);
  CHECK(rcb.folded[0].norm == "encoders.0.conv_module.norm");

  using FusionEncoder = asrkit::Encoder<asrkit::FusionFormerBlock<T>>;
  const auto re = check_fold<T>(FusionEncoder(2, kD, block_options(), {}, rng),
                                [&](auto& m, int s) { m.forward_train(input<T>(80 + s).view(), lv); },
                                [&](const auto& m) { return m.forward(x.view(), lv).output; },
                                "", 22);
  CHECK(re.folded[11].norm == "encoders.1.self_attn.norm_q");
  using ConformerEncoder = asrkit::Encoder<asrkit::ConformerBlock<T>>;
  check_fold<T>(ConformerEncoder(2, kD, block_options(), {}, rng), [&](auto& m, int s) { m.forward_train(input<T>(90 + s).view(), lv); },
                [&](const auto& m) { return m.forward(x.view(), lv).output; },
                "", 2);
}

TEMPLATE_TEST_CASE("fold pass: DS2 BN-RNN / BN-GRU input normalisation", "[transform][fold]", float, double) {
  using T = TestType;
  SingleThreadScope one_thread;
  asrkit::Rng rng(51);
  const auto x = input<T>(4);
  const auto lv = as_view(kLengths);
  asrkit::RNNOptions ro;  // the paper's layer: bidirectional, summed, one shared W and BN
  ro.activation = asrkit::RecurrentActivation::clipped_relu;
  ro.bidirectional = true;
  ro.merge = asrkit::RecurrentMerge::sum;
  ro.share_input_weights = true;
  const auto rr = check_fold<T>(
      asrkit::BatchNormRNN<T>(kD, 6, ro, rng), [&](auto& m, int s) { m.forward_train(input<T>(100 + s).view(), lv); },
      [&](const auto& m) { return m.forward(x.view(), lv); }, "rnn", 1,
      "rnn.bias_ih");
  CHECK(rr.folded[0].norm == "rnn.norm_ih_l0");
  asrkit::GRUOptions go;  // separate input weights: one BN per direction
  go.bidirectional = true;
  go.input_batch_norm = true;
  go.bias = false;
  asrkit::GRU<T> gru(kD, 5, go, rng);
  const auto rg = check_fold<T>(gru, [&](auto& m, int s) { m.forward_train(input<T>(110 + s).view(), lv); },
                                [&](const auto& m) { return m.forward(x.view(), lv); },
                                "", 2, "bias_ih");
  CHECK(rg.folded[1].layer == "weight_ih_l0_reverse");
  tf::fold_batch_norms(gru);
  const auto names = state_names(gru);
  CHECK(any_name_contains(names, "bias_ih_l0_reverse"));
  CHECK_FALSE(any_name_contains(names, "norm"));
  CHECK(tf::fold_batch_norms(gru).size() == 0);  // nothing left to fold
}

TEST_CASE("fold pass: a non-finite statistic anywhere leaves the whole encoder unfolded", "[transform][fold]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(61);
  asrkit::Encoder<asrkit::FusionFormerBlock<double>> enc(2, kD, block_options(), {}, rng);
  enc.layer(2).conv_module().pointwise_norm2()->running_mean()(3) = std::numeric_limits<double>::infinity();
  const auto before = buffer_names(enc);
  const Tensor<double> w1 = enc.layer(1).feed_forward().w_1().weight().value;
  REQUIRE_THROWS_ID(tf::fold_batch_norms(enc), asrkit::ValueError,
                    "encoders.1.conv_module.pointwise_norm2.running_mean[3] = inf is not finite");
  CHECK(buffer_names(enc) == before);
  CHECK(relative_diff(enc.layer(1).feed_forward().w_1().weight().value, w1) == 0);  // layer 1 untouched
}

namespace {
/// Subsampling front end + encoder under one state_dict ("embed.*", "encoders.*").
template <class T>
struct FusionFormerModel {
  asrkit::Conv2dSubsampling<T> embed;
  asrkit::Encoder<asrkit::FusionFormerBlock<T>> encoder;

  FusionFormerModel(asrkit::Rng& rng)
      : embed(12, kD, fusion_subsampling(), rng), encoder(2, kD, block_options(), {}, rng) {}
  static asrkit::SubsamplingOptions fusion_subsampling() {
    asrkit::SubsamplingOptions so;
    so.fusionformer = true;
    return so;
  }
  Tensor<T> forward(const Tensor<T>& feats, const std::vector<std::int32_t>& lengths) const {
    const auto sub = embed.forward(feats.view(), as_view(lengths));
    return encoder.forward(sub.view(), as_view(embed.output_lengths(lengths))).output;
  }
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    embed.for_each_parameter(f, asrkit::join_name(prefix, "embed"));
    encoder.for_each_parameter(f, prefix);
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    embed.for_each_buffer(f, asrkit::join_name(prefix, "embed"));
    encoder.for_each_buffer(f, prefix);
  }
};
}  // namespace

TEST_CASE("FusionFormer pass: a trained model folds, saves, and loads into a BN-free model", "[transform][fold]") {
  SingleThreadScope one_thread;
  asrkit::Rng rng(71);
  FusionFormerModel<float> model(rng);
  const std::vector<std::int32_t> lengths{23, 18, 13};
  for (int s = 0; s < 3; ++s) {
    const auto f = randn<float>(Shape{23, 3, 12}, 200 + s, 1.0, 2.0);
    const auto sub = model.embed.forward_train(f.view(), as_view(lengths));
    model.encoder.forward_train(sub.view(), as_view(model.embed.output_lengths(lengths)));
  }
  randomize_norms(model, 5);
  const auto feats = randn<float>(Shape{23, 3, 12}, 9, 1.0, 2.0);
  const auto want = model.forward(feats, lengths);
  const auto report = tf::fold_fusionformer(model.embed, model.encoder);
  CHECK(report.size() == 2 + 2 * 11);
  CHECK(report.folded[0].norm == "embed.conv.1");
  CHECK(report.folded[2].norm == "encoders.0.self_attn.norm_q");
  CHECK(relative_diff(model.forward(feats, lengths), want) < 1e-5);
  const auto names = state_names(model);
  CHECK_FALSE(any_name_contains(names, "norm"));
  CHECK(any_name_contains(names, "embed.conv.3.bias"));

  asrkit::SafetensorsWriter w;
  asrkit::add_state_dict(w, model);
  const auto file = asrkit::SafetensorsFile::parse(w.to_bytes());
  asrkit::Rng other(999);
  FusionFormerModel<float> fresh(other);  // BN-free config: build, fold once, load strictly
  REQUIRE_THROWS_ID(asrkit::load_state_dict(file, fresh), asrkit::ValueError, "checkpoint.1");
  tf::fold_fusionformer(fresh.embed, fresh.encoder);
  asrkit::load_state_dict(file, fresh);
  CHECK(relative_diff(fresh.forward(feats, lengths), want) < 1e-5);
}
