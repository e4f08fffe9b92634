// asrkit/nn/linear.hpp - fully connected layer, y = x W^T + b over the last axis.
//
//   asrkit::Rng rng(1);
//   asrkit::Linear<float> fc(1024, 4096, rng);     // PyTorch's default init from rng
//   auto y  = fc.forward(x);                       // x [..., 1024] -> y [..., 4096]
//   auto yt = fc.forward_train(x);                 // caches a copy of x (std::move(x) or
//                                                  // asrkit::borrow(x): no copy, input_cache.hpp)
//   auto dx = fc.backward(dy);                     // dL/dx; adds dL/dW, dL/db to the grads
//
// Shapes: x [..., in] (any leading axes, e.g. [T, B, in] sequences), weight [out, in], bias
// [out] (torch.nn.Linear, state_dict names "weight" and "bias"). All leading axes are flattened
// into N rows, so each pass is one GEMM:
//   forward   Y [N, out]  = X [N, in] W^T + 1 b^T  (bias broadcast into Y, then GEMM with beta 1)
//   backward  dX [N, in]  = dY W,   dW += dY^T X,   db += column sums of dY.
#pragma once

#include <array>
#include <string>
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

template <class T, class Device = Cpu>
class Linear : public detail::WeightAndBias<T> {
  static_assert(std::is_floating_point_v<T>, "Linear<T>: T must be float or double");
  static_assert(std::is_same_v<Device, Cpu>, "Linear: only the Cpu device is implemented");

 public:
  /// PyTorch's default init drawn from `rng` (init::torch_default).
  Linear(index_t in_features, index_t out_features, Rng& rng, bool bias = true)
      : in_(in_features), out_(out_features) {
    if (in_features < 1 || out_features < 1)
      throw ValueError("linear.1", detail::str("Linear: in_features and out_features must be >= 1,"
                                               " got ", in_features, " and ", out_features));
    this->make_parameters(Shape{out_, in_}, bias);
    reset_parameters(rng);
  }
  /// PyTorch's default init drawn from init::global_rng().
  Linear(index_t in_features, index_t out_features, bool bias = true)
      : Linear(in_features, out_features, init::global_rng(), bias) {}

  /// Redraws weight and bias with PyTorch's default (U(+-1/sqrt(in_features))).
  void reset_parameters(Rng& rng) { init::torch_default(weight_, this->bias_or_null(), rng); }

  /// Inference: y [..., out] for x [..., in]. Caches nothing.
  Tensor<T> forward(TensorView<const T> x) const {
    check_input(x.shape());
    Tensor<T> y(out_shape(x.shape()), uninitialized);  // bias rows or a beta-0 GEMM write it all
    run(x, y.view());
    return y;
  }

  /// Training: as forward, and keeps x for backward: a copy of a view (or tensor lvalue), a
  /// moved tensor itself, a borrowed view as it is (input_cache.hpp).
  Tensor<T> forward_train(TrainInput<T> x) {
    check_input(x.shape());
    x_.keep(std::move(x));
    cached_ = true;
    Tensor<T> y(out_shape(x_.shape()), uninitialized);  // bias rows or a beta-0 GEMM write it all
    run(x_.view(), y.view());
    return y;
  }

  /// dL/dx for dL/dy (shape of the last forward_train output); adds dL/dW and dL/db to the grads.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("linear.3", detail::str(name(), "::backward: no cached input; call "
                                               "forward_train first"));
    const Shape want = out_shape(x_.shape());
    if (dy.shape() != want)
      throw ShapeError("linear.2", detail::str(name(), "::backward: argument dy: expected shape ",
                                               want.str(), " (the forward output), got ",
                                               dy.shape().str()));
    const index_t n = x_.shape().numel() / in_;
    Tensor<T> dx(x_.shape(), uninitialized);  // the GEMM writes every element
    this->dense_backward(dy.reshape(Shape{n, out_}), x_.view().reshape(Shape{n, in_}), weight_.value.view(),
                         weight_.grad.view(), dx.reshape(Shape{n, in_}));
    return dx;
  }

  /// Drops the cached input (frees its memory).
  void clear_cache() {
    x_.clear();
    cached_ = false;
  }

  index_t in_features() const noexcept { return in_; }
  index_t out_features() const noexcept { return out_; }

 private:
  std::string name() const { return detail::str("Linear(", in_, " -> ", out_, ")"); }

  void check_input(const Shape& s) const {
    if (s.rank() < 1 || s[s.rank() - 1] != in_)
      throw ShapeError("linear.2", detail::str(name(), ": argument x: expected shape [..., ", in_,
                                               "], got ", s.str()));
  }

  Shape out_shape(const Shape& in) const {
    std::array<index_t, kMaxRank> d{};
    for (int i = 0; i < in.rank(); ++i) d[static_cast<std::size_t>(i)] = in[i];
    d[static_cast<std::size_t>(in.rank() - 1)] = out_;
    return Shape(d.begin(), d.begin() + in.rank());
  }

  // y [N, out] = x [N, in] W^T + b
  void run(TensorView<const T> x, TensorView<T> y) const {
    const index_t n = x.numel() / in_;
    this->dense_forward(x.reshape(Shape{n, in_}), weight_.value.view(), y.reshape(Shape{n, out_}));
  }

  using detail::WeightAndBias<T>::weight_;
  index_t in_, out_;
  InputCache<T> x_;
  bool cached_ = false;
};

}  // namespace asrkit
