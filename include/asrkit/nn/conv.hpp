// asrkit/nn/conv.hpp - Conv1d and Conv2d layers (cross-correlation with zero padding, as PyTorch).
//
//   asrkit::Rng rng(1);
//   asrkit::Conv2dOptions o;                      // DS2's first 2-D conv over [B, 1, 161, T]
//   o.kernel = {41, 11}; o.stride = {2, 2}; o.padding = {20, 5};
//   asrkit::Conv2d<float> conv(1, 32, o, rng);     // weight [32, 1, 41, 11], bias [32]
//   auto y  = conv.forward_train(x);              // [B, 1, 161, T] -> [B, 32, 81, (T + 1) / 2]
//   auto dx = conv.backward(dy);                  // dL/dx; adds to weight().grad, bias().grad
//
//   asrkit::Conv1dOptions o1; o1.kernel = 5; o1.padding = 2; o1.groups = 256;   // depthwise
//   asrkit::Conv1d<float> dw(256, 256, o1, rng);  // x [B, 256, L] -> [B, 256, L]
//
// Layouts as PyTorch: Conv2d input [B, C, H, W] (asrkit's feature maps are [B, C, F, T]),
// weight [out, in/groups, kh, kw]; Conv1d input [B, C, L], weight [out, in/groups, k]; names
// "weight" and "bias". groups = in = out is a depthwise convolution. The work is
// ops::conv2d_forward / conv2d_backward (GEMM tiles over the receptive fields, read in place or
// through im2col; ops/conv.hpp).
// forward_train caches a copy of x; set `input_grad = false` in the options for a first layer
// whose input needs no gradient (backward then returns an empty tensor and skips that GEMM).
//
// Padded batches: the last axis is time (Conv1d's L, Conv2d's W of [B, C, F, T]), and
// forward(x, lengths) / forward_train(x, lengths) take each item's frames, lengths [B] (int32).
// Frames t >= lengths[b] of x are read as zeros and output frames t >= output_length(lengths[b])
// are set to zero, so an item's outputs (and, through backward, its gradients) are those of the
// item alone, unpadded, whatever its padding holds.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>
#include <asrkit/nn/detail/weight_bias.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/conv.hpp>

namespace asrkit {

struct Conv2dOptions {
  std::array<index_t, 2> kernel{1, 1};    ///< {kh, kw}
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> padding{0, 0};   ///< zeros on both sides of each axis
  std::array<index_t, 2> dilation{1, 1};
  index_t groups = 1;
  bool bias = true;
  bool input_grad = true;                 ///< false: backward skips dL/dx (returns an empty tensor)
};

struct Conv1dOptions {
  index_t kernel = 1;
  index_t stride = 1;
  index_t padding = 0;
  index_t dilation = 1;
  index_t groups = 1;
  bool bias = true;
  bool input_grad = true;
};

namespace detail {

// The shared body of Conv1d (Rank 3) and Conv2d (Rank 4).
template <class T, int Rank>
class ConvLayer : public WeightAndBias<T> {
  static_assert(std::is_floating_point_v<T>, "Conv1d/Conv2d<T>: T must be float or double");

 public:
  ConvLayer(index_t in, index_t out, const ops::ConvParams& p, bool bias, bool input_grad, Rng& rng)
      : in_(in), out_(out), params_(p), input_grad_(input_grad) {
    p.check(kName);
    if (in < 1 || out < 1 || in % p.groups != 0 || out % p.groups != 0)
      throw ValueError("conv.7", str(kName, ": in_channels (", in, ") and out_channels (", out,
                                     ") must be >= 1 and divisible by groups (", p.groups, ")"));
    this->make_parameters(Rank == 3 ? Shape{out, in / p.groups, p.kernel[1]}
                                    : Shape{out, in / p.groups, p.kernel[0], p.kernel[1]},
                          bias);
    reset_parameters(rng);
  }

  /// Redraws weight and bias with PyTorch's default (U(+-1/sqrt(in/groups * prod(kernel)))).
  void reset_parameters(Rng& rng) { init::torch_default(weight_, this->bias_or_null(), rng); }

  /// The output shape for an input shape (throws like forward).
  Shape output_shape(const Shape& x) const {
    check_input(x);
    const index_t h = Rank == 3 ? 1 : x[2];
    const index_t ho = params_.out_size(0, h), wo = params_.out_size(1, x[Rank - 1]);
    if (ho < 1 || wo < 1)
      throw ShapeError("conv.4", str(name(), ": argument x: ", x.str(), " is smaller than the "
                                     "dilated kernel plus padding"));
    return Rank == 3 ? Shape{x[0], out_, wo} : Shape{x[0], out_, ho, wo};
  }

  // conv2d_forward writes every element of y (bias or beta = 0), so y is not zeroed first.
  Tensor<T> forward(TensorView<const T> x) const {
    Tensor<T> y(output_shape(x.shape()), uninitialized);
    ops::conv2d_forward(params_, x, weight_.value.view(), bias_view(), y.view());
    return y;
  }

  Tensor<T> forward_train(TensorView<const T> x) { return train(x, {}); }

  /// Frames along the last axis (time) of an item of `length` frames convolved alone.
  std::int32_t output_length(std::int32_t length) const {
    return static_cast<std::int32_t>(params_.out_size(1, length));
  }

  /// forward of a padded batch: lengths [B] frames of the last axis (an empty view: all).
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths) const {
    const auto in = checked_lengths(x.shape(), lengths);
    Tensor<T> masked(x);
    zero_frames(masked.view(), in);
    Tensor<T> y = forward(masked.view());
    zero_frames(y.view(), output_lengths(in));
    return y;
  }

  /// forward_train of a padded batch; backward then ignores dy beyond each item's output frames
  /// and returns zeros on its padded input frames.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths) {
    return train(x, checked_lengths(x.shape(), lengths));
  }

  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("conv.8", str(name(), "::backward: no cached input; call forward_train "
                                     "first"));
    const Shape want = output_shape(x_.shape());
    if (dy.shape() != want)
      throw ShapeError("conv.5", str(name(), "::backward: argument dy: expected shape ", want.str(),
                                     " (the forward output), got ", dy.shape().str()));
    Tensor<T> dx = input_grad_ ? Tensor<T>(x_.shape()) : Tensor<T>();
    Tensor<T> masked_dy;  // with lengths: the outputs set to zero pass no gradient
    if (!lengths_.empty()) {
      masked_dy = Tensor<T>(dy);
      zero_frames(masked_dy.view(), output_lengths(lengths_));
    }
    ops::conv2d_backward(params_, x_.view(), weight_.value.view(),
                         lengths_.empty() ? dy : masked_dy.view(),
                         input_grad_ ? dx.view() : TensorView<T>(),
                         weight_.grad.view(), this->bias_grad_view());
    if (input_grad_ && !lengths_.empty()) zero_frames(dx.view(), lengths_);  // x was masked there
    return dx;
  }

  void clear_cache() {
    x_ = Tensor<T>();
    lengths_.clear();
    cached_ = false;
  }

  index_t in_channels() const noexcept { return in_; }
  index_t out_channels() const noexcept { return out_; }
  const ops::ConvParams& params() const noexcept { return params_; }

 private:
  static constexpr const char* kName = Rank == 3 ? "Conv1d" : "Conv2d";

  std::string name() const {
    const auto& p = params_;
    if (Rank == 3)
      return str("Conv1d(", in_, " -> ", out_, ", kernel ", p.kernel[1], ", stride ", p.stride[1],
                 ", padding ", p.padding[1], ", dilation ", p.dilation[1], ", groups ", p.groups, ")");
    return str("Conv2d(", in_, " -> ", out_, ", kernel ", p.kernel[0], "x", p.kernel[1], ", stride ",
               p.stride[0], "x", p.stride[1], ", padding ", p.padding[0], "x", p.padding[1],
               ", dilation ", p.dilation[0], "x", p.dilation[1], ", groups ", p.groups, ")");
  }

  void check_input(const Shape& s) const {
    if (s.rank() != Rank || s[1] != in_)
      throw ShapeError("conv.2", str(name(), ": argument x: expected shape ",
                                     Rank == 3 ? "[B, " : "[B, ", in_, Rank == 3 ? ", L]" : ", H, W]",
                                     ", got ", s.str()));
  }


  // The training forward; with lengths (non-empty), the cache is the masked input.
  Tensor<T> train(TensorView<const T> x, std::vector<std::int32_t> lengths) {
    Tensor<T> y(output_shape(x.shape()), uninitialized);
    x_ = Tensor<T>(x);
    lengths_ = std::move(lengths);
    if (!lengths_.empty()) zero_frames(x_.view(), lengths_);
    cached_ = true;
    ops::conv2d_forward(params_, x_.view(), weight_.value.view(), bias_view(), y.view());
    if (!lengths_.empty()) zero_frames(y.view(), output_lengths(lengths_));
    return y;
  }

  std::vector<std::int32_t> checked_lengths(const Shape& x,
                                            TensorView<const std::int32_t> lengths) const {
    check_input(x);
    return detail::checked_lengths(lengths, x[Rank - 1], x[0], name(), {"conv.9", "conv.10"});
  }

  std::vector<std::int32_t> output_lengths(const std::vector<std::int32_t>& in) const {
    std::vector<std::int32_t> out(in.size());
    for (std::size_t b = 0; b < in.size(); ++b) out[b] = output_length(in[b]);
    return out;
  }

  // Sets frames t >= lengths[b] of the last axis of t [B, ..., T] to zero.
  static void zero_frames(TensorView<T> t, const std::vector<std::int32_t>& lengths) {
    const index_t batch = t.dim(0), steps = t.dim(-1);
    const index_t rows = batch == 0 || steps == 0 ? 0 : t.numel() / (batch * steps);  // per item
    for (index_t b = 0; b < batch; ++b)
      for (index_t r = 0; r < rows; ++r) {
        T* row = t.data() + (b * rows + r) * steps;
        std::fill(row + lengths[static_cast<std::size_t>(b)], row + steps, T(0));
      }
  }

  index_t in_, out_;
  ops::ConvParams params_;
  using WeightAndBias<T>::weight_;
  using WeightAndBias<T>::bias_view;
  bool input_grad_;
  Tensor<T> x_;
  std::vector<std::int32_t> lengths_;  // the input frames of the last forward_train with lengths
  bool cached_ = false;
};

inline ops::ConvParams conv_params(const Conv2dOptions& o) {
  ops::ConvParams p;
  p.kernel = o.kernel;
  p.stride = o.stride;
  p.padding = o.padding;
  p.dilation = o.dilation;
  p.groups = o.groups;
  return p;
}
inline ops::ConvParams conv_params(const Conv1dOptions& o) {
  return ops::ConvParams::conv1d(o.kernel, o.stride, o.padding, o.dilation, o.groups);
}

}  // namespace detail

/// 2-D convolution over x [B, C, H, W] (torch.nn.Conv2d, padding_mode "zeros").
template <class T, class Device = Cpu>
class Conv2d : public detail::ConvLayer<T, 4> {
  static_assert(std::is_same_v<Device, Cpu>, "Conv2d: only the Cpu device is implemented");

 public:
  Conv2d(index_t in_channels, index_t out_channels, const Conv2dOptions& o, Rng& rng)
      : detail::ConvLayer<T, 4>(in_channels, out_channels, detail::conv_params(o), o.bias,
                                o.input_grad, rng) {}
  /// PyTorch's default init drawn from init::global_rng().
  Conv2d(index_t in_channels, index_t out_channels, const Conv2dOptions& o)
      : Conv2d(in_channels, out_channels, o, init::global_rng()) {}
};

/// 1-D convolution over x [B, C, L] (torch.nn.Conv1d, padding_mode "zeros").
template <class T, class Device = Cpu>
class Conv1d : public detail::ConvLayer<T, 3> {
  static_assert(std::is_same_v<Device, Cpu>, "Conv1d: only the Cpu device is implemented");

 public:
  Conv1d(index_t in_channels, index_t out_channels, const Conv1dOptions& o, Rng& rng)
      : detail::ConvLayer<T, 3>(in_channels, out_channels, detail::conv_params(o), o.bias,
                                o.input_grad, rng) {}
  /// PyTorch's default init drawn from init::global_rng().
  Conv1d(index_t in_channels, index_t out_channels, const Conv1dOptions& o)
      : Conv1d(in_channels, out_channels, o, init::global_rng()) {}
};

}  // namespace asrkit
