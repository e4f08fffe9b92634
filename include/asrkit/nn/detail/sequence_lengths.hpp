// asrkit/nn/detail/sequence_lengths.hpp - per-item lengths of time-major [T, B, F] batches and the
// padding rule (internal; shared by every layer that takes lengths).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {
namespace detail {

/// Error ids of one layer for its lengths argument: a wrong shape (ShapeError) and a value
/// outside [0, T] (ValueError).
struct LengthsErrorIds {
  const char* shape;
  const char* value;
};

/// Per-item lengths of a [T, B, ...] batch: an empty view means every frame is valid (all T);
/// otherwise shape [B] with values in [0, T]. Throws with `ids` and a message naming `layer`.
inline std::vector<std::int32_t> checked_lengths(TensorView<const std::int32_t> lengths, index_t steps,
                                                 index_t batch, const std::string& layer, LengthsErrorIds ids) {
  if (lengths.data() == nullptr || lengths.numel() == 0)
    return std::vector<std::int32_t>(static_cast<std::size_t>(batch), static_cast<std::int32_t>(steps));
  if (lengths.rank() != 1 || lengths.dim(0) != batch)
    throw ShapeError(ids.shape, detail::str(layer, ": argument lengths: expected shape [", batch,
                                            "] (or an empty view), got ", lengths.shape().str()));
  std::vector<std::int32_t> values(lengths.data(), lengths.data() + batch);
  for (index_t b = 0; b < batch; ++b) {
    const std::int32_t len = values[static_cast<std::size_t>(b)];
    if (len < 0 || len > steps)
      throw ValueError(ids.value, detail::str(layer, ": lengths[", b, "] = ", len, " is outside [0, ", steps, "]"));
  }
  return values;
}

/// Sets the padded frames (t >= lengths[b]) of a [T, B, F] tensor to zero.
template <class T>
void zero_padded(T* x, index_t steps, index_t batch, index_t features,
                 const std::vector<std::int32_t>& lengths) {
  for (index_t t = 0; t < steps; ++t)
    for (index_t b = 0; b < batch; ++b)
      if (t >= lengths[static_cast<std::size_t>(b)])
        std::fill_n(x + (t * batch + b) * features, features, T(0));
}

}  // namespace detail
}  // namespace asrkit
