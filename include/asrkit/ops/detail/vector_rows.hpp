// asrkit/ops/detail/vector_rows.hpp - element-wise row passes in SIMD vectors, and streaming
// stores (internal; not part of the API).
//
// The row passes of the norm layers stream [rows, cols] matrices through memory (BatchNorm's
// inference on [4000, 1024] floats reads 16 MiB and writes 16 MiB). Each is written once, as a
// generic expression of the loaded values, and map_row runs it on GCC/Clang vectors of
// kRowVecBytes, kRowUnroll at a time with all loads before the stores. 32 bytes even where
// AVX-512 is enabled: on the Zen 4 EPYC of docs/norms.md, y = x·a + b over 16 MiB ran 0.64-0.73 ms
// in 256-bit vectors and 0.88-0.95 ms in 512-bit ones (one thread; 0.35-0.38 against 0.49-0.50
// ms on two), and in cache the two widths tie. Compute-bound expressions ask for
// kComputeVecBytes instead (below). Reductions are not written this way: compiled
// with 256-bit vectors, BatchNorm's statistics were slower. ASRKIT_NO_VECTOR_ROWS (or a
// compiler without GCC vectors) gives plain loops.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <asrkit/core/config.hpp>
#include <asrkit/core/shape.hpp>

#if defined(__GNUC__) && (defined(__AVX__) || defined(__SSE2__)) && !defined(ASRKIT_NO_VECTOR_ROWS)
#define ASRKIT_VECTOR_ROWS 1
#include <immintrin.h>
#endif

namespace asrkit {
namespace ops {
namespace detail {

/// A V (a vector type, an array of lanes, or T itself) from p, any alignment.
template <class V, class T>
V load_as(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// Saved tensors (what a training forward keeps for backward) from this size are written with
/// streaming stores: backward reads them after the rest of the network has run, so written
/// through the cache they would only evict the layer's input and output.
inline constexpr std::size_t kStreamBytes = std::size_t(4) << 20;

#if defined(ASRKIT_VECTOR_ROWS)
#if defined(__AVX__)
inline constexpr int kRowVecBytes = 32;
#else
inline constexpr int kRowVecBytes = 16;
#endif
// For expressions that do many operations per element loaded (expm1's polynomial in SELU and
// Swish's derivative) the widest vectors pay where the core executes them at full width: on a
// Zen 5 EPYC (family 26), SELU's forward on [4000, 1024] floats took 1.39 ms in 256-bit vectors
// and 0.82 ms in 512-bit ones (one thread), while BatchNorm's memory-bound rows were 6-20%
// slower in 512-bit ones there too.
#if defined(__AVX512F__)
inline constexpr int kComputeVecBytes = 64;
#else
inline constexpr int kComputeVecBytes = kRowVecBytes;
#endif
inline constexpr index_t kRowUnroll = 4;
// A GCC/Clang vector type of Bytes (kRowVecBytes unless said); loaded and stored with memcpy
// (any alignment).
template <class T, int Bytes = kRowVecBytes>
struct RowVecOf {
  typedef T type __attribute__((vector_size(Bytes)));
};
template <class T, int Bytes = kRowVecBytes>
using RowVec = typename RowVecOf<T, Bytes>::type;
template <int Bytes = kRowVecBytes, class T>
RowVec<T, Bytes> vec_load(const T* p) {
  RowVec<T, Bytes> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T, class V>
void vec_store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

/// dst[j] = f(in[j]...) for j in [0, n); f takes and returns RowVec<T, Bytes> or T (it is one
/// generic expression: GCC vectors mix with scalars). dst may alias an input at the same index.
/// Bytes: kRowVecBytes for memory-bound expressions, kComputeVecBytes for compute-bound ones.
template <int Bytes = kRowVecBytes, class T, class F, class... In>
void map_row(T* dst, index_t n, F&& f, const In*... in) {
  constexpr index_t L = Bytes / sizeof(T), U = kRowUnroll;
  index_t j = 0;
  for (; j + U * L <= n; j += U * L) {
    RowVec<T, Bytes> out[U];
    for (index_t k = 0; k < U; ++k) out[k] = f(vec_load<Bytes>(in + j + k * L)...);
    for (index_t k = 0; k < U; ++k) vec_store(dst + j + k * L, out[k]);
  }
  for (; j + L <= n; j += L) vec_store(dst + j, f(vec_load<Bytes>(in + j)...));
  for (; j < n; ++j) dst[j] = f(in[j]...);
}

// ---- streaming (non-temporal) stores ----------------------------------------------------------

inline void stream_store(float* p, RowVec<float> v) {
#if defined(__AVX__)
  _mm256_stream_ps(p, reinterpret_cast<__m256&>(v));
#else
  _mm_stream_ps(p, reinterpret_cast<__m128&>(v));
#endif
}
inline void stream_store(double* p, RowVec<double> v) {
#if defined(__AVX__)
  _mm256_stream_pd(p, reinterpret_cast<__m256d&>(v));
#else
  _mm_stream_pd(p, reinterpret_cast<__m128d&>(v));
#endif
}
/// Orders this thread's streaming stores before what follows (the end of a parallel task).
inline void stream_fence() { _mm_sfence(); }

/// Writes dst[0..n) with streaming stores: `vec(j)` returns the vector for dst + j (it may store
/// other outputs itself), `scalar(j0, j1)` writes the unaligned head and tail.
template <class T, class Vec, class Scalar>
ASRKIT_ALWAYS_INLINE void stream_row(T* dst, index_t n, Vec&& vec, Scalar&& scalar) {
  constexpr index_t L = kRowVecBytes / sizeof(T);
  const auto misalign = static_cast<index_t>(reinterpret_cast<std::uintptr_t>(dst) % kRowVecBytes);
  index_t j = misalign % static_cast<index_t>(sizeof(T)) != 0
                  ? n
                  : std::min<index_t>(n, (kRowVecBytes - misalign) % kRowVecBytes / sizeof(T));
  scalar(index_t(0), j);
  for (; j + L <= n; j += L) stream_store(dst + j, vec(j));
  scalar(j, n);
}
#else
inline constexpr int kRowVecBytes = 0, kComputeVecBytes = 0;  // plain loops: no vectors
template <int Bytes = kRowVecBytes, class T, class F, class... In>
void map_row(T* dst, index_t n, F&& f, const In*... in) {
  for (index_t j = 0; j < n; ++j) dst[j] = f(in[j]...);
}
inline void stream_fence() {}
template <class T>
T vec_load(const T* p) {  // vec_load / vec_store: never called, stream_row uses scalar() only
  return *p;
}
template <class T>
void vec_store(T* p, T v) {
  *p = v;
}
template <class T, class Vec, class Scalar>
void stream_row(T*, index_t n, Vec&&, Scalar&& scalar) {
  scalar(index_t(0), n);
}
#endif

/// dst[0..n) = src[0..n), with streaming stores (a saved copy nobody reads soon).
template <class T>
void stream_copy(T* dst, const T* src, index_t n) {
  stream_row(dst, n, [src](index_t j) { return vec_load(src + j); },
             [dst, src](index_t j0, index_t j1) { std::copy(src + j0, src + j1, dst + j0); });
}

}  // namespace detail
}  // namespace ops
}  // namespace asrkit
