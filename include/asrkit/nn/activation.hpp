// asrkit/nn/activation.hpp - activation layers (no parameters) wrapping ops/activation.hpp.
//
//   asrkit::SELU<float> act;                    // Klambauer et al. 2017 (canonical lambda, alpha)
//   auto y  = act.forward_train(x);             // caches y (x for Swish and GLU; a byte
//                                               // mask for ReLU and ClippedReLU)
//   auto dx = act.backward(dy);
//   asrkit::ClippedReLU<float> g(20.0f);        // Deep Speech 2's min(max(x, 0), 20)
//   asrkit::GLU<float> glu;                     // [..., 2n] -> [..., n], a * sigmoid(b)
//
// Every layer maps any shape to the same shape (GLU halves the last axis) and follows the layer
// contract of nn/parameter.hpp; for_each_parameter / for_each_buffer visit nothing.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/input_cache.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/activation.hpp>

namespace asrkit {

/// An element-wise activation layer; use the aliases below (ReLU<float>, SELU<double>, ...).
template <class T, ops::ActivationKind Kind>
class ActivationLayer {
  static_assert(std::is_floating_point_v<T>, "activation layers: T must be float or double");

 public:
  /// `clip` is ClippedReLU's ceiling (ignored by the other kinds).
  explicit ActivationLayer(T clip = T(ops::default_relu_clip)) : clip_(clip) {
    if (Kind == ops::ActivationKind::clipped_relu && (!(clip > T(0)) || !std::isfinite(clip)))
      throw ValueError("activation.2", detail::str("ClippedReLU: clip must be finite and > 0, got ",
                                                   clip));
  }

  Tensor<T> forward(TensorView<const T> x) const {
    Tensor<T> y(x.shape(), uninitialized);  // activation writes every element
    ops::activation(Kind, x, y.view(), clip_);
    return y;
  }

  /// Training forward. Caches y (x for Swish, whose derivative needs the input), copied by the
  /// pass that writes y; ReLU and ClippedReLU cache a byte per element instead (whether dy
  /// passes, ops::activation_masking). For ReLU, ClippedReLU and Swish, whose derivatives are as
  /// cheap from x, a moved or borrowed x (nn/input_cache.hpp) is kept instead, without a copy.
  Tensor<T> forward_train(TrainInput<T> x) {
    const TensorView<const T> in = x.view();
    Tensor<T> y(in.shape(), uninitialized);  // activation(_saving) writes every element
    cached_ = false;
    if (x.copied() && ops::derivative_is_a_mask(Kind)) {
      x_.clear();
      saved_ = Tensor<T>();
      if (mask_.shape() != in.shape()) mask_ = Tensor<std::uint8_t>(in.shape(), uninitialized);
      ops::activation_masking(Kind, in, y.view(), mask_.view(), clip_);
    } else if (x.copied() || !ops::derivative_from_input_is_cheap(Kind)) {
      x_.clear();
      mask_ = Tensor<std::uint8_t>();
      if (saved_.shape() != in.shape()) saved_ = Tensor<T>(in.shape(), uninitialized);
      ops::activation_saving(Kind, in, y.view(), saved_.view(), clip_);
    } else {
      saved_ = Tensor<T>();
      mask_ = Tensor<std::uint8_t>();
      x_.keep(std::move(x));
      ops::activation(Kind, in, y.view(), clip_);
    }
    cached_ = true;
    return y;
  }

  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("activation.5", detail::str(kind_name(), "::backward: no cached tensor; call "
                                                   "forward_train first"));
    const Shape& shape = mask_.data() ? mask_.shape() : saved_.data() ? saved_.shape() : x_.shape();
    if (dy.shape() != shape)
      throw ShapeError("activation.6", detail::str(kind_name(), "::backward: argument dy: expected "
                                                   "shape ", shape.str(), " (the forward "
                                                   "output), got ", dy.shape().str()));
    Tensor<T> dx(dy.shape(), uninitialized);  // activation_backward writes every element
    if (mask_.data())
      ops::masked_backward(mask_.view(), dy, dx.view());
    else if (saved_.data())  // x for Swish, y for the rest
      ops::activation_backward(Kind, saved_.view(), saved_.view(), dy, dx.view(), clip_);
    else
      ops::activation_backward(Kind, x_.view(), {}, dy, dx.view(), clip_);
    return dx;
  }

  void clear_cache() {
    saved_ = Tensor<T>();
    mask_ = Tensor<std::uint8_t>();
    x_.clear();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&&, std::string_view = {}) {}
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  T clip() const noexcept { return clip_; }

 private:
  static const char* kind_name() {
    switch (Kind) {
      case ops::ActivationKind::identity: return "Identity";
      case ops::ActivationKind::relu: return "ReLU";
      case ops::ActivationKind::clipped_relu: return "ClippedReLU";
      case ops::ActivationKind::selu: return "SELU";
      case ops::ActivationKind::swish: return "Swish";
      case ops::ActivationKind::tanh: return "Tanh";
      case ops::ActivationKind::sigmoid: return "Sigmoid";
    }
    return "Activation";
  }

  T clip_;
  Tensor<std::uint8_t> mask_;  // a copied input's derivative mask (ReLU, ClippedReLU)
  Tensor<T> saved_;   // else a copied input's y (Swish: x), written by activation_saving
  InputCache<T> x_;   // or the moved / borrowed input itself
  bool cached_ = false;
};

template <class T>
using ReLU = ActivationLayer<T, ops::ActivationKind::relu>;
/// min(max(x, 0), clip), clip 20 by default (Amodei et al. 2016; torch.nn.Hardtanh(0, 20)).
template <class T>
using ClippedReLU = ActivationLayer<T, ops::ActivationKind::clipped_relu>;
/// torch.nn.SELU.
template <class T>
using SELU = ActivationLayer<T, ops::ActivationKind::selu>;
/// x sigmoid(x), torch.nn.SiLU.
template <class T>
using Swish = ActivationLayer<T, ops::ActivationKind::swish>;
template <class T>
using Tanh = ActivationLayer<T, ops::ActivationKind::tanh>;
template <class T>
using Sigmoid = ActivationLayer<T, ops::ActivationKind::sigmoid>;

/// Gated linear unit over the last axis (torch.nn.GLU(dim=-1)): [..., 2n] -> [..., n].
template <class T>
class GLU {
  static_assert(std::is_floating_point_v<T>, "GLU<T>: T must be float or double");

 public:
  Tensor<T> forward(TensorView<const T> x) const { return forward(x, {}); }

  /// Caches x (copied by the pass that writes y).
  Tensor<T> forward_train(TensorView<const T> x) {
    cached_ = false;
    if (x_.shape() != x.shape()) x_ = Tensor<T>(x.shape(), uninitialized);
    Tensor<T> y = forward(x, x_.view());
    cached_ = true;
    return y;
  }

  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("activation.5", "GLU::backward: no cached tensor; call forward_train first");
    if (dy.rank() != x_.rank() || dy.numel() * 2 != x_.numel() || dy.dim(-1) * 2 != x_.dim(-1))
      throw ShapeError("activation.6", detail::str("GLU::backward: argument dy: expected the "
                                                   "forward output shape (input ", x_.shape().str(),
                                                   " with the last dimension halved), got ",
                                                   dy.shape().str()));
    Tensor<T> dx(x_.shape(), uninitialized);  // glu_backward writes every element
    ops::glu_backward(x_.view(), dy, dx.view());
    return dx;
  }

  void clear_cache() {
    x_ = Tensor<T>();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&&, std::string_view = {}) {}
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

 private:
  /// y = glu(x); x is copied to `saved` too when it has data.
  Tensor<T> forward(TensorView<const T> x, TensorView<T> saved) const {
    if (x.rank() < 1 || x.dim(-1) % 2 != 0)
      throw ShapeError("activation.3", detail::str("GLU: argument x: expected shape [..., 2n] (even "
                                                   "last dimension), got ", x.shape().str()));
    std::array<index_t, kMaxRank> d{};
    for (int i = 0; i < x.rank(); ++i) d[static_cast<std::size_t>(i)] = x.dim(i);
    d[static_cast<std::size_t>(x.rank() - 1)] /= 2;
    Tensor<T> y(Shape(d.begin(), d.begin() + x.rank()), uninitialized);  // glu writes every element
    ops::glu(x, y.view(), saved);
    return y;
  }

  Tensor<T> x_;
  bool cached_ = false;
};

}  // namespace asrkit
