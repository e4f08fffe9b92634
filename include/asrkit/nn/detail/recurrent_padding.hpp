// asrkit/nn/detail/recurrent_padding.hpp - which items are still inside their sequence at a time
// step, for the BN-LSTM and residual LSTM cells (internal; not part of the API).
#pragma once

#include <cstdint>

#include <asrkit/core/config.hpp>
#include <asrkit/core/shape.hpp>

namespace asrkit {
namespace detail {
namespace padding {

/// Whether item b is still inside its sequence at step t (lengths == nullptr: every item is).
inline bool active(const std::int32_t* lengths, index_t b, index_t t) {
  return lengths == nullptr || t < lengths[b];
}

/// Copies the rows of the items active at step t from src [B, n] to dst [B, n]; the rows of
/// finished items keep dst (their recurrent state is held, and so is its gradient).
template <class T>
void copy_active_rows(const T* src, T* dst, index_t batch, index_t n, const std::int32_t* lengths,
                      index_t t) {
  for (index_t b = 0; b < batch; ++b)
    if (active(lengths, b, t))
      for (index_t j = 0; j < n; ++j) dst[b * n + j] = src[b * n + j];
}

}  // namespace padding
}  // namespace detail
}  // namespace asrkit
