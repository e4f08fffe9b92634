// asrkit/core/threading.hpp - the thread count and the one parallel loop asrkit uses.
//
//   asrkit::set_num_threads(2);
//   asrkit::parallel_for(batch, [&](index_t b) { ... });   // static split: deterministic
//
// Work is split statically over independent items (batch entries, rows), never by reducing
// across threads, so results do not depend on the number of threads.
#pragma once

#include <Eigen/Core>

#include <atomic>
#include <exception>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace asrkit {
namespace detail {
inline std::atomic<int>& thread_count() {
#if defined(_OPENMP)
  static std::atomic<int> n{omp_get_max_threads()};
#else
  static std::atomic<int> n{1};
#endif
  return n;
}
}  // namespace detail

/// Threads used by asrkit's own loops and by Eigen's matrix products. n >= 1. Without OpenMP
/// asrkit runs on one thread whatever n is.
inline void set_num_threads(int n) {
  if (n < 1) throw ValueError("threads.1", detail::str("num_threads must be >= 1, got ", n));
  detail::thread_count() = n;
  Eigen::setNbThreads(n);
}

/// The thread count set by set_num_threads (default: OpenMP's, i.e. OMP_NUM_THREADS or cores).
inline int num_threads() {
#if defined(_OPENMP)
  return detail::thread_count();
#else
  return 1;
#endif
}

/// Calls f(i) for i in [0, n), split statically over num_threads() threads. f must not throw
/// across threads: exceptions are captured and the first one is rethrown after the loop.
template <class F>
void parallel_for(index_t n, F&& f) {
#if defined(_OPENMP)
  const int threads = num_threads();
  if (threads > 1 && n > 1 && !omp_in_parallel()) {
    std::exception_ptr error;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (index_t i = 0; i < n; ++i) {
      try {
        f(i);
      } catch (...) {
#pragma omp critical(asrkit_parallel_for_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  for (index_t i = 0; i < n; ++i) f(i);
}

}  // namespace asrkit
