// asrkit/nn/detail/weight_bias.hpp - the parameters of a layer with one weight [out, ...] and an
// optional bias [out] (Linear, Conv1d/Conv2d, PointwiseConv1d, DepthwiseConv1d; internal): the
// state_dict names "weight" and "bias", the accessors, enable_bias for BN folding, and the dense
// product y = x Wᵀ + b shared by Linear and PointwiseConv1d.
#pragma once

#include <string_view>

#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/reduce.hpp>

namespace asrkit {
namespace detail {

template <class T>
class WeightAndBias {
 public:
  bool has_bias() const noexcept { return has_bias_; }
  Parameter<T>& weight() noexcept { return weight_; }
  const Parameter<T>& weight() const noexcept { return weight_; }
  /// Empty (shape [0]) without bias.
  Parameter<T>& bias() noexcept { return bias_; }
  const Parameter<T>& bias() const noexcept { return bias_; }

  /// Gives a layer built without bias a zero bias (outputs unchanged; state_dict gains "bias"),
  /// so that BN folding (transform/fold_batch_norm.hpp) has a b' to write. No-op with a bias.
  void enable_bias() {
    if (has_bias_) return;
    bias_ = Parameter<T>(Shape{weight_.value.dim(0)});
    has_bias_ = true;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "weight"), weight_);
    if (has_bias_) f(join_name(prefix, "bias"), bias_);
  }
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

 protected:
  /// Zero weight of `weight_shape` ([out, ...]) and, with `bias`, a zero bias [out]; the layer
  /// draws its initial values after checking its sizes.
  void make_parameters(const Shape& weight_shape, bool bias) {
    weight_ = Parameter<T>(weight_shape);
    has_bias_ = bias;
    if (bias) bias_ = Parameter<T>(Shape{weight_shape[0]});
  }
  Parameter<T>* bias_or_null() noexcept { return has_bias_ ? &bias_ : nullptr; }
  TensorView<const T> bias_view() const {
    return has_bias_ ? TensorView<const T>(bias_.value.view()) : TensorView<const T>();
  }
  TensorView<T> bias_grad_view() { return has_bias_ ? bias_.grad.view() : TensorView<T>(); }

  /// y [N, out] = x [N, in] w [out, in]ᵀ + b: the bias broadcast into y, then one GEMM with beta 1.
  void dense_forward(TensorView<const T> x, TensorView<const T> w, TensorView<T> y) const {
    if (has_bias_)
      for (index_t r = 0; r < y.dim(0); ++r) y[r].flat() = bias_.value.flat();
    ops::gemm(ops::Trans::no, ops::Trans::yes, T(1), x, w, has_bias_ ? T(1) : T(0), y);
  }
  /// dw += dyᵀ x, db += column sums of dy, dx = dy w (dy [N, out], x and dx [N, in], w and dw
  /// [out, in]).
  void dense_backward(TensorView<const T> dy, TensorView<const T> x, TensorView<const T> w, TensorView<T> dw,
                      TensorView<T> dx) {
    ops::gemm(ops::Trans::yes, ops::Trans::no, T(1), dy, x, T(1), dw);
    if (has_bias_) ops::column_sums(dy, bias_.grad.view(), true);
    ops::gemm(ops::Trans::no, ops::Trans::no, T(1), dy, w, T(0), dx);
  }

  Parameter<T> weight_, bias_;
  bool has_bias_ = false;
};

}  // namespace detail
}  // namespace asrkit
