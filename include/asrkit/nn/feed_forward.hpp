// asrkit/nn/feed_forward.hpp - the position-wise feed-forward module of Transformer, Conformer
// and FusionFormer blocks.
//
//   asrkit::Rng rng(1);
//   asrkit::FeedForwardOptions o;                       // Conformer: Swish, ff = 4 D
//   o.hidden = 1024; o.dropout = 0.1;
//   asrkit::FeedForward<float> ffn(256, o, rng);        // w_1 [1024, 256], w_2 [256, 1024]
//   auto y  = ffn.forward_train(x, lengths);            // x [T, B, 256] -> y [T, B, 256]
//   auto dx = ffn.backward(dy);
//
//   o.activation = asrkit::ops::ActivationKind::relu;   // FusionFormer (SPECS §10.2):
//   o.batch_norm = true;                                // Linear → BN → ReLU → Dropout → Linear → BN
//
// Plain form (ESPnet PositionwiseFeedForward, names "w_1", "w_2"):
//   y = w_2( Dropout( act( w_1 x ) ) ),         act = Swish (Conformer) or ReLU (Transformer).
// FusionFormer form (names "w_1", "norm_1", "w_2", "norm_2"; SPECS §10.2):
//   y = BN_2( w_2( Dropout( ReLU( BN_1( w_1 x ) ) ) ) ),
// where BN is SequenceBatchNorm: statistics over the valid frames only (SPECS §3.3, §12.1).
// Padded frames (t >= lengths[b]) give y = 0 and dx = 0; the block applies the macaron ½.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/detail/sequence.hpp>
#include <asrkit/nn/dropout.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/activation.hpp>

namespace asrkit {

struct FeedForwardOptions {
  index_t hidden = 2048;                                    ///< inner width (ESPnet linear_units)
  ops::ActivationKind activation = ops::ActivationKind::swish;
  double dropout = 0.0;                                     ///< after the activation
  bool batch_norm = false;                                  ///< FusionFormer: BN after each Linear
  BatchNormOptions norm{};                                  ///< for batch_norm
  std::uint64_t seed = 0;                                   ///< dropout masks
};

template <class T>
class FeedForward {
  static_assert(std::is_floating_point_v<T>, "FeedForward<T>: T must be float or double");

 public:
  FeedForward(index_t d_model, const FeedForwardOptions& o, Rng& rng)
      : options_(checked(d_model, o)), w_1_(d_model, o.hidden, rng), w_2_(o.hidden, d_model, rng),
        dropout_(o.dropout, o.seed) {
    if (o.batch_norm) {
      norm_1_.emplace(o.hidden, o.norm);
      norm_2_.emplace(d_model, o.norm);
    }
  }

  /// Inference: y [T, B, D] for x [T, B, D] (empty lengths: every frame valid).
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) const {
    const auto len = detail::seq::checked_lengths(x, d_model(), lengths, "FeedForward");
    Tensor<T> h = w_1_.forward(x);
    if (norm_1_) h = norm_1_->forward(h, as_view(len));
    ops::activation(options_.activation, TensorView<const T>(h.view()), h.view());
    Tensor<T> y = w_2_.forward(h);
    if (norm_2_) y = norm_2_->forward(y, as_view(len));
    detail::seq::zero_padding(y.view(), len);
    return y;
  }

  /// Training: batch statistics in the BNs, dropout; caches what backward needs.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    lengths_ = detail::seq::checked_lengths(x, d_model(), lengths, "FeedForward");
    pre_act_ = w_1_.forward_train(x);
    if (norm_1_) pre_act_ = norm_1_->forward_train(std::move(pre_act_), as_view(lengths_));
    act_ = Tensor<T>(pre_act_.shape(), uninitialized);
    ops::activation(options_.activation, TensorView<const T>(pre_act_.view()), act_.view());
    // w_2 borrows act_, which this layer keeps until its own backward anyway (no copy).
    Tensor<T> y = options_.dropout > 0 ? w_2_.forward_train(dropout_.forward_train(act_))
                                       : w_2_.forward_train(borrow(act_));
    if (norm_2_) y = norm_2_->forward_train(std::move(y), as_view(lengths_));
    detail::seq::zero_padding(y.view(), lengths_);
    cached_ = true;
    return y;
  }

  /// dL/dx (0 on padded frames); adds to every parameter gradient.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_) throw ValueError("feed_forward.2", "FeedForward::backward: call forward_train first");
    if (dy.shape() != Shape{pre_act_.dim(0), pre_act_.dim(1), d_model()})
      throw ShapeError("feed_forward.3", detail::str("FeedForward::backward: argument dy: expected shape [",
                                                     pre_act_.dim(0), ", ", pre_act_.dim(1), ", ",
                                                     d_model(), "], got ", dy.shape().str()));
    Tensor<T> g(dy);
    detail::seq::zero_padding(g.view(), lengths_);  // padded outputs were set to 0
    if (norm_2_) g = norm_2_->backward(g);
    g = w_2_.backward(g);
    if (options_.dropout > 0) g = dropout_.backward(g);
    Tensor<T> dh(g.shape(), uninitialized);
    ops::activation_backward(options_.activation, TensorView<const T>(pre_act_.view()),
                             TensorView<const T>(act_.view()), TensorView<const T>(g.view()), dh.view());
    if (norm_1_) dh = norm_1_->backward(dh);
    return w_1_.backward(dh);
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    visit_parameters(w_1_, f, join_name(prefix, "w_1"));
    if (norm_1_) visit_parameters(*norm_1_, f, join_name(prefix, "norm_1"));
    visit_parameters(w_2_, f, join_name(prefix, "w_2"));
    if (norm_2_) visit_parameters(*norm_2_, f, join_name(prefix, "norm_2"));
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    if (norm_1_) visit_buffers(*norm_1_, f, join_name(prefix, "norm_1"));
    if (norm_2_) visit_buffers(*norm_2_, f, join_name(prefix, "norm_2"));
  }

  index_t d_model() const noexcept { return w_1_.in_features(); }
  const FeedForwardOptions& options() const noexcept { return options_; }
  Linear<T>& w_1() noexcept { return w_1_; }
  Linear<T>& w_2() noexcept { return w_2_; }
  /// The FusionFormer BNs (batch_norm = true only).
  SequenceBatchNorm<T>* norm_1() noexcept { return norm_1_ ? &*norm_1_ : nullptr; }
  SequenceBatchNorm<T>* norm_2() noexcept { return norm_2_ ? &*norm_2_ : nullptr; }
  /// Deletes norm_1 and norm_2 (forward then runs w_1 → ReLU → w_2; state_dict loses their
  /// names). For transform::fold_batch_norms, after it folded them into w_1 and w_2.
  void remove_batch_norms() {
    norm_1_.reset();
    norm_2_.reset();
    options_.batch_norm = false;
  }
  Dropout<T>& dropout() noexcept { return dropout_; }

 private:
  static const FeedForwardOptions& checked(index_t d_model, const FeedForwardOptions& o) {
    if (d_model < 1 || o.hidden < 1)
      throw ValueError("feed_forward.1", detail::str("FeedForward: d_model and hidden must be >= 1, got ",
                                                     d_model, " and ", o.hidden));
    if (o.activation != ops::ActivationKind::swish && o.activation != ops::ActivationKind::relu)
      throw ValueError("feed_forward.1", detail::str("FeedForward: activation must be swish or relu, got ",
                                                     ops::to_string(o.activation)));
    return o;
  }

  FeedForwardOptions options_;
  Linear<T> w_1_, w_2_;
  std::optional<SequenceBatchNorm<T>> norm_1_, norm_2_;
  Dropout<T> dropout_;
  // forward_train cache
  std::vector<std::int32_t> lengths_;
  Tensor<T> pre_act_, act_;
  bool cached_ = false;
};

}  // namespace asrkit
