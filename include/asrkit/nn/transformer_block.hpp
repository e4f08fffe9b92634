// asrkit/nn/transformer_block.hpp - the pre-LN Transformer encoder block (Vaswani et al. 2017 with
// ESPnet's normalize_before = true), with dropout and stochastic depth.
//
//   asrkit::Rng rng(1);
//   asrkit::TransformerBlockOptions o;                 // 4 heads, ff 2048, ReLU, dropout 0.1
//   asrkit::TransformerBlock<float> block(256, o, rng);
//   auto y  = block.forward_train(x, lengths);        // x [T, B, 256] -> y [T, B, 256]
//   auto yc = block.forward(x, lengths, asrkit::AttentionMask::chunked(16));   // streaming
//   auto dx = block.backward(dy);
//
// Equations (ESPnet TransformerEncoderLayer; SPECS §6 for f):
//   x ← x + f · Dropout( MHSA( LN_1(x) ) )
//   x ← x + f · Dropout( FFN( LN_2(x) ) )
// f = 1 at inference; in training the block is skipped with probability p (one coin per batch,
// or per item with DepthGranularity::sample) and f = 1 / (1 − p) when kept. Padded frames
// (t >= lengths[b]) give y = 0 and dx = 0. Names: "self_attn.*" (torch.nn.MultiheadAttention),
// "feed_forward.w_1/w_2.*", "norm1.*", "norm2.*" (LayerNorm, eps 1e-12 as ESPnet).
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/detail/residual.hpp>
#include <asrkit/nn/detail/sequence.hpp>
#include <asrkit/nn/feed_forward.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/positional_encoding.hpp>
#include <asrkit/nn/stochastic_depth.hpp>

namespace asrkit {

struct TransformerBlockOptions {
  index_t heads = 4;
  index_t ff = 2048;                                          ///< FFN inner width
  ops::ActivationKind activation = ops::ActivationKind::relu;  ///< of the FFN (ESPnet: ReLU)
  double dropout = 0.1;            ///< on each residual branch and inside the FFN
  double attention_dropout = 0.0;  ///< on the attention weights
  double skip_probability = 0.0;   ///< stochastic depth (asrkit::Encoder sets it per layer)
  DepthGranularity granularity = DepthGranularity::batch;
  std::uint64_t seed = 0;          ///< dropout masks and stochastic-depth coins
};

template <class T>
class TransformerBlock : public detail::StochasticDepthBlock<T> {
  static_assert(std::is_floating_point_v<T>, "TransformerBlock<T>: T must be float or double");

 public:
  using value_type = T;
  using Options = TransformerBlockOptions;
  /// asrkit::Encoder adds this encoding before the first block (x·sqrt(D) + PE).
  using PositionalEncoding = SinusoidalPositionalEncoding<T>;
  static constexpr bool relative_positions = false;
  static constexpr bool has_layer_norm = true;

  TransformerBlock(index_t d_model, const Options& o, Rng& rng)
      : self_attn_(d_model, o.heads, rng, attention_options(o)),
        feed_forward_(d_model, ffn_options(o), rng),
        mha_(d_model, true, o.dropout, Rng(o.seed, 2).next_u64(), T(1)),
        ffn_(d_model, true, o.dropout, Rng(o.seed, 3).next_u64(), T(1)) {
    this->set_skip_probability(o.skip_probability, o.granularity);
    depth_.rng = Rng(o.seed, 4);
  }

  /// Inference: no dropout, no skipping, no scaling.
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {},
                    AttentionMask mask = {}) const {
    const auto len = detail::seq::checked_lengths(x, d_model(), lengths, "TransformerBlock");
    Tensor<T> y(x);
    const auto lv = as_view(len);
    mha_.forward(y, [&](TensorView<const T> h) { return self_attn_.forward(h, lv, mask); });
    ffn_.forward(y, [&](TensorView<const T> h) { return feed_forward_.forward(h, lv); });
    detail::seq::zero_padding(y.view(), len);
    return y;
  }

  /// Training: dropout and stochastic depth; caches what backward needs.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {},
                          AttentionMask mask = {}) {
    lengths_ = detail::seq::checked_lengths(x, d_model(), lengths, "TransformerBlock");
    const auto& factor = depth_.draw(x.dim(1));
    Tensor<T> y(x);
    shape_ = y.shape();
    if (!depth_.skipped) {
      const auto lv = as_view(lengths_);
      mha_.forward_train(y, factor, [&](TensorView<const T> h) { return self_attn_.forward_train(h, lv, mask); });
      ffn_.forward_train(y, factor, [&](TensorView<const T> h) { return feed_forward_.forward_train(h, lv); });
    }
    detail::seq::zero_padding(y.view(), lengths_);
    cached_ = true;
    return y;
  }

  /// dL/dx (0 on padded frames); adds to every parameter gradient.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_) throw ValueError("encoder_block.1", "TransformerBlock::backward: call forward_train first");
    Tensor<T> g = detail::seq::checked_gradient(dy, shape_, lengths_, "TransformerBlock");
    if (depth_.skipped) return g;
    const auto& factor = depth_.drop.factor;
    g = ffn_.backward(g, factor, [&](Tensor<T> d) { return feed_forward_.backward(d); });
    g = mha_.backward(g, factor, [&](Tensor<T> d) { return self_attn_.backward(d); });
    detail::seq::zero_padding(g.view(), lengths_);
    return g;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    visit_parameters(self_attn_, f, join_name(prefix, "self_attn"));
    visit_parameters(feed_forward_, f, join_name(prefix, "feed_forward"));
    visit_parameters(mha_, f, join_name(prefix, "norm1"));
    visit_parameters(ffn_, f, join_name(prefix, "norm2"));
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    visit_buffers(self_attn_, f, join_name(prefix, "self_attn"));
    visit_buffers(feed_forward_, f, join_name(prefix, "feed_forward"));
  }

  index_t d_model() const noexcept { return feed_forward_.d_model(); }
  MultiHeadAttention<T>& self_attn() noexcept { return self_attn_; }
  FeedForward<T>& feed_forward() noexcept { return feed_forward_; }
  LayerNorm<T>& norm1() noexcept { return *mha_.norm(); }
  LayerNorm<T>& norm2() noexcept { return *ffn_.norm(); }

 private:
  static MultiHeadAttentionOptions attention_options(const Options& o) {
    MultiHeadAttentionOptions a;
    a.dropout = o.attention_dropout;
    return a;
  }
  static FeedForwardOptions ffn_options(const Options& o) {
    FeedForwardOptions f;
    f.hidden = o.ff;
    f.activation = o.activation;
    f.dropout = o.dropout;
    f.seed = Rng(o.seed, 1).next_u64();
    return f;
  }

  MultiHeadAttention<T> self_attn_;
  FeedForward<T> feed_forward_;
  detail::ResidualStep<T> mha_, ffn_;
  using detail::StochasticDepthBlock<T>::depth_;
  std::vector<std::int32_t> lengths_;
  Shape shape_;
  bool cached_ = false;
};

}  // namespace asrkit
