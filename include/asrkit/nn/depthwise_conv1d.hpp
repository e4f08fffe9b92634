// asrkit/nn/depthwise_conv1d.hpp - depthwise 1-D convolution over time on time-major sequences.
//
//   asrkit::Rng rng(1);
//   asrkit::DepthwiseConv1dOptions o;
//   o.kernel = 15; o.padding = asrkit::DepthwisePadding::causal;   // or centered / lookahead
//   asrkit::DepthwiseConv1d<float> dw(256, o, rng);   // weight [256, 1, 15], bias [256]
//   auto y  = dw.forward_train(x);                    // x [T, B, 256] -> y [T, B, 256]
//   auto dx = dw.backward(dy);                        // adds to weight().grad, bias().grad
//
// The layer of ops/depthwise_conv1d.hpp: torch.nn.Conv1d(C, C, k, groups=C) read on [T, B, C]
// (state-dict names "weight" [C, 1, k] and "bias" [C]). The Conformer convolution module uses
// it centered (Gulati et al. 2020, Fig. 2) or causal (streaming); DS2's row convolution is the
// look-ahead case (SPECS §3.9). The layer knows nothing about lengths: callers zero padded
// frames first (frames t >= length are then zeros, like the zero padding past the end).
#pragma once

#include <string_view>
#include <type_traits>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/depthwise_conv1d.hpp>

namespace asrkit {

/// Where the k − 1 zero frames go: split around the frame (centered), all before it (causal:
/// no future frames), all after it (lookahead: no past frames).
enum class DepthwisePadding { centered, causal, lookahead };

struct DepthwiseConv1dOptions {
  index_t kernel = 15;
  DepthwisePadding padding = DepthwisePadding::centered;
  bool bias = true;

  ops::DepthwiseConv1dParams params() const {
    switch (padding) {
      case DepthwisePadding::causal: return ops::DepthwiseConv1dParams::causal(kernel);
      case DepthwisePadding::lookahead: return ops::DepthwiseConv1dParams::lookahead(kernel);
      case DepthwisePadding::centered: break;
    }
    return ops::DepthwiseConv1dParams::centered(kernel);
  }
};

template <class T>
class DepthwiseConv1d {
  static_assert(std::is_floating_point_v<T>, "DepthwiseConv1d<T>: T must be float or double");

 public:
  /// PyTorch's default init (fan_in = k) drawn from `rng`.
  DepthwiseConv1d(index_t channels, const DepthwiseConv1dOptions& o, Rng& rng)
      : channels_(channels), params_(o.params()), has_bias_(o.bias) {
    params_.check("DepthwiseConv1d");
    if (channels < 1)
      throw ValueError("depthwise_conv.1", detail::str("DepthwiseConv1d: channels must be >= 1, got ",
                                                       channels));
    weight_ = Parameter<T>(Shape{channels, 1, params_.kernel});
    if (has_bias_) bias_ = Parameter<T>(Shape{channels});
    init::torch_default(weight_, has_bias_ ? &bias_ : nullptr, rng);
  }

  /// x [T, B, C] -> [T + left + right − k + 1, B, C] (T frames for the three paddings).
  Tensor<T> forward(TensorView<const T> x) const {
    Tensor<T> y(out_shape(x.shape()), uninitialized);
    ops::depthwise_conv1d_forward<T>(params_, x, weight_.value.view(), bias_view(), y.view());
    return y;
  }

  /// As forward; keeps a copy of x for backward.
  Tensor<T> forward_train(TensorView<const T> x) {
    x_ = Tensor<T>(x);
    cached_ = true;
    return forward(x_.view());
  }

  /// dL/dx; adds dL/dw and dL/db to the grads.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("depthwise_conv.4", "DepthwiseConv1d::backward: call forward_train first");
    Tensor<T> dx(x_.shape(), uninitialized);
    ops::depthwise_conv1d_backward<T>(params_, x_.view(), weight_.value.view(), dy, dx.view(),
                                      weight_.grad.view(),
                                      has_bias_ ? bias_.grad.view() : TensorView<T>());
    return dx;
  }

  /// Gives a layer built without bias a zero bias (outputs unchanged; state_dict gains "bias"),
  /// so that BN folding (transform/fold_batch_norm.hpp) has a b' to write. No-op with a bias.
  void enable_bias() {
    if (has_bias_) return;
    bias_ = Parameter<T>(Shape{channels_});
    has_bias_ = true;
  }

  void clear_cache() {
    x_ = Tensor<T>();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "weight"), weight_);
    if (has_bias_) f(join_name(prefix, "bias"), bias_);
  }
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  index_t channels() const noexcept { return channels_; }
  const ops::DepthwiseConv1dParams& params() const noexcept { return params_; }
  bool has_bias() const noexcept { return has_bias_; }
  Parameter<T>& weight() noexcept { return weight_; }  ///< [C, 1, k]
  Parameter<T>& bias() noexcept { return bias_; }      ///< [C]; empty without bias
  const Parameter<T>& weight() const noexcept { return weight_; }
  const Parameter<T>& bias() const noexcept { return bias_; }

 private:
  Shape out_shape(const Shape& x) const {
    if (x.rank() != 3 || x[2] != channels_)
      throw ShapeError("depthwise_conv.2", detail::str("DepthwiseConv1d: argument x: expected shape "
                                                       "[T, B, ", channels_, "], got ", x.str()));
    if (params_.out_steps(x[0]) < 1)
      throw ShapeError("depthwise_conv.3", detail::str("DepthwiseConv1d: ", x[0], " frames padded by ",
                                                       params_.left, " + ", params_.right,
                                                       " are shorter than the kernel ", params_.kernel));
    return Shape{params_.out_steps(x[0]), x[1], channels_};
  }
  TensorView<const T> bias_view() const {
    return has_bias_ ? TensorView<const T>(bias_.value.view()) : TensorView<const T>();
  }

  index_t channels_;
  ops::DepthwiseConv1dParams params_;
  bool has_bias_;
  Parameter<T> weight_, bias_;
  Tensor<T> x_;
  bool cached_ = false;
};

}  // namespace asrkit
