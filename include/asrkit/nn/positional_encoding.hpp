// asrkit/nn/positional_encoding.hpp - sinusoidal positional encodings for [T, B, D] sequences:
// absolute (Vaswani et al. 2017 sec. 3.5) and relative (Transformer-XL / Conformer, ESPnet's
// RelPositionalEncoding with the 2T − 1 table of rel_pos_type "latest").
//
//   asrkit::SinusoidalPositionalEncoding<float> abs_pe(256);     // y = x·sqrt(256) + PE[t]
//   auto y = abs_pe.forward(x, lengths);                         // x [T, B, 256]
//
//   asrkit::RelPositionalEncoding<float> rel_pe(256);
//   auto [xs, pos_emb] = rel_pe.forward(x, lengths);             // xs = x·sqrt(256), pos [2T−1,
//   256] auto y2 = rel_attention.forward(xs, pos_emb, lengths);       // nn/attention.hpp auto dx =
//   rel_pe.backward(dxs);                              // after forward_train
//
// The sinusoid of a (possibly negative) position p, column pair i = 0 .. D/2 − 1:
//   PE(p, 2i) = sin(p · ω_i),  PE(p, 2i + 1) = cos(p · ω_i),  ω_i = 10000^(−2i / D)
// RelPositionalEncoding returns pos_emb row r = PE(T − 1 − r), r = 0 .. 2T − 2: relative distances
// T − 1 down to −(T − 1), the layout RelPositionMultiHeadAttention's rel_shift expects.
// The table is computed in double once for max_len positions (ESPnet computes it in float32, which
// differs by up to ~1e-4 at positions in the thousands); longer inputs compute their rows per call.
// Dropout (training only) acts on the output, like ESPnet; the relative encoding also drops
// entries of pos_emb (after the x mask, from the same Rng). Padded frames give 0 and dx = 0.
// No parameters, no buffers (ESPnet's table is not in its state_dict either).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>

namespace asrkit {

struct PositionalEncodingOptions {
  std::optional<double> x_scale;  ///< factor on x; std::nullopt: sqrt(d_model) (ESPnet); 1: none
  double dropout = 0.0;           ///< in [0, 1), training only
  std::uint64_t seed = 0;         ///< dropout masks; reseed with `rng() = Rng(seed)`
  index_t max_len = 5000;         ///< positions tabulated at construction (ESPnet's default)
};

namespace detail {
namespace posenc {

/// PE(p, ·) for one position p (double, rounded to T on store).
template <class T>
void sinusoid(double p, index_t d_model, T* out) {
  const double step = -std::log(10000.0) / static_cast<double>(d_model);
  for (index_t i = 0; i < d_model / 2; ++i) {
    const double a = p * std::exp(static_cast<double>(2 * i) * step);
    out[2 * i] = static_cast<T>(std::sin(a));
    out[2 * i + 1] = static_cast<T>(std::cos(a));
  }
}

/// Shared by both encodings: y = dropout(x · scale + table[t]) on valid frames, 0 on padded ones;
/// the dropout mask and lengths are kept for backward (dx = dy · scale · mask).
template <class T>
class ScaledInput {
 public:
  ScaledInput(index_t d_model, const PositionalEncodingOptions& o, const char* layer)
      : d_model_(d_model), options_(o), layer_(layer), rng_(o.seed) {
    if (d_model < 2 || d_model % 2 != 0)
      throw ValueError("posenc.1", detail::str(layer,
                                               ": d_model must be even and >= 2 (sin/cos "
                                               "pairs), got ",
                                               d_model));
    if (!(o.dropout >= 0.0 && o.dropout < 1.0))
      throw ValueError("posenc.1",
                       detail::str(layer, ": dropout must be in [0, 1), got ", o.dropout));
    if (o.x_scale && !std::isfinite(*o.x_scale))
      throw ValueError("posenc.1",
                       detail::str(layer, ": x_scale must be finite, got ", *o.x_scale));
    if (o.max_len < 1)
      throw ValueError("posenc.1", detail::str(layer, ": max_len must be >= 1, got ", o.max_len));
    scale_ = static_cast<T>(o.x_scale ? *o.x_scale : std::sqrt(static_cast<double>(d_model)));
    table_ = Tensor<T>(Shape{o.max_len, d_model}, uninitialized);
    for (index_t p = 0; p < o.max_len; ++p)
      sinusoid(static_cast<double>(p), d_model, table_[p].data());
  }

  std::vector<std::int32_t> check(TensorView<const T> x,
                                  TensorView<const std::int32_t> lengths) const {
    if (x.rank() != 3 || x.dim(2) != d_model_)
      throw ShapeError("posenc.2", detail::str(layer_, ": argument x: expected shape [T, B, ",
                                               d_model_, "], got ", x.shape().str()));
    return checked_lengths(lengths, x.dim(0), x.dim(1), layer_, {"posenc.3", "posenc.4"});
  }

  /// PE(p) for p = 0 .. T − 1 as [T, D] (a view of the table, or `spill` filled when T > max_len).
  TensorView<const T> absolute(index_t steps, Tensor<T>& spill) const {
    if (steps <= table_.dim(0)) return TensorView<const T>(table_.data(), Shape{steps, d_model_});
    spill = Tensor<T>(Shape{steps, d_model_}, uninitialized);
    for (index_t p = 0; p < steps; ++p) sinusoid(static_cast<double>(p), d_model_, spill[p].data());
    return spill.view();
  }

  /// y = x · scale (+ add[t] when add is given) on valid frames; dropout when `rng` is given.
  Tensor<T> apply(TensorView<const T> x, const std::vector<std::int32_t>& lengths, const T* add,
                  Rng* rng, Tensor<T>* mask) const {
    const index_t steps = x.dim(0), batch = x.dim(1), d = d_model_;
    Tensor<T> y(x.shape(), uninitialized);
    for (index_t t = 0; t < steps; ++t)
      for (index_t b = 0; b < batch; ++b) {
        const T* xr = x.data() + (t * batch + b) * d;
        T* yr = y.data() + (t * batch + b) * d;
        for (index_t j = 0; j < d; ++j) yr[j] = xr[j] * scale_ + (add ? add[t * d + j] : T(0));
      }
    if (rng) drop(y, *rng, mask);
    zero_padded(y.data(), steps, batch, d, lengths);
    return y;
  }

  /// Inverted dropout in row-major order (one uniform double per element, like nn/dropout.hpp);
  /// the mask (0 or 1/(1 − p)) goes to `mask` when given.
  void drop(Tensor<T>& y, Rng& rng, Tensor<T>* mask) const {
    const bool active = options_.dropout > 0.0;
    const double q = 1.0 - options_.dropout;
    const T keep = static_cast<T>(1.0 / q);
    if (mask) *mask = Tensor<T>(y.shape(), uninitialized);
    for (index_t i = 0, n = y.numel(); i < n; ++i) {
      const T m = !active ? T(1) : rng.uniform<double>() < q ? keep : T(0);
      y.data()[i] *= m;
      if (mask) mask->data()[i] = m;
    }
  }

  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths,
                          const T* add) {
    lengths_ = check(x, lengths);
    auto y = apply(x, lengths_, add, &rng_, &mask_);
    cached_ = true;
    return y;
  }

  Tensor<T> backward(TensorView<const T> dy) const {
    if (!cached_)
      throw ValueError("posenc.5", detail::str(layer_, "::backward: call forward_train first"));
    if (dy.shape() != mask_.shape())
      throw ShapeError("posenc.6", detail::str(layer_, "::backward: argument dy: expected shape ",
                                               mask_.shape().str(), " (the forward output), got ",
                                               dy.shape().str()));
    Tensor<T> dx(dy.shape(), uninitialized);
    for (index_t i = 0, n = dy.numel(); i < n; ++i)
      dx.data()[i] = dy.data()[i] * scale_ * mask_.data()[i];
    zero_padded(dx.data(), dy.dim(0), dy.dim(1), d_model_, lengths_);
    return dx;
  }

  index_t d_model_;
  PositionalEncodingOptions options_;
  const char* layer_;
  T scale_;
  Tensor<T> table_;  // PE(p) for p < max_len
  Rng rng_;
  Tensor<T> mask_;
  std::vector<std::int32_t> lengths_;
  bool cached_ = false;
};

}  // namespace posenc
}  // namespace detail

/// Absolute sinusoidal encoding (Vaswani et al. 2017 sec. 3.5; ESPnet PositionalEncoding):
/// y[t, b] = dropout(x[t, b] · x_scale + PE(t)).
template <class T>
class SinusoidalPositionalEncoding {
  static_assert(std::is_floating_point_v<T>,
                "SinusoidalPositionalEncoding<T>: T must be float or double");

 public:
  explicit SinusoidalPositionalEncoding(index_t d_model, PositionalEncodingOptions options = {})
      : impl_(d_model, options, "SinusoidalPositionalEncoding") {}

  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) const {
    const auto lens = impl_.check(x, lengths);
    Tensor<T> spill;
    return impl_.apply(x, lens, impl_.absolute(x.dim(0), spill).data(), nullptr, nullptr);
  }
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    Tensor<T> spill;
    const index_t steps = x.rank() == 3 ? x.dim(0) : 0;
    return impl_.forward_train(x, lengths, impl_.absolute(steps, spill).data());
  }
  /// dx = dy · x_scale · dropout mask (0 on padded frames).
  Tensor<T> backward(TensorView<const T> dy) { return impl_.backward(dy); }

  /// PE(t) for t = 0 .. steps − 1, [steps, D].
  Tensor<T> table(index_t steps) const {
    Tensor<T> spill;
    return Tensor<T>(impl_.absolute(steps, spill));
  }

  template <class F>
  void for_each_parameter(F&&, std::string_view = {}) {}
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  index_t d_model() const noexcept { return impl_.d_model_; }
  T x_scale() const noexcept { return impl_.scale_; }
  Rng& rng() noexcept { return impl_.rng_; }

 private:
  detail::posenc::ScaledInput<T> impl_;
};

/// Relative encoding for RelPositionMultiHeadAttention (Dai et al. 2019; ESPnet
/// RelPositionalEncoding, "latest"): x is scaled (x · x_scale, no sinusoid added) and the table
/// pos_emb [2T − 1, D] of relative distances T − 1, ..., 0, ..., −(T − 1) is returned beside it.
template <class T>
class RelPositionalEncoding {
  static_assert(std::is_floating_point_v<T>, "RelPositionalEncoding<T>: T must be float or double");

 public:
  struct Output {
    Tensor<T> x;        ///< [T, B, D]
    Tensor<T> pos_emb;  ///< [2T − 1, D]
  };

  explicit RelPositionalEncoding(index_t d_model, PositionalEncodingOptions options = {})
      : impl_(d_model, options, "RelPositionalEncoding") {}

  Output forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) const {
    const auto lens = impl_.check(x, lengths);
    return {impl_.apply(x, lens, nullptr, nullptr, nullptr), table(x.dim(0))};
  }
  /// Training: dropout on x (mask kept for backward), then on pos_emb (no gradient).
  Output forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    Output out{impl_.forward_train(x, lengths, nullptr), table(x.dim(0))};
    if (impl_.options_.dropout > 0) impl_.drop(out.pos_emb, impl_.rng_, nullptr);
    return out;
  }
  /// dx = dy · x_scale · dropout mask (0 on padded frames); dy is the gradient of Output::x.
  Tensor<T> backward(TensorView<const T> dy) { return impl_.backward(dy); }

  /// pos_emb for `steps` frames: row r = PE(steps − 1 − r); PE(−p) = (−sin, cos) of PE(p).
  Tensor<T> table(index_t steps) const {
    const index_t d = impl_.d_model_, rows = std::max<index_t>(2 * steps - 1, 0);
    Tensor<T> spill;
    const auto pe = impl_.absolute(steps, spill);
    Tensor<T> pos(Shape{rows, d}, uninitialized);
    for (index_t r = 0; r < rows; ++r) {
      const index_t p = steps - 1 - r;
      const T* src = pe[p < 0 ? -p : p].data();
      T* dst = pos[r].data();
      for (index_t j = 0; j < d; j += 2) {
        dst[j] = p < 0 ? -src[j] : src[j];
        dst[j + 1] = src[j + 1];
      }
    }
    return pos;
  }

  template <class F>
  void for_each_parameter(F&&, std::string_view = {}) {}
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  index_t d_model() const noexcept { return impl_.d_model_; }
  T x_scale() const noexcept { return impl_.scale_; }
  Rng& rng() noexcept { return impl_.rng_; }

 private:
  detail::posenc::ScaledInput<T> impl_;
};

}  // namespace asrkit
