// asrkit/core/config.hpp - version, compiler gates and the small macros every header shares.
#pragma once

#define ASRKIT_VERSION_MAJOR 0
#define ASRKIT_VERSION_MINOR 1
#define ASRKIT_VERSION_PATCH 0

// Functions callable from host and device code. Without nvcc this is plain `inline`, so a
// CPU-only build never needs a CUDA header (the "two gates" of DESIGN.md: ASRKIT_WITH_CUDA
// declares CUDA entry points, __CUDACC__ defines them).
#if defined(__CUDACC__)
#define ASRKIT_HOST_DEVICE __host__ __device__ inline
#else
#define ASRKIT_HOST_DEVICE inline
#endif

// Internal invariants: checked in debug builds only. User input is always validated with an
// asrkit::Error instead (see core/error.hpp).
#if defined(NDEBUG)
#define ASRKIT_ASSERT(cond) ((void)0)
#else
#include <cassert>
#define ASRKIT_ASSERT(cond) assert(cond)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ASRKIT_RESTRICT __restrict__
#else
#define ASRKIT_RESTRICT
#endif

// One compiled copy of a function for every caller in a binary: no inlining and (GCC) no
// per-caller clones. For results that must agree bit for bit between callers (a stream and
// its offline twin): inlined into different callers, the same source may be vectorised and
// contracted (a * b + c into an FMA) differently.
#if defined(__GNUC__) && !defined(__clang__)
#define ASRKIT_ONE_COPY __attribute__((noipa))
#elif defined(__clang__)
#define ASRKIT_ONE_COPY __attribute__((noinline))
#else
#define ASRKIT_ONE_COPY
#endif

// A loop template whose callers pass it lambdas over their own pointers: inlined, the stores
// through the caller's restrict pointers cannot change the lambdas' captures; called, every
// store (a memcpy of a vector) could, and the loop reloads them after each one (LayerNorm's
// training forward through ops::detail::stream_row: 1.45 ms against 0.85-0.95 inlined).
#if defined(__GNUC__) || defined(__clang__)
#define ASRKIT_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define ASRKIT_ALWAYS_INLINE inline
#endif

// A register-tiled kernel kept out of its callers: inlined into a loop that keeps state of its
// own (a direct convolution's tap table), GCC 12 spilled the tile's accumulators to the stack on
// every step with AVX2's 16 registers (a third of the FMA rate).
#if defined(__GNUC__) || defined(__clang__)
#define ASRKIT_NOINLINE __attribute__((noinline))
#else
#define ASRKIT_NOINLINE
#endif

namespace asrkit {

/// The library version as "major.minor.patch".
inline const char* version() { return "0.1.0"; }

}  // namespace asrkit
