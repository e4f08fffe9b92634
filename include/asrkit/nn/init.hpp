// asrkit/nn/init.hpp - weight initialisation, deterministic under an asrkit::Rng seed.
//
//   asrkit::Rng rng(42);
//   asrkit::init::lecun_normal(fc.weight(), rng);              // SELU nets: N(0, 1/fan_in)
//   asrkit::init::xavier_uniform(rnn_w, rng);                   // U(+-sqrt(6 / (fan_in + fan_out)))
//   asrkit::init::kaiming_normal(conv.weight(), rng, 0.0, asrkit::init::FanMode::fan_out);
//   asrkit::init::orthogonal(recurrent_w, rng);                 // BN-LSTM recurrent weights
//   asrkit::init::zeros(fc.bias());
//
// Every function takes a Tensor, a TensorView or a Parameter (its value is set). Fans follow
// PyTorch (torch.nn.init._calculate_fan_in_and_fan_out): for a weight [out, in, k...],
// fan_in = in * prod(k) and fan_out = out * prod(k); rank >= 2 is required.
// The values are drawn in row-major order from the given Rng, so the same seed gives the same
// weights on every platform (see core/rng.hpp); they are not PyTorch's numbers, only its
// distributions.
//
// Layers constructed without an Rng (Linear, Conv1d, Conv2d) draw PyTorch's default
// (kaiming_uniform with a = sqrt(5), i.e. U(+-1/sqrt(fan_in)) for weight and bias) from
// init::global_rng(), which init::manual_seed(s) reseeds (like torch.manual_seed).
#pragma once

#include <Eigen/Core>
#include <Eigen/QR>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/parameter.hpp>

namespace asrkit {
namespace init {

/// Whether a scale uses fan_in (forward variance) or fan_out (backward variance).
enum class FanMode { fan_in, fan_out };

/// The nonlinearities torch.nn.init.calculate_gain knows.
enum class Nonlinearity { linear, conv, sigmoid, tanh, relu, leaky_relu, selu };

/// torch.nn.init.calculate_gain: 1 (linear, conv, sigmoid), 5/3 (tanh), sqrt(2) (relu),
/// sqrt(2 / (1 + a^2)) (leaky_relu with slope a), 3/4 (selu).
inline double calculate_gain(Nonlinearity nl, double param = 0.01) {
  switch (nl) {
    case Nonlinearity::linear:
    case Nonlinearity::conv:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu:
      if (!std::isfinite(param))
        throw ValueError("init.2", detail::str("calculate_gain: leaky_relu slope must be finite, "
                                               "got ", param));
      return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::selu: return 0.75;
  }
  return 1.0;
}

struct Fans {
  index_t fan_in, fan_out;
};

/// PyTorch's fans of a weight [out, in, k...]. Throws ShapeError init.1 for rank < 2.
inline Fans fans(const Shape& s) {
  if (s.rank() < 2)
    throw ShapeError("init.1", detail::str("init: fan_in and fan_out need a weight of rank >= 2 "
                                           "([out, in, ...]), got ", s.str()));
  index_t receptive = 1;
  for (int i = 2; i < s.rank(); ++i) receptive *= s[i];
  return {s[1] * receptive, s[0] * receptive};
}

/// The process-wide generator used by layers constructed without an Rng (seed 0 at start).
/// Not synchronised: construct such layers from one thread.
inline Rng& global_rng() {
  static Rng rng(0);
  return rng;
}
/// Reseeds global_rng(), so layers constructed afterwards get reproducible weights.
inline void manual_seed(std::uint64_t seed) { global_rng() = Rng(seed); }

namespace detail {

template <class T>
TensorView<T> mut_view(TensorView<T> v) {
  return v;
}
template <class T>
TensorView<T> mut_view(Tensor<T>& t) {
  return t.view();
}
template <class T>
TensorView<T> mut_view(Parameter<T>& p) {
  return p.value.view();
}

inline void check_scale(const char* who, double v) {
  if (!(v >= 0) || !std::isfinite(v))
    throw ValueError("init.2", asrkit::detail::str(who, ": the scale (gain, std or bound) must be "
                                                   "finite and >= 0, got ", v));
}

inline double fan(const Shape& s, FanMode mode) {
  const Fans f = fans(s);
  return static_cast<double>(mode == FanMode::fan_in ? f.fan_in : f.fan_out);
}

template <class T>
void fill_uniform(TensorView<T> v, double bound, Rng& rng) {
  if (bound == 0) {
    for (index_t i = 0; i < v.numel(); ++i) v.data()[i] = T(0);
    return;
  }
  rng.fill_uniform(v, static_cast<T>(-bound), static_cast<T>(bound));
}

template <class T>
void fill_normal(TensorView<T> v, double stddev, Rng& rng) {
  for (index_t i = 0; i < v.numel(); ++i) v.data()[i] = static_cast<T>(stddev * rng.normal());
}

}  // namespace detail

/// Every element = value.
template <class W>
void constant(W&& w, double value) {
  auto v = detail::mut_view(w);
  using T = typename decltype(v)::value_type;
  for (index_t i = 0; i < v.numel(); ++i) v.data()[i] = static_cast<T>(value);
}
template <class W>
void zeros(W&& w) {
  constant(w, 0.0);
}
template <class W>
void ones(W&& w) {
  constant(w, 1.0);
}

/// U(a, b), a < b.
template <class W>
void uniform(W&& w, Rng& rng, double a, double b) {
  auto v = detail::mut_view(w);
  using T = typename decltype(v)::value_type;
  rng.fill_uniform(v, static_cast<T>(a), static_cast<T>(b));
}

/// N(mean, stddev^2), stddev >= 0.
template <class W>
void normal(W&& w, Rng& rng, double mean = 0.0, double stddev = 1.0) {
  auto v = detail::mut_view(w);
  detail::check_scale("init::normal", stddev);
  using T = typename decltype(v)::value_type;
  for (index_t i = 0; i < v.numel(); ++i) v.data()[i] = static_cast<T>(mean + stddev * rng.normal());
}

/// LeCun normal, N(0, 1/fan_in): the SELU initialisation (Klambauer et al. 2017, sec. 3;
/// SPECS 1.3), = kaiming_normal(mode fan_in, nonlinearity linear).
template <class W>
void lecun_normal(W&& w, Rng& rng) {
  auto v = detail::mut_view(w);
  detail::fill_normal(v, 1.0 / std::sqrt(detail::fan(v.shape(), FanMode::fan_in)), rng);
}

/// Glorot & Bengio 2010: U(+-gain sqrt(6 / (fan_in + fan_out))).
template <class W>
void xavier_uniform(W&& w, Rng& rng, double gain = 1.0) {
  auto v = detail::mut_view(w);
  detail::check_scale("init::xavier_uniform", gain);
  const Fans f = fans(v.shape());
  detail::fill_uniform(v, gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out)), rng);
}

/// Glorot & Bengio 2010: N(0, gain^2 2 / (fan_in + fan_out)).
template <class W>
void xavier_normal(W&& w, Rng& rng, double gain = 1.0) {
  auto v = detail::mut_view(w);
  detail::check_scale("init::xavier_normal", gain);
  const Fans f = fans(v.shape());
  detail::fill_normal(v, gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out)), rng);
}

/// He et al. 2015: U(+-gain sqrt(3 / fan)), gain = calculate_gain(nl, a) (torch's defaults:
/// a = 0, fan_in, leaky_relu, i.e. gain sqrt(2)).
template <class W>
void kaiming_uniform(W&& w, Rng& rng, double a = 0.0, FanMode mode = FanMode::fan_in,
                     Nonlinearity nl = Nonlinearity::leaky_relu) {
  auto v = detail::mut_view(w);
  const double gain = calculate_gain(nl, a);
  detail::fill_uniform(v, gain * std::sqrt(3.0 / detail::fan(v.shape(), mode)), rng);
}

/// He et al. 2015: N(0, gain^2 / fan).
template <class W>
void kaiming_normal(W&& w, Rng& rng, double a = 0.0, FanMode mode = FanMode::fan_in,
                    Nonlinearity nl = Nonlinearity::leaky_relu) {
  auto v = detail::mut_view(w);
  const double gain = calculate_gain(nl, a);
  detail::fill_normal(v, gain / std::sqrt(detail::fan(v.shape(), mode)), rng);
}

/// Saxe et al. 2014 (torch.nn.init.orthogonal_): the weight viewed as [rows = dim 0, cols = the
/// rest] gets orthonormal rows (rows <= cols) or columns (rows > cols), times gain. QR of a
/// Gaussian matrix with the signs of R's diagonal folded into Q, so Q is Haar-distributed.
template <class W>
void orthogonal(W&& w, Rng& rng, double gain = 1.0) {
  auto v = detail::mut_view(w);
  using T = typename decltype(v)::value_type;
  detail::check_scale("init::orthogonal", gain);
  if (v.rank() < 2)
    throw ShapeError("init.1", asrkit::detail::str("init::orthogonal: needs a weight of rank >= 2, "
                                                   "got ", v.shape().str()));
  const index_t rows = v.dim(0), cols = rows == 0 ? 0 : v.numel() / rows;
  if (v.numel() == 0) return;
  // Draw rows x cols in row-major order, factor the tall orientation.
  Eigen::MatrixXd flat(rows, cols);
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) flat(r, c) = rng.normal();
  const bool wide = rows < cols;
  const Eigen::MatrixXd tall = wide ? Eigen::MatrixXd(flat.transpose()) : flat;
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(tall);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(tall.rows(), tall.cols());
  for (index_t c = 0; c < q.cols(); ++c)
    if (qr.matrixQR()(c, c) < 0) q.col(c) = -q.col(c);
  if (wide) q.transposeInPlace();
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) v.data()[r * cols + c] = static_cast<T>(gain * q(r, c));
}

/// Ones on the main diagonal of a rank-2 weight, zeros elsewhere (torch.nn.init.eye_; the
/// identity recurrent matrix of Le et al. 2015 and BN-LSTM's pixel-MNIST setting).
template <class W>
void identity(W&& w, double gain = 1.0) {
  auto v = detail::mut_view(w);
  using T = typename decltype(v)::value_type;
  if (v.rank() != 2)
    throw ShapeError("init.3", asrkit::detail::str("init::identity: needs a rank-2 weight, got ",
                                                   v.shape().str()));
  for (index_t r = 0; r < v.dim(0); ++r)
    for (index_t c = 0; c < v.dim(1); ++c)
      v.data()[r * v.dim(1) + c] = r == c ? static_cast<T>(gain) : T(0);
}

/// PyTorch's default for nn.Linear / nn.ConvNd (reset_parameters): weight from kaiming_uniform
/// with a = sqrt(5), which is U(+-1/sqrt(fan_in)), then bias (if it has elements) from
/// U(+-1/sqrt(fan_in)) too.
template <class T>
void torch_default(Parameter<T>& weight, Parameter<T>* bias, Rng& rng) {
  kaiming_uniform(weight, rng, std::sqrt(5.0));
  if (bias != nullptr && bias->value.numel() > 0) {
    const auto f = fans(weight.value.shape());
    detail::fill_uniform(bias->value.view(), f.fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(f.fan_in)) : 0.0, rng);
  }
}

}  // namespace init
}  // namespace asrkit
