// asrkit/nn/detail/parallel_work.hpp - parallel_for that stays on the calling thread for small
// problems (internal; used by nn/row_conv.hpp and nn/random_walk.hpp).
#pragma once

#include <asrkit/core/shape.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {
namespace detail {

/// Work (elements touched) below which a thread team costs more than it saves.
inline constexpr index_t kParallelWork = index_t(1) << 15;

/// parallel_for(tasks, f) when `work` pays for a thread team, else the same loop serially. Tasks
/// must be independent, so the result is the same either way (and for any thread count).
template <class F>
void parallel_for_work(index_t tasks, index_t work, F&& f) {
  if (work < kParallelWork) {
    for (index_t i = 0; i < tasks; ++i) f(i);
    return;
  }
  parallel_for(tasks, f);
}

}  // namespace detail
}  // namespace asrkit
