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
#include <asrkit/nn/detail/weight_bias.hpp>
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
class DepthwiseConv1d : public detail::WeightAndBias<T> {
  static_assert(std::is_floating_point_v<T>, "DepthwiseConv1d<T>: T must be float or double");

 public:
  /// PyTorch's default init (fan_in = k) drawn from `rng`.
  DepthwiseConv1d(index_t channels, const DepthwiseConv1dOptions& o, Rng& rng)
      : channels_(channels), params_(o.params()) {
    params_.check("DepthwiseConv1d");
    if (channels < 1)
      throw ValueError("depthwise_conv.1", detail::str("DepthwiseConv1d: channels must be >= 1, got ",
                                                       channels));
    this->make_parameters(Shape{channels, 1, params_.kernel}, o.bias);
    init::torch_default(weight_, this->bias_or_null(), rng);
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
                                      weight_.grad.view(), this->bias_grad_view());
    return dx;
  }

  void clear_cache() {
    x_ = Tensor<T>();
    cached_ = false;
  }

  index_t channels() const noexcept { return channels_; }
  const ops::DepthwiseConv1dParams& params() const noexcept { return params_; }

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

  index_t channels_;
  ops::DepthwiseConv1dParams params_;
  using detail::WeightAndBias<T>::weight_;
  using detail::WeightAndBias<T>::bias_view;
  Tensor<T> x_;
  bool cached_ = false;
};

}  // namespace asrkit
