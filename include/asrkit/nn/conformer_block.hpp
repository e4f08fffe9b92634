// asrkit/nn/conformer_block.hpp - the Conformer block (Gulati et al. 2020) and the LayerNorm-free
// FusionFormer block (Song et al. 2022; SPECS §10), with dropout and stochastic depth.
//
//   asrkit::Rng rng(1);
//   asrkit::ConformerBlockOptions o;                  // 4 heads, ff 2048, kernel 15
//   asrkit::ConformerBlock<float> block(256, o, rng);
//   asrkit::RelPositionalEncoding<float> pe(256);
//   auto [xs, pos] = pe.forward(x, lengths);          // x·sqrt(D) and pos_emb [2T − 1, D]
//   auto y  = block.forward_train(xs, pos, lengths);  // [T, B, 256] -> [T, B, 256]
//   auto dx = block.backward(dy);
//   asrkit::FusionFormerBlock<float> fusion(256, o, rng);   // same interface, no LayerNorm
//
// Conformer (macaron; ESPnet conformer EncoderLayer with normalize_before, SPECS §10.2):
//   x ← x + ½ f · Dropout( FFN_m( LN_ffm(x) ) )        FFN: Swish
//   x ← x + f · Dropout( RelMHSA( LN_mha(x), pos_emb ) )
//   x ← x + f · Dropout( Conv( LN_conv(x) ) )          GLU, depthwise, BN, Swish
//   x ← x + ½ f · Dropout( FFN( LN_ff(x) ) )
//   y = LN_final(x)
// FusionFormer (SPECS §10.2): the same residual structure with every LayerNorm (norm_final
// included) deleted, FFN = Linear → BN → ReLU → Dropout → Linear → BN, the attention with a BN
// after linear_q/k/v/out, and the convolution module in its BN/ReLU form.
// f = 1 at inference; in training the block is skipped with probability p and f = 1 / (1 − p)
// when kept (SPECS §6; per item with DepthGranularity::sample, where a skipped item's output is
// its input). Padded frames give y = 0 and dx = 0. Names as ESPnet: "feed_forward_macaron",
// "self_attn", "conv_module", "feed_forward", "norm_ff_macaron", "norm_mha", "norm_conv",
// "norm_ff", "norm_final" (LayerNorm eps 1e-12).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/conformer_conv.hpp>
#include <asrkit/nn/detail/residual.hpp>
#include <asrkit/nn/detail/sequence.hpp>
#include <asrkit/nn/feed_forward.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/positional_encoding.hpp>
#include <asrkit/nn/stochastic_depth.hpp>

namespace asrkit {

struct ConformerBlockOptions {
  index_t heads = 4;
  index_t ff = 2048;               ///< FFN inner width
  index_t kernel = 15;             ///< depthwise conv kernel (odd)
  bool causal = false;             ///< causal depthwise conv (streaming; pair with a chunk mask)
  double dropout = 0.1;            ///< on each residual branch and inside the FFNs
  double attention_dropout = 0.0;  ///< on the attention weights
  double skip_probability = 0.0;   ///< stochastic depth (asrkit::Encoder sets it per layer)
  DepthGranularity granularity = DepthGranularity::batch;
  std::uint64_t seed = 0;          ///< dropout masks and stochastic-depth coins
  BatchNormOptions norm{};         ///< every BatchNorm of the block
};

template <class T>
class ConformerBlock : public detail::StochasticDepthBlock<T> {
  static_assert(std::is_floating_point_v<T>, "ConformerBlock<T>: T must be float or double");

 public:
  using value_type = T;
  using Options = ConformerBlockOptions;
  /// asrkit::Encoder scales x by sqrt(D) and passes the relative table pos_emb to every block.
  using PositionalEncoding = RelPositionalEncoding<T>;
  static constexpr bool relative_positions = true;
  static constexpr bool has_layer_norm = true;

  ConformerBlock(index_t d_model, const Options& o, Rng& rng) : ConformerBlock(d_model, o, rng, false) {}

  /// Inference: no dropout, no skipping, no scaling. pos_emb [2T − 1, D].
  Tensor<T> forward(TensorView<const T> x, TensorView<const T> pos_emb,
                    TensorView<const std::int32_t> lengths = {}, AttentionMask mask = {}) const {
    const auto len = detail::seq::checked_lengths(x, d_model(), lengths, name());
    const auto lv = as_view(len);
    Tensor<T> y(x);
    ff_macaron_.forward(y, [&](TensorView<const T> h) { return feed_forward_macaron_.forward(h, lv); });
    mha_.forward(y, [&](TensorView<const T> h) { return self_attn_.forward(h, pos_emb, lv, mask); });
    conv_.forward(y, [&](TensorView<const T> h) { return conv_module_.forward(h, lv); });
    ff_.forward(y, [&](TensorView<const T> h) { return feed_forward_.forward(h, lv); });
    if (norm_final_) y = norm_final_->forward(y);
    detail::seq::zero_padding(y.view(), len);
    return y;
  }

  /// Training: dropout, batch statistics, stochastic depth; caches what backward needs.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const T> pos_emb,
                          TensorView<const std::int32_t> lengths = {}, AttentionMask mask = {}) {
    lengths_ = detail::seq::checked_lengths(x, d_model(), lengths, name());
    const auto lv = as_view(lengths_);
    const auto& factor = depth_.draw(x.dim(1));
    Tensor<T> y(x);
    shape_ = y.shape();
    if (!depth_.skipped) {
      ff_macaron_.forward_train(y, factor, [&](TensorView<const T> h) { return feed_forward_macaron_.forward_train(h, lv); });
      mha_.forward_train(y, factor, [&](TensorView<const T> h) { return self_attn_.forward_train(h, pos_emb, lv, mask); });
      conv_.forward_train(y, factor, [&](TensorView<const T> h) { return conv_module_.forward_train(h, lv); });
      ff_.forward_train(y, factor, [&](TensorView<const T> h) { return feed_forward_.forward_train(h, lv); });
      if (norm_final_) {
        y = norm_final_->forward_train(std::move(y));  // y's storage becomes its cache: no x̂ copy
        if (depth_.drop.any_skipped()) detail::keep_skipped_items(y, x, factor);
      }
    }
    detail::seq::zero_padding(y.view(), lengths_);
    cached_ = true;
    return y;
  }

  /// dL/dx (0 on padded frames); adds to every parameter gradient.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_) throw ValueError("encoder_block.1", detail::str(name(), "::backward: call forward_train first"));
    Tensor<T> g = detail::seq::checked_gradient(dy, shape_, lengths_, name());
    if (depth_.skipped) return g;
    const auto& factor = depth_.drop.factor;
    std::optional<Tensor<T>> passed;  // skipped items bypass norm_final
    if (norm_final_) {
      if (depth_.drop.any_skipped()) passed = detail::take_skipped_items(g, factor);
      g = norm_final_->backward(g);
    }
    g = ff_.backward(g, factor, [&](Tensor<T> d) { return feed_forward_.backward(d); });
    g = conv_.backward(g, factor, [&](Tensor<T> d) { return conv_module_.backward(d); });
    g = mha_.backward(g, factor, [&](Tensor<T> d) { return self_attn_.backward(d); });
    g = ff_macaron_.backward(g, factor, [&](Tensor<T> d) { return feed_forward_macaron_.backward(d); });
    if (passed) detail::seq::add_to(g.view(), TensorView<const T>(passed->view()));
    detail::seq::zero_padding(g.view(), lengths_);
    return g;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    visit_parameters(self_attn_, f, join_name(prefix, "self_attn"));
    visit_parameters(feed_forward_, f, join_name(prefix, "feed_forward"));
    visit_parameters(feed_forward_macaron_, f, join_name(prefix, "feed_forward_macaron"));
    visit_parameters(conv_module_, f, join_name(prefix, "conv_module"));
    visit_parameters(ff_, f, join_name(prefix, "norm_ff"));
    visit_parameters(mha_, f, join_name(prefix, "norm_mha"));
    visit_parameters(ff_macaron_, f, join_name(prefix, "norm_ff_macaron"));
    visit_parameters(conv_, f, join_name(prefix, "norm_conv"));
    if (norm_final_) visit_parameters(*norm_final_, f, join_name(prefix, "norm_final"));
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    visit_buffers(self_attn_, f, join_name(prefix, "self_attn"));
    visit_buffers(feed_forward_, f, join_name(prefix, "feed_forward"));
    visit_buffers(feed_forward_macaron_, f, join_name(prefix, "feed_forward_macaron"));
    visit_buffers(conv_module_, f, join_name(prefix, "conv_module"));
  }

  index_t d_model() const noexcept { return feed_forward_.d_model(); }
  RelPositionMultiHeadAttention<T>& self_attn() noexcept { return self_attn_; }
  FeedForward<T>& feed_forward() noexcept { return feed_forward_; }
  FeedForward<T>& feed_forward_macaron() noexcept { return feed_forward_macaron_; }
  ConformerConvolution<T>& conv_module() noexcept { return conv_module_; }
  /// The block's LayerNorms (nullptr in a FusionFormer block).
  LayerNorm<T>* norm_ff_macaron() noexcept { return ff_macaron_.norm(); }
  LayerNorm<T>* norm_mha() noexcept { return mha_.norm(); }
  LayerNorm<T>* norm_conv() noexcept { return conv_.norm(); }
  LayerNorm<T>* norm_ff() noexcept { return ff_.norm(); }
  LayerNorm<T>* norm_final() noexcept { return norm_final_ ? &*norm_final_ : nullptr; }

 protected:
  ConformerBlock(index_t d_model, const Options& o, Rng& rng, bool fusion)
      : fusion_(fusion),
        self_attn_(d_model, o.heads, rng, attention_options(o, fusion)),
        feed_forward_(d_model, ffn_options(o, fusion, 1), rng),
        feed_forward_macaron_(d_model, ffn_options(o, fusion, 2), rng),
        conv_module_(d_model, conv_options(o, fusion), rng),
        ff_macaron_(d_model, !fusion, o.dropout, Rng(o.seed, 3).next_u64(), T(0.5)),
        mha_(d_model, !fusion, o.dropout, Rng(o.seed, 4).next_u64(), T(1)),
        conv_(d_model, !fusion, o.dropout, Rng(o.seed, 5).next_u64(), T(1)),
        ff_(d_model, !fusion, o.dropout, Rng(o.seed, 6).next_u64(), T(0.5)) {
    if (!fusion) norm_final_.emplace(d_model, LayerNormOptions{1e-12, true});
    this->set_skip_probability(o.skip_probability, o.granularity);
    depth_.rng = Rng(o.seed, 7);
  }

 private:
  const char* name() const { return fusion_ ? "FusionFormerBlock" : "ConformerBlock"; }

  static MultiHeadAttentionOptions attention_options(const Options& o, bool fusion) {
    MultiHeadAttentionOptions a;
    a.dropout = o.attention_dropout;
    if (fusion) a.projection_norm = ProjectionNorm::batch_norm;
    a.norm = o.norm;
    return a;
  }
  static FeedForwardOptions ffn_options(const Options& o, bool fusion, std::uint64_t stream) {
    FeedForwardOptions f;
    f.hidden = o.ff;
    f.activation = fusion ? ops::ActivationKind::relu : ops::ActivationKind::swish;
    f.dropout = o.dropout;
    f.batch_norm = fusion;
    f.norm = o.norm;
    f.seed = Rng(o.seed, stream).next_u64();
    return f;
  }
  static ConformerConvolutionOptions conv_options(const Options& o, bool fusion) {
    ConformerConvolutionOptions c;
    c.kernel = o.kernel;
    c.causal = o.causal;
    c.fusionformer = fusion;
    c.norm = o.norm;
    return c;
  }

  bool fusion_;
  RelPositionMultiHeadAttention<T> self_attn_;
  FeedForward<T> feed_forward_, feed_forward_macaron_;
  ConformerConvolution<T> conv_module_;
  detail::ResidualStep<T> ff_macaron_, mha_, conv_, ff_;
  std::optional<LayerNorm<T>> norm_final_;
  using detail::StochasticDepthBlock<T>::depth_;
  std::vector<std::int32_t> lengths_;
  Shape shape_;
  bool cached_ = false;
};

/// The FusionFormer block (SPECS §10.2): ConformerBlock's structure without any LayerNorm, BN
/// after every linear and conv, ReLU for Swish and GLU. Same interface and options.
template <class T>
class FusionFormerBlock : public ConformerBlock<T> {
 public:
  static constexpr bool has_layer_norm = false;  ///< asrkit::Encoder adds no after_norm either

  FusionFormerBlock(index_t d_model, const ConformerBlockOptions& o, Rng& rng)
      : ConformerBlock<T>(d_model, o, rng, true) {}
};

}  // namespace asrkit
