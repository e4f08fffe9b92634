// asrkit/nn/detail/sequence.hpp - shared bits of the time-major sequence layers (feed-forward,
// Conformer convolution, encoder blocks, subsampling): lengths checks, padding masks and the
// scaled residual add. Not part of the public API.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <asrkit/core/config.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>

namespace asrkit {
namespace detail {
namespace seq {

/// Checks x [T, B, features] (features < 0: any) and returns its lengths (validated copy; all
/// T when `lengths` is empty).
template <class T>
std::vector<std::int32_t> checked_lengths(TensorView<const T> x, index_t features,
                                          TensorView<const std::int32_t> lengths, const char* who) {
  if (x.rank() != 3 || (features >= 0 && x.dim(2) != features))
    throw ShapeError("sequence.1", str(who, ": argument x: expected shape [T, B, ",
                                       features >= 0 ? std::to_string(features) : std::string("F"),
                                       "], got ", x.shape().str()));
  return detail::checked_lengths(lengths, x.dim(0), x.dim(1), who, {"sequence.2", "sequence.3"});
}

/// Sets the frames t >= lengths[b] of y [T, B, F] to zero.
template <class T>
void zero_padding(TensorView<T> y, const std::vector<std::int32_t>& lengths) {
  zero_padded(y.data(), y.dim(0), y.dim(1), y.dim(2), lengths);
}

/// A copy of dy, which must have the forward output's shape (ShapeError encoder_block.2), with
/// padded frames zeroed (their outputs were set to 0).
template <class T>
Tensor<T> checked_gradient(TensorView<const T> dy, const Shape& shape,
                           const std::vector<std::int32_t>& lengths, const char* who) {
  if (dy.shape() != shape)
    throw ShapeError("encoder_block.2", str(who, "::backward: argument dy: expected shape ",
                                            shape.str(), " (the forward output), got ", dy.shape().str()));
  Tensor<T> g(dy);
  zero_padding(g.view(), lengths);
  return g;
}

/// True when some frame is padding.
inline bool has_padding(const std::vector<std::int32_t>& lengths, index_t steps) {
  return std::any_of(lengths.begin(), lengths.end(), [&](std::int32_t l) { return l < steps; });
}

/// x [T, B, F] += coef · factor[b] · branch (a residual add; factor: per-item stochastic-depth
/// scale, 0 for a dropped item).
template <class T>
void add_scaled(TensorView<T> x, TensorView<const T> branch, T coef, const std::vector<T>& factor) {
  const index_t steps = x.dim(0), batch = x.dim(1), f = x.dim(2);
  for (index_t t = 0; t < steps; ++t)
    for (index_t b = 0; b < batch; ++b) {
      const T s = coef * factor[static_cast<std::size_t>(b)];
      if (s == T(0)) continue;
      T* ASRKIT_RESTRICT xr = x.data() + (t * batch + b) * f;
      const T* ASRKIT_RESTRICT br = branch.data() + (t * batch + b) * f;
      for (index_t j = 0; j < f; ++j) xr[j] += s * br[j];
    }
}

/// out [T, B, F] = coef · factor[b] · g (the gradient reaching a residual branch).
template <class T>
Tensor<T> scaled(TensorView<const T> g, T coef, const std::vector<T>& factor) {
  Tensor<T> out(g.shape(), uninitialized);
  const index_t steps = g.dim(0), batch = g.dim(1), f = g.dim(2);
  for (index_t t = 0; t < steps; ++t)
    for (index_t b = 0; b < batch; ++b) {
      const T s = coef * factor[static_cast<std::size_t>(b)];
      const T* ASRKIT_RESTRICT gr = g.data() + (t * batch + b) * f;
      T* ASRKIT_RESTRICT o = out.data() + (t * batch + b) * f;
      for (index_t j = 0; j < f; ++j) o[j] = s * gr[j];
    }
  return out;
}

/// a += b, element-wise (same shapes).
template <class T>
void add_to(TensorView<T> a, TensorView<const T> b) {
  T* ASRKIT_RESTRICT pa = a.data();
  const T* ASRKIT_RESTRICT pb = b.data();
  for (index_t i = 0, n = a.numel(); i < n; ++i) pa[i] += pb[i];
}

}  // namespace seq
}  // namespace detail
}  // namespace asrkit
