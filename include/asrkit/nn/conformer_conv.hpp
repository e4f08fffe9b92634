// asrkit/nn/conformer_conv.hpp - the convolution module of Conformer (Gulati et al. 2020, Fig. 2)
// and its FusionFormer form (SPECS §10.2).
//
//   asrkit::Rng rng(1);
//   asrkit::ConformerConvolutionOptions o;
//   o.kernel = 15;                                        // odd; o.causal = true for streaming
//   asrkit::ConformerConvolution<float> conv(256, o, rng);
//   auto y  = conv.forward_train(x, lengths);             // x [T, B, 256] -> y [T, B, 256]
//   auto dx = conv.backward(dy);
//
// Conformer (ESPnet / WeNet ConvolutionModule; names "pointwise_conv1" [2D, D, 1],
// "depthwise_conv" [D, 1, k], "norm" (BatchNorm1d), "pointwise_conv2" [D, D, 1]):
//   y = PW2( Swish( BN( DW( GLU( PW1 x ) ) ) ) )
// FusionFormer (GLU and Swish replaced by ReLU, a BN after every conv; adds "pointwise_norm1",
// "pointwise_norm2"):
//   y = BN_2( PW2( ReLU( BN( DW( ReLU( BN_1( PW1 x ) ) ) ) ) ) ),   PW1: D -> D
// Every BN is a SequenceBatchNorm (statistics over valid frames only, SPECS §3.3, §10.2).
// transform::fold_batch_norms folds them into the convs and deletes them (remove_batch_norms);
// the module then runs the same chain without any normalisation.
// The depthwise conv runs over time with k − 1 zero frames split around the frame, or all on the
// left when causal (frame t then depends on no frame after t). Padded frames are zeroed right
// before it, so padding never leaks into valid frames; padded outputs and input gradients are 0.
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
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/depthwise_conv1d.hpp>
#include <asrkit/nn/detail/sequence.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/pointwise_conv1d.hpp>
#include <asrkit/ops/activation.hpp>

namespace asrkit {

struct ConformerConvolutionOptions {
  index_t kernel = 15;      ///< odd (ESPnet cnn_module_kernel; 31 in the Conformer paper)
  bool causal = false;      ///< streaming: left padding k − 1, no look-ahead
  bool fusionformer = false;  ///< the FusionFormer form (ReLU, BN after every conv)
  BatchNormOptions norm{};
};

template <class T>
class ConformerConvolution {
  static_assert(std::is_floating_point_v<T>, "ConformerConvolution<T>: T must be float or double");

 public:
  ConformerConvolution(index_t channels, const ConformerConvolutionOptions& o, Rng& rng)
      : options_(checked(channels, o)),
        pointwise_conv1_(channels, o.fusionformer ? channels : 2 * channels, rng),
        depthwise_conv_(channels, depthwise_options(o), rng),
        norm_(std::in_place, channels, o.norm),
        pointwise_conv2_(channels, channels, rng) {
    if (o.fusionformer) {
      pointwise_norm1_.emplace(channels, o.norm);
      pointwise_norm2_.emplace(channels, o.norm);
    }
  }

  /// Inference (running BN statistics): y [T, B, D] for x [T, B, D].
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) const {
    const auto len = detail::seq::checked_lengths(x, channels(), lengths, "ConformerConvolution");
    Tensor<T> a = pointwise_conv1_.forward(x);
    Tensor<T> g = gate_forward(std::move(a), len, [&](Tensor<T> v) -> Tensor<T> {
      if (pointwise_norm1_) return pointwise_norm1_->forward(v, as_view(len));
      return v;  // folded: no copy
    });
    Tensor<T> n = depthwise_conv_.forward(g);
    if (norm_) n = norm_->forward(n, as_view(len));
    ops::activation(act(), TensorView<const T>(n.view()), n.view());
    Tensor<T> y = pointwise_conv2_.forward(n);
    if (pointwise_norm2_) y = pointwise_norm2_->forward(y, as_view(len));
    detail::seq::zero_padding(y.view(), len);
    return y;
  }

  /// Training: batch statistics in the BNs; caches what backward needs.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    lengths_ = detail::seq::checked_lengths(x, channels(), lengths, "ConformerConvolution");
    const auto len = as_view(lengths_);
    gate_in_ = pointwise_conv1_.forward_train(x);
    Tensor<T> g = gate_forward(gate_in_, lengths_, [&](const Tensor<T>& v) {
      if (pointwise_norm1_) gate_in_ = pointwise_norm1_->forward_train(v, len);
      return gate_in_;  // ReLU reads its input for the mask
    });
    act_in_ = depthwise_conv_.forward_train(g);
    if (norm_) act_in_ = norm_->forward_train(std::move(act_in_), len);
    Tensor<T> s(act_in_.shape(), uninitialized);
    ops::activation(act(), TensorView<const T>(act_in_.view()), s.view());
    Tensor<T> y = pointwise_conv2_.forward_train(std::move(s));
    if (pointwise_norm2_) y = pointwise_norm2_->forward_train(std::move(y), len);
    detail::seq::zero_padding(y.view(), lengths_);
    cached_ = true;
    return y;
  }

  /// dL/dx (0 on padded frames); adds to every parameter gradient.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("conformer_conv.2", "ConformerConvolution::backward: call forward_train first");
    if (dy.shape() != act_in_.shape())
      throw ShapeError("conformer_conv.3", detail::str("ConformerConvolution::backward: argument dy: "
                                                       "expected shape ", act_in_.shape().str(),
                                                       ", got ", dy.shape().str()));
    Tensor<T> g(dy);
    detail::seq::zero_padding(g.view(), lengths_);  // padded outputs were set to 0
    if (pointwise_norm2_) g = pointwise_norm2_->backward(g);
    g = pointwise_conv2_.backward(g);
    // Swish' needs its input; ReLU' only the sign of it (y > 0 iff x > 0), so both read act_in_.
    ops::activation_backward(act(), TensorView<const T>(act_in_.view()),
                             TensorView<const T>(act_in_.view()), TensorView<const T>(g.view()),
                             g.view());
    if (norm_) g = norm_->backward(g);
    g = depthwise_conv_.backward(g);
    detail::seq::zero_padding(g.view(), lengths_);  // the gate's padded outputs were zeroed
    Tensor<T> da(gate_in_.shape(), uninitialized);
    if (options_.fusionformer) {
      ops::activation_backward(ops::ActivationKind::relu, TensorView<const T>(),
                               TensorView<const T>(gate_in_.view()), TensorView<const T>(g.view()),
                               da.view());
      if (pointwise_norm1_) da = pointwise_norm1_->backward(da);
    } else {
      ops::glu_backward(TensorView<const T>(gate_in_.view()), TensorView<const T>(g.view()), da.view());
    }
    return pointwise_conv1_.backward(da);
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    visit_parameters(pointwise_conv1_, f, join_name(prefix, "pointwise_conv1"));
    if (pointwise_norm1_)
      visit_parameters(*pointwise_norm1_, f, join_name(prefix, "pointwise_norm1"));
    visit_parameters(depthwise_conv_, f, join_name(prefix, "depthwise_conv"));
    if (norm_) visit_parameters(*norm_, f, join_name(prefix, "norm"));
    visit_parameters(pointwise_conv2_, f, join_name(prefix, "pointwise_conv2"));
    if (pointwise_norm2_)
      visit_parameters(*pointwise_norm2_, f, join_name(prefix, "pointwise_norm2"));
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    if (pointwise_norm1_) visit_buffers(*pointwise_norm1_, f, join_name(prefix, "pointwise_norm1"));
    if (norm_) visit_buffers(*norm_, f, join_name(prefix, "norm"));
    if (pointwise_norm2_) visit_buffers(*pointwise_norm2_, f, join_name(prefix, "pointwise_norm2"));
  }

  index_t channels() const noexcept { return depthwise_conv_.channels(); }
  const ConformerConvolutionOptions& options() const noexcept { return options_; }
  PointwiseConv1d<T>& pointwise_conv1() noexcept { return pointwise_conv1_; }
  DepthwiseConv1d<T>& depthwise_conv() noexcept { return depthwise_conv_; }
  /// The BN after the depthwise conv (throws conformer_conv.4 once remove_batch_norms ran).
  SequenceBatchNorm<T>& norm() {
    if (!norm_)
      throw ValueError("conformer_conv.4", "ConformerConvolution::norm: the BN after the depthwise "
                                           "conv was folded away (remove_batch_norms)");
    return *norm_;
  }
  PointwiseConv1d<T>& pointwise_conv2() noexcept { return pointwise_conv2_; }
  /// The FusionFormer BNs after pointwise_conv1 / pointwise_conv2 (nullptr when absent).
  SequenceBatchNorm<T>* pointwise_norm1() noexcept { return pointwise_norm1_ ? &*pointwise_norm1_ : nullptr; }
  SequenceBatchNorm<T>* pointwise_norm2() noexcept { return pointwise_norm2_ ? &*pointwise_norm2_ : nullptr; }
  /// The BN after the depthwise conv (nullptr after remove_batch_norms).
  SequenceBatchNorm<T>* depthwise_norm() noexcept { return norm_ ? &*norm_ : nullptr; }
  /// Deletes every BN of the module (state_dict loses "norm.*", "pointwise_norm1.*",
  /// "pointwise_norm2.*"). For transform::fold_batch_norms, after it folded them into the convs.
  void remove_batch_norms() {
    pointwise_norm1_.reset();
    norm_.reset();
    pointwise_norm2_.reset();
  }

 private:
  static const ConformerConvolutionOptions& checked(index_t channels, const ConformerConvolutionOptions& o) {
    if (channels < 1 || o.kernel < 1 || o.kernel % 2 == 0)
      throw ValueError("conformer_conv.1", detail::str("ConformerConvolution: channels must be >= 1 and "
                                                       "kernel odd and >= 1, got channels ", channels,
                                                       ", kernel ", o.kernel));
    return o;
  }
  static DepthwiseConv1dOptions depthwise_options(const ConformerConvolutionOptions& o) {
    DepthwiseConv1dOptions d;
    d.kernel = o.kernel;
    d.padding = o.causal ? DepthwisePadding::causal : DepthwisePadding::centered;
    return d;
  }
  ops::ActivationKind act() const {
    return options_.fusionformer ? ops::ActivationKind::relu : ops::ActivationKind::swish;
  }

  // The gate after PW1: GLU over channels (Conformer) or BN_1 → ReLU (FusionFormer; `norm1`
  // runs BN_1, or passes its argument through once BN_1 is folded away, and returns its output);
  // padded frames zeroed for the depthwise conv.
  template <class A, class Norm1>
  Tensor<T> gate_forward(A&& a, const std::vector<std::int32_t>& len, Norm1&& norm1) const {
    Tensor<T> g;
    if (options_.fusionformer) {
      g = norm1(std::forward<A>(a));
      ops::activation(ops::ActivationKind::relu, TensorView<const T>(g.view()), g.view());
    } else {
      g = Tensor<T>(Shape{a.dim(0), a.dim(1), a.dim(2) / 2}, uninitialized);
      ops::glu(TensorView<const T>(a.view()), g.view());
    }
    detail::seq::zero_padding(g.view(), len);
    return g;
  }

  ConformerConvolutionOptions options_;
  PointwiseConv1d<T> pointwise_conv1_;
  std::optional<SequenceBatchNorm<T>> pointwise_norm1_;
  DepthwiseConv1d<T> depthwise_conv_;
  std::optional<SequenceBatchNorm<T>> norm_;
  PointwiseConv1d<T> pointwise_conv2_;
  std::optional<SequenceBatchNorm<T>> pointwise_norm2_;
  // forward_train cache: the gate's input (GLU) or output before ReLU (BN_1), the activation's input
  std::vector<std::int32_t> lengths_;
  Tensor<T> gate_in_, act_in_;
  bool cached_ = false;
};

}  // namespace asrkit
