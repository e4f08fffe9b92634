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
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/reduce.hpp>

namespace asrkit {

template <class T>
class PointwiseConv1d {
  static_assert(std::is_floating_point_v<T>, "PointwiseConv1d<T>: T must be float or double");

 public:
  /// PyTorch's default Conv1d init (fan_in = in) drawn from `rng`.
  PointwiseConv1d(index_t in_channels, index_t out_channels, Rng& rng, bool bias = true)
      : in_(in_channels), out_(out_channels), has_bias_(bias) {
    if (in_channels < 1 || out_channels < 1)
      throw ValueError("pointwise_conv.1", detail::str("PointwiseConv1d: in_channels and out_channels "
                                                       "must be >= 1, got ", in_channels, " and ",
                                                       out_channels));
    weight_ = Parameter<T>(Shape{out_, in_, 1});
    if (has_bias_) bias_ = Parameter<T>(Shape{out_});
    init::torch_default(weight_, has_bias_ ? &bias_ : nullptr, rng);
  }

  /// x [..., in] -> y [..., out] (every leading axis is a row of the GEMM).
  Tensor<T> forward(TensorView<const T> x) const {
    const index_t n = rows(x.shape());
    Tensor<T> y(out_shape(x.shape()), uninitialized);
    auto y2 = y.reshape(Shape{n, out_});
    if (has_bias_)
      for (index_t r = 0; r < n; ++r) y2[r].flat() = bias_.value.flat();
    ops::gemm(ops::Trans::no, ops::Trans::yes, T(1), x.reshape(Shape{n, in_}), w2(weight_.value),
              has_bias_ ? T(1) : T(0), y2);
    return y;
  }

  /// As forward; keeps a copy of x for backward.
  Tensor<T> forward_train(TensorView<const T> x) {
    x_ = Tensor<T>(x);
    cached_ = true;
    return forward(x_.view());
  }

  /// dX = dY W, dW += dY^T X, db += column sums of dY.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("pointwise_conv.3", "PointwiseConv1d::backward: call forward_train first");
    const index_t n = x_.numel() / in_;
    if (dy.numel() != n * out_ || dy.rank() != x_.rank() || dy.dim(-1) != out_)
      throw ShapeError("pointwise_conv.2", detail::str("PointwiseConv1d::backward: argument dy: expected ",
                                                       out_shape(x_.shape()).str(),
                                                       ", got ", dy.shape().str()));
    const TensorView<const T> dy2 = dy.reshape(Shape{n, out_});
    ops::gemm(ops::Trans::yes, ops::Trans::no, T(1), dy2, x_.reshape(Shape{n, in_}), T(1),
              weight_.grad.reshape(Shape{out_, in_}));
    if (has_bias_) ops::column_sums(dy2, bias_.grad.view(), true);
    Tensor<T> dx(x_.shape(), uninitialized);
    ops::gemm(ops::Trans::no, ops::Trans::no, T(1), dy2, w2(weight_.value), T(0),
              dx.reshape(Shape{n, in_}));
    return dx;
  }

  /// Gives a layer built without bias a zero bias (outputs unchanged; state_dict gains "bias"),
  /// so that BN folding (transform/fold_batch_norm.hpp) has a b' to write. No-op with a bias.
  void enable_bias() {
    if (has_bias_) return;
    bias_ = Parameter<T>(Shape{out_});
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

  index_t in_channels() const noexcept { return in_; }
  index_t out_channels() const noexcept { return out_; }
  bool has_bias() const noexcept { return has_bias_; }
  Parameter<T>& weight() noexcept { return weight_; }  ///< [out, in, 1]
  Parameter<T>& bias() noexcept { return bias_; }      ///< [out]; empty without bias
  const Parameter<T>& weight() const noexcept { return weight_; }
  const Parameter<T>& bias() const noexcept { return bias_; }

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

  index_t in_, out_;
  bool has_bias_;
  Parameter<T> weight_, bias_;
  Tensor<T> x_;
  bool cached_ = false;
};

}  // namespace asrkit
