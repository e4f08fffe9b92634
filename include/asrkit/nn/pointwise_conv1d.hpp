// asrkit/nn/pointwise_conv1d.hpp - kernel-size-1 convolution on time-major sequences.
//
//   asrkit::Rng rng(1);
//   asrkit::PointwiseConv1d<float> pw(256, 512, rng);   // weight [512, 256, 1], bias [512]
//   auto y  = pw.forward_train(x);                      // x [T, B, 256] -> y [T, B, 512]
//   auto dx = pw.backward(dy);
//
// torch.nn.Conv1d(in, out, kernel_size=1) is a Linear layer applied to every frame; on
// time-major [T, B, in] it is one GEMM (Y = X W^T + b), exactly what asrkit::Linear computes.
// The only difference is the state-dict shape of the weight, [out, in, 1] (Conformer's
// pointwise_conv1 / pointwise_conv2 in ESPnet and WeNet), so checkpoints load with strict shape
// checks; the products read it through [out, in] views.
#pragma once

#include <algorithm>
#include <array>
#include <string_view>
#include <type_traits>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/weight_bias.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/input_cache.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/reduce.hpp>

namespace asrkit {

template <class T>
class PointwiseConv1d : public detail::WeightAndBias<T> {
  static_assert(std::is_floating_point_v<T>, "PointwiseConv1d<T>: T must be float or double");

 public:
  /// PyTorch's default Conv1d init (fan_in = in) drawn from `rng`.
  PointwiseConv1d(index_t in_channels, index_t out_channels, Rng& rng, bool bias = true)
      : in_(in_channels), out_(out_channels) {
    if (in_channels < 1 || out_channels < 1)
      throw ValueError("pointwise_conv.1", detail::str("PointwiseConv1d: in_channels and out_channels "
                                                       "must be >= 1, got ", in_channels, " and ",
                                                       out_channels));
    this->make_parameters(Shape{out_, in_, 1}, bias);
    init::torch_default(weight_, this->bias_or_null(), rng);
  }

  /// x [..., in] -> y [..., out] (every leading axis is a row of the GEMM).
  Tensor<T> forward(TensorView<const T> x) const {
    const index_t n = rows(x.shape());
    Tensor<T> y(out_shape(x.shape()), uninitialized);
    this->dense_forward(x.reshape(Shape{n, in_}), w2(weight_.value), y.reshape(Shape{n, out_}));
    return y;
  }

  /// As forward; keeps x for backward (copied, moved or borrowed: input_cache.hpp).
  Tensor<T> forward_train(TrainInput<T> x) {
    (void)rows(x.shape());  // the shape is checked before x is cached
    x_.keep(std::move(x));
    cached_ = true;
    return forward(x_.view());
  }

  /// dX = dY W, dW += dY^T X, db += column sums of dY.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("pointwise_conv.3", "PointwiseConv1d::backward: call forward_train first");
    const index_t n = x_.shape().numel() / in_;
    if (dy.numel() != n * out_ || dy.rank() != x_.shape().rank() || dy.dim(-1) != out_)
      throw ShapeError("pointwise_conv.2", detail::str("PointwiseConv1d::backward: argument dy: expected ",
                                                       out_shape(x_.shape()).str(),
                                                       ", got ", dy.shape().str()));
    Tensor<T> dx(x_.shape(), uninitialized);  // the GEMM writes every element
    this->dense_backward(dy.reshape(Shape{n, out_}), x_.view().reshape(Shape{n, in_}), w2(weight_.value),
                         weight_.grad.reshape(Shape{out_, in_}), dx.reshape(Shape{n, in_}));
    return dx;
  }

  void clear_cache() {
    x_.clear();
    cached_ = false;
  }

  index_t in_channels() const noexcept { return in_; }
  index_t out_channels() const noexcept { return out_; }

 private:
  index_t rows(const Shape& s) const {
    if (s.rank() < 1 || s[s.rank() - 1] != in_)
      throw ShapeError("pointwise_conv.2", detail::str("PointwiseConv1d: argument x: expected shape [..., ",
                                                       in_, "], got ", s.str()));
    return s.numel() / in_;
  }
  Shape out_shape(const Shape& s) const {
    std::array<index_t, kMaxRank> d{};
    std::copy(s.begin(), s.end(), d.begin());
    d[static_cast<std::size_t>(s.rank() - 1)] = out_;
    return Shape(d.begin(), d.begin() + s.rank());
  }
  TensorView<const T> w2(const Tensor<T>& w) const { return w.reshape(Shape{out_, in_}); }

  using detail::WeightAndBias<T>::weight_;
  index_t in_, out_;
  InputCache<T> x_;
  bool cached_ = false;
};

}  // namespace asrkit
