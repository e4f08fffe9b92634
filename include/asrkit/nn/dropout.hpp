// asrkit/nn/dropout.hpp - dropout and alpha dropout (identity at inference).
//
//   asrkit::Dropout<float> drop(0.1, /*seed=*/7);   // zero with probability p, scale by 1/(1-p)
//   asrkit::AlphaDropout<float> ad(0.05, 7);         // SELU networks (SPECS §1.4)
//   auto y  = ad.forward_train(x);                   // draws a mask from the layer's Rng
//   auto dx = ad.backward(dy);                       // uses that mask
//   auto yi = ad.forward(x);                         // inference: y = x
//
// Masks come from an asrkit::Rng owned by the layer, drawn in row-major element order, one
// uniform double per element (keep when u < 1 - p), so a seed gives the same masks on every
// platform and thread count. Reseed with `rng() = asrkit::Rng(seed)`. The layers have no
// parameters and no buffers (as torch.nn.Dropout / AlphaDropout).
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/ops/activation.hpp>

namespace asrkit {
namespace detail {
inline void check_drop_rate(double p, const char* layer) {
  if (!(p >= 0.0 && p < 1.0))
    throw ValueError("dropout.1", detail::str(layer, ": p must be in [0, 1), got ", p));
}
template <class T>
// dL/dx = dy ⊙ mask, the mask of the last forward_train (both dropouts store dy/dx there).
Tensor<T> drop_backward(TensorView<const T> dy, bool cached, const Tensor<T>& mask, const char* layer) {
  if (!cached) throw ValueError("dropout.2", detail::str(layer, "::backward: call forward_train first"));
  if (dy.shape() != mask.shape())
    throw ShapeError("dropout.3", detail::str(layer, "::backward: dy must have the shape of the "
                                              "forward input ", mask.shape().str(), ", got ", dy.shape().str()));
  Tensor<T> dx(dy.shape(), uninitialized);
  for (index_t i = 0, n = dy.numel(); i < n; ++i) dx.data()[i] = dy.data()[i] * mask.data()[i];
  return dx;
}
}  // namespace detail

/// Inverted dropout (Srivastava et al. 2014): training y = x ⊙ m / (1 − p), m ~ Bernoulli(1 − p).
template <class T>
class Dropout {
  static_assert(std::is_floating_point_v<T>, "Dropout<T>: T must be float or double");

 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0) : p_(p), rng_(seed) {
    detail::check_drop_rate(p, "Dropout");
  }

  Tensor<T> forward(TensorView<const T> x) const { return Tensor<T>(x); }

  Tensor<T> forward_train(TensorView<const T> x) {
    const double q = 1.0 - p_;
    const T scale = static_cast<T>(1.0 / q);
    mask_ = Tensor<T>(x.shape());
    Tensor<T> y(x.shape());
    for (index_t i = 0, n = x.numel(); i < n; ++i) {
      const T m = rng_.uniform<double>() < q ? scale : T(0);
      mask_.data()[i] = m;
      y.data()[i] = x.data()[i] * m;
    }
    cached_ = true;
    return y;
  }

  Tensor<T> backward(TensorView<const T> dy) {
    return detail::drop_backward(dy, cached_, mask_, "Dropout");
  }

  template <class F>
  void for_each_parameter(F&&, std::string_view = {}) {}
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  double p() const noexcept { return p_; }
  Rng& rng() noexcept { return rng_; }
  /// The last mask: 0 or 1/(1 − p) per element.
  const Tensor<T>& mask() const noexcept { return mask_; }

 private:
  double p_;
  Rng rng_;
  Tensor<T> mask_;
  bool cached_ = false;
};

/// Options of AlphaDropout: the SELU constants and the fixed point (mean, variance) to keep.
struct AlphaDropoutOptions {
  double alpha = ops::selu_alpha;    ///< SELU α (Klambauer et al. 2017, eq. 14)
  double lambda = ops::selu_lambda;  ///< SELU λ
  double fixed_mean = 0.0;           ///< μ of the fixed point (SPECS §1.4 [D])
  double fixed_var = 1.0;            ///< ν of the fixed point
};

/// Alpha dropout (Klambauer et al. 2017, sec. "New Dropout Technique"; SPECS §1.4): dropped units
/// are set to SELU's saturation value α' = −λα instead of 0, then an affine map a·x̃ + b restores
/// the fixed point. For (μ, ν) = (0, 1), with keep probability q = 1 − p:
///   a = (q + α'²·q·(1 − q))^(−1/2),   b = −a·(1 − q)·α'.
/// In general (SNNs notebook): a = sqrt(ν / (q·((1 − q)·(α' − μ)² + ν))), b = μ − a·(q·μ + (1 − q)·α').
/// Inference: y = x.
template <class T>
class AlphaDropout {
  static_assert(std::is_floating_point_v<T>, "AlphaDropout<T>: T must be float or double");

 public:
  explicit AlphaDropout(double p = 0.05, std::uint64_t seed = 0, AlphaDropoutOptions o = {})
      : p_(p), rng_(seed) {
    detail::check_drop_rate(p, "AlphaDropout");
    if (!(o.fixed_var > 0) || !std::isfinite(o.fixed_var) || !std::isfinite(o.fixed_mean) ||
        !std::isfinite(o.alpha) || !std::isfinite(o.lambda))
      throw ValueError("dropout.1", detail::str("AlphaDropout: needs finite alpha, lambda, fixed_mean "
                                                "and fixed_var > 0, got alpha=", o.alpha, " lambda=",
                                                o.lambda, " fixed_mean=", o.fixed_mean,
                                                " fixed_var=", o.fixed_var));
    const double q = 1.0 - p, mu = o.fixed_mean, nu = o.fixed_var;
    alpha_prime_ = -o.lambda * o.alpha;
    const double d = alpha_prime_ - mu;
    a_ = std::sqrt(nu / (q * ((1.0 - q) * d * d + nu)));
    b_ = mu - a_ * (q * mu + (1.0 - q) * alpha_prime_);
  }

  Tensor<T> forward(TensorView<const T> x) const { return Tensor<T>(x); }

  Tensor<T> forward_train(TensorView<const T> x) {
    const double q = 1.0 - p_;
    const T a = static_cast<T>(a_), dropped = static_cast<T>(a_ * alpha_prime_ + b_),
            b = static_cast<T>(b_);
    mask_ = Tensor<T>(x.shape());
    Tensor<T> y(x.shape());
    for (index_t i = 0, n = x.numel(); i < n; ++i) {
      const bool keep = rng_.uniform<double>() < q;
      mask_.data()[i] = keep ? a : T(0);  // dy/dx
      y.data()[i] = keep ? a * x.data()[i] + b : dropped;
    }
    cached_ = true;
    return y;
  }

  Tensor<T> backward(TensorView<const T> dy) {
    return detail::drop_backward(dy, cached_, mask_, "AlphaDropout");
  }

  template <class F>
  void for_each_parameter(F&&, std::string_view = {}) {}
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  double p() const noexcept { return p_; }
  double a() const noexcept { return a_; }                      ///< the scale a
  double b() const noexcept { return b_; }                      ///< the shift b
  double alpha_prime() const noexcept { return alpha_prime_; }  ///< α' = −λα
  Rng& rng() noexcept { return rng_; }
  /// The last mask as dy/dx: a where kept, 0 where dropped.
  const Tensor<T>& mask() const noexcept { return mask_; }

 private:
  double p_, a_ = 1, b_ = 0, alpha_prime_ = 0;
  Rng rng_;
  Tensor<T> mask_;
  bool cached_ = false;
};

}  // namespace asrkit
