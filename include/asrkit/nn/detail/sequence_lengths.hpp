// asrkit/nn/detail/sequence_lengths.hpp - per-item lengths of time-major [T, B, F] batches and the
// padding rule (internal; shared by nn/attention.hpp and nn/positional_encoding.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {
namespace detail {

/// Per-item lengths read from a view, or the reason they are invalid (the caller throws with
/// its own error id: ShapeError for `shape_problem`, ValueError for `value_problem`).
struct Lengths {
  std::vector<std::int32_t> values;
  std::string shape_problem, value_problem;
};

/// An empty view means every frame is valid (all T); otherwise shape [B] with values in [0, T].
inline Lengths read_lengths(TensorView<const std::int32_t> lengths, index_t steps, index_t batch,
                            const char* layer) {
  Lengths out;
  if (lengths.data() == nullptr || lengths.numel() == 0) {
    out.values.assign(static_cast<std::size_t>(batch), static_cast<std::int32_t>(steps));
    return out;
  }
  if (lengths.rank() != 1 || lengths.dim(0) != batch) {
    out.shape_problem = detail::str(layer, ": argument lengths: expected shape [", batch,
                                    "] (or an empty view), got ", lengths.shape().str());
    return out;
  }
  out.values.assign(lengths.data(), lengths.data() + batch);
  for (index_t b = 0; b < batch && out.value_problem.empty(); ++b) {
    const std::int32_t len = out.values[static_cast<std::size_t>(b)];
    if (len < 0 || len > steps)
      out.value_problem =
          detail::str(layer, ": lengths[", b, "] = ", len, " is outside [0, ", steps, "]");
  }
  return out;
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
