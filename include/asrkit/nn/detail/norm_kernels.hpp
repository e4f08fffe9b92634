// asrkit/nn/detail/norm_kernels.hpp - the reductions behind BatchNorm, SequenceBatchNorm,
// RecurrentBatchNorm and LayerNorm (internal; not part of the API).
//
// A row-major [rows, cols] matrix is reduced over its rows, per column (feature), counting only
// the rows whose `valid` flag is set (nullptr: every row). The rows are cut into fixed chunks of
// about kReduceChunkElems elements; each chunk is reduced in one pass into double sums (of partial
// sums over up to 64 rows in T), shifted by its first row (sums of x − shift and its square), and
// the chunk results are combined in chunk order with Chan et al.'s pairwise update. Chunks depend
// on the shape only, never on the thread count, so results are bit-identical for any number of
// threads (DESIGN.md sec. 3, Numerics).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <type_traits>
#include <vector>

#include <asrkit/core/config.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/ops/detail/vector_rows.hpp>

namespace asrkit {
namespace detail {
namespace norm {

/// Elements per chunk of the row-parallel passes: 64K floats = 256 KiB, about one L2 cache.
inline constexpr index_t kChunkElems = 65536;
/// Elements per chunk of the column reductions (column_moments, column_grad_sums): 1 MiB of
/// floats. Each chunk writes per-column partial sums in double that the merge reads back: with
/// 256 KiB chunks, filling, flushing and merging them took ~8% of BatchNorm's training forward
/// on [4000, 1024] floats (perf), and 1 MiB chunks made the forward 7-10% faster on one and two
/// threads, while [2000, 256] (a Conformer block's BatchNorm) still splits in two.
inline constexpr index_t kReduceChunkElems = 4 * kChunkElems;

inline index_t chunk_rows(index_t cols, index_t elems = kChunkElems) {
  return std::max<index_t>(1, elems / std::max<index_t>(cols, 1));
}

// The row passes below are map_row / stream_row expressions (ops/detail/vector_rows.hpp).
using ops::detail::map_row;
using ops::detail::stream_fence;
using ops::detail::stream_row;
using ops::detail::vec_load;
using ops::detail::vec_store;

// ---- row kernels ------------------------------------------------------------------------------

/// BatchNorm's normalising pass, on T or RowVec<T>: y = (x - mu) * a + b with a = γ·invstd,
/// b = β, or uncentred, y = x * a + c with c = b - mu·a (one load and one subtraction fewer per
/// element; apply_affine's choice, batch_norm.hpp).
inline constexpr auto centred_affine = [](auto x, auto mu, auto a, auto b) {
  return (x - mu) * a + b;
};
inline constexpr auto affine = [](auto x, auto a, auto c) { return x * a + c; };
/// BatchNorm's backward rows from the cached input x, whose xhat is (x - mu) * invstd (invstd
/// folded into e): dx = k * (dy - c - (x - mu) * e), or uncentred dx = dy * k + x * g + h with
/// g = -k·e, h = k·(mu·e - c) (batch_norm.hpp's backward chooses like apply_affine).
inline constexpr auto centred_bn_backward = [](auto dy, auto x, auto mu, auto k, auto c, auto e) {
  return k * (dy - c - (x - mu) * e);
};
inline constexpr auto bn_backward_uncentred = [](auto dy, auto x, auto k, auto g, auto h) {
  return dy * k + x * g + h;
};

/// LayerNorm rows: y = (x - mu) * rs [* g + b].
template <class T>
void standardize_row(T* y, const T* x, T mu, T rs, index_t n) {
  map_row(y, n, [mu, rs](auto xj) { return (xj - mu) * rs; }, x);
}
template <class T>
void standardize_affine_row(T* y, const T* x, T mu, T rs, const T* g, const T* b, index_t n) {
  map_row(y, n, [mu, rs](auto xj, auto gj, auto bj) { return (xj - mu) * rs * gj + bj; }, x, g, b);
}
template <class T>
void mul_row(T* out, const T* a, const T* b, index_t n) {
  map_row(out, n, [](auto aj, auto bj) { return aj * bj; }, a, b);
}
/// dx = rs * (g - ma - h * mb).
template <class T>
void ln_backward_row(T* dx, const T* g, const T* h, T rs, T ma, T mb, index_t n) {
  map_row(dx, n, [rs, ma, mb](auto gj, auto hj) { return rs * (gj - ma - hj * mb); }, g, h);
}

// ---- non-temporal stores ------------------------------------------------------------------------
//
// A training forward's cache (BatchNorm's copy of x, LayerNorm's xhat) is read again only by
// backward, after the rest of the network has run: written through the cache it evicts the
// layer's input and output (x, y and the cache of a [500·8, 1024] float layer are 48 MiB against
// a 32 MiB L3) for data nobody reads soon. Streaming stores write it straight to memory, without
// the read-for-ownership of a normal store either.

/// Outputs from this size write the cache with streaming stores (smaller ones stay cached).
using ops::detail::kStreamBytes;

/// map_row(y, n, f, x, p...), and x copied to `copy` with streaming stores (BatchNorm's training
/// forward caching its input for backward).
template <class T, class F, class... P>
void map_row_streaming_copy(T* y, T* copy, const T* x, index_t n, F f, const P*... p) {
  stream_row(
      copy, n,
      [&](index_t j) {
        const auto v = vec_load(x + j);
        vec_store(y + j, f(v, vec_load(p + j)...));
        return v;
      },
      [&](index_t j0, index_t j1) {
        map_row(y + j0, j1 - j0, f, x + j0, (p + j0)...);
        std::copy(x + j0, x + j1, copy + j0);
      });
}

/// LayerNorm's training row: xhat = (x - mu) * rs (streamed), y = xhat * g + b (or xhat).
template <class T>
void standardize_row_streaming(T* ASRKIT_RESTRICT y, T* ASRKIT_RESTRICT xhat, const T* ASRKIT_RESTRICT x,
                               T mu, T rs, const T* g, const T* b, index_t n) {
  stream_row(
      xhat, n,
      [&](index_t j) {
        const auto h = (vec_load(x + j) - mu) * rs;
        const auto out = g ? h * vec_load(g + j) + vec_load(b + j) : h;
        std::memcpy(y + j, &out, sizeof out);
        return h;
      },
      [&](index_t j0, index_t j1) {
        standardize_row(xhat + j0, x + j0, mu, rs, j1 - j0);
        if (g) standardize_affine_row(y + j0, x + j0, mu, rs, g + j0, b + j0, j1 - j0);
        else standardize_row(y + j0, x + j0, mu, rs, j1 - j0);
      });
}

/// Valid rows of [r0, r1) taken together by the column reductions: the accumulators are loaded and
/// stored once per group instead of once per row, while every row is still read front to back
/// (the hardware prefetcher's pattern; column strips over many rows defeat it). The gradient
/// sums read four rows by name (their products are formed in double), the moments eight (summed
/// in T, so a larger group halves the accumulator traffic).
inline constexpr index_t kRowGroup = 4;
inline constexpr index_t kMomentRows = 8;
/// Rows whose moments column_moments sums in T before adding them into double (any chunk size).
inline constexpr index_t kMomentFlushRows = 64;

/// Calls f(group, n) for the valid rows of [r0, r1) (all when `valid` is null) in groups of
/// Group row indices, the last group possibly shorter; returns the number of valid rows.
template <index_t Group = kRowGroup, class F>
index_t for_valid_row_groups(const unsigned char* valid, index_t r0, index_t r1, F&& f) {
  index_t group[Group], n = 0, total = 0;
  for (index_t r = r0; r < r1; ++r) {
    if (valid && !valid[r]) continue;
    group[n++] = r;
    if (n == Group) {
      f(static_cast<const index_t*>(group), n);
      total += n;
      n = 0;
    }
  }
  if (n > 0) f(static_cast<const index_t*>(group), n);
  return total + n;
}

/// Over rows `row[0..n)` (n <= kMomentRows) of a row-major [., cols] matrix x: s[j] += Σ d,
/// q[j] += Σ d² with d = x − shift[j], all in T; a full group at once (its eight d, their sum and
/// sum of squares formed pairwise), else row by row. column_moments moves s and q into double
/// sums every kMomentFlushRows rows: summing in T halves the SIMD work for float against double
/// accumulators (BatchNorm's statistics of [4000, 1024] floats on one core: 0.59 ms row by row in
/// double, 0.40 ms in groups of four on an AVX2 core; on the AVX-512 EPYC of docs/norms.md
/// 0.52-0.53 ms in eights with a double add per group, 0.46-0.49 ms summed in T), and d is small
/// (the shift is a row of the same chunk), so the float rounding of 64 terms stays near float's
/// epsilon relative to the spread.
template <class T>
void shifted_sums_rows(const T* x, index_t cols, const index_t* row, index_t n,
                       const T* ASRKIT_RESTRICT shift, T* ASRKIT_RESTRICT s, T* ASRKIT_RESTRICT q) {
  static_assert(kMomentRows == 8, "shifted_sums_rows reads eight rows by name");
  if (n == kMomentRows) {
    const T* ASRKIT_RESTRICT x0 = x + row[0] * cols;
    const T* ASRKIT_RESTRICT x1 = x + row[1] * cols;
    const T* ASRKIT_RESTRICT x2 = x + row[2] * cols;
    const T* ASRKIT_RESTRICT x3 = x + row[3] * cols;
    const T* ASRKIT_RESTRICT x4 = x + row[4] * cols;
    const T* ASRKIT_RESTRICT x5 = x + row[5] * cols;
    const T* ASRKIT_RESTRICT x6 = x + row[6] * cols;
    const T* ASRKIT_RESTRICT x7 = x + row[7] * cols;
    for (index_t j = 0; j < cols; ++j) {
      const T sh = shift[j];
      const T d0 = x0[j] - sh, d1 = x1[j] - sh, d2 = x2[j] - sh, d3 = x3[j] - sh;
      const T d4 = x4[j] - sh, d5 = x5[j] - sh, d6 = x6[j] - sh, d7 = x7[j] - sh;
      s[j] += ((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7));
      q[j] += ((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)) + ((d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7));
    }
    return;
  }
  for (index_t i = 0; i < n; ++i) {
    const T* ASRKIT_RESTRICT x0 = x + row[i] * cols;
    for (index_t j = 0; j < cols; ++j) {
      const T d0 = x0[j] - shift[j];
      s[j] += d0;
      q[j] += d0 * d0;
    }
  }
}

/// Over rows `row[0..n)` (n <= kRowGroup) of dy and h: a[j] += Σ dy, b[j] += Σ dy · (h − centre[j])
/// (double; no centre: Σ dy · h), grouped like shifted_sums_rows. LayerNorm passes its cached
/// xhat as h; BatchNorm its cached input and the batch mean, then scales b by invstd.
template <bool Centred, class T>
void grad_sums_rows_impl(const T* dy, const T* h, index_t cols, const index_t* row, index_t n,
                         const T* ASRKIT_RESTRICT centre, double* ASRKIT_RESTRICT a,
                         double* ASRKIT_RESTRICT b) {
  const auto centred = [centre](const T* ASRKIT_RESTRICT p, index_t j) {
    if constexpr (Centred) return static_cast<double>(p[j] - centre[j]);
    else return static_cast<double>(p[j]);
  };
  static_assert(kRowGroup == 4, "grad_sums_rows_impl reads four rows by name");
  if (n == kRowGroup) {
    const T* ASRKIT_RESTRICT d0 = dy + row[0] * cols;
    const T* ASRKIT_RESTRICT d1 = dy + row[1] * cols;
    const T* ASRKIT_RESTRICT d2 = dy + row[2] * cols;
    const T* ASRKIT_RESTRICT d3 = dy + row[3] * cols;
    const T* ASRKIT_RESTRICT h0 = h + row[0] * cols;
    const T* ASRKIT_RESTRICT h1 = h + row[1] * cols;
    const T* ASRKIT_RESTRICT h2 = h + row[2] * cols;
    const T* ASRKIT_RESTRICT h3 = h + row[3] * cols;
    for (index_t j = 0; j < cols; ++j) {
      const double e0 = static_cast<double>(d0[j]), e1 = static_cast<double>(d1[j]);
      const double e2 = static_cast<double>(d2[j]), e3 = static_cast<double>(d3[j]);
      a[j] += (e0 + e1) + (e2 + e3);
      b[j] += (e0 * centred(h0, j) + e1 * centred(h1, j)) + (e2 * centred(h2, j) + e3 * centred(h3, j));
    }
    return;
  }
  for (index_t i = 0; i < n; ++i) {
    const T* ASRKIT_RESTRICT d0 = dy + row[i] * cols;
    const T* ASRKIT_RESTRICT h0 = h + row[i] * cols;
    for (index_t j = 0; j < cols; ++j) {
      a[j] += static_cast<double>(d0[j]);
      b[j] += static_cast<double>(d0[j]) * centred(h0, j);
    }
  }
}
template <class T>
void grad_sums_rows(const T* dy, const T* h, index_t cols, const index_t* row, index_t n, double* a,
                    double* b, const T* centre = nullptr) {
  if (centre) grad_sums_rows_impl<true>(dy, h, cols, row, n, centre, a, b);
  else grad_sums_rows_impl<false>(dy, h, cols, row, n, centre, a, b);
}

/// Per-column mean and M2 (sum of squared deviations) over the valid rows; returns their count.
/// The chunks of chunk_rows(cols, kReduceChunkElems) rows are reduced in parallel, each in one
/// pass shifted by its first valid row (mean = shift + Σd/n, M2 = Σd² − (Σd)²/n with d = x − shift:
/// no cancellation while the shift lies within the data; Σd and Σd² in T over at most
/// kMomentFlushRows rows, then in double), then merged in chunk order with Chan et al.'s update,
/// blocks of columns in parallel (each column's merge is the same sequence for any thread count).
template <class T>
index_t column_moments(const T* x, index_t rows, index_t cols, const unsigned char* valid,
                       double* ASRKIT_RESTRICT mean, double* ASRKIT_RESTRICT m2) {
  const index_t step = chunk_rows(cols, kReduceChunkElems), chunks = rows == 0 ? 0 : (rows + step - 1) / step;
  // per chunk: s, q, shift; each chunk writes its own before the merge reads it
  const std::unique_ptr<double[]> part(new double[static_cast<std::size_t>(3 * chunks * cols)]);
  std::vector<index_t> count(static_cast<std::size_t>(chunks), 0);
  parallel_for(chunks, [&](index_t c) {
    index_t r0 = c * step;
    const index_t r1 = std::min(rows, r0 + step);
    while (r0 < r1 && valid && !valid[r0]) ++r0;  // the shift: the first valid row
    if (r0 == r1) return;                          // count stays 0
    double* s = part.get() + 3 * c * cols;
    double* q = s + cols;
    double* shift = q + cols;
    const std::unique_ptr<T[]> sums_t(new T[static_cast<std::size_t>(3 * cols)]);  // s, q, shift in T
    T* s_t = sums_t.get();
    T* q_t = s_t + cols;
    T* shift_t = q_t + cols;
    std::copy(x + r0 * cols, x + (r0 + 1) * cols, shift_t);
    std::fill(s_t, s_t + 2 * cols, T(0));
    std::fill(s, s + 2 * cols, 0.0);
    for (index_t j = 0; j < cols; ++j) shift[j] = static_cast<double>(shift_t[j]);
    index_t pending = 0;  // rows summed in T since the last flush
    const auto flush = [&] {
      for (index_t j = 0; j < 2 * cols; ++j) s[j] += static_cast<double>(s_t[j]);  // s and q
      std::fill(s_t, s_t + 2 * cols, T(0));
      pending = 0;
    };
    count[static_cast<std::size_t>(c)] =
        for_valid_row_groups<kMomentRows>(valid, r0, r1, [&](const index_t* group, index_t n) {
          shifted_sums_rows(x, cols, group, n, shift_t, s_t, q_t);
          if ((pending += n) >= kMomentFlushRows) flush();
        });
    if (pending > 0) flush();
  });
  std::fill(mean, mean + cols, 0.0);
  std::fill(m2, m2 + cols, 0.0);
  constexpr index_t kMergeCols = 128;
  parallel_for((cols + kMergeCols - 1) / kMergeCols, [&](index_t block) {
    const index_t j0 = block * kMergeCols, j1 = std::min(cols, j0 + kMergeCols);
    index_t n = 0;
    for (index_t c = 0; c < chunks; ++c) {  // Chan, Golub & LeVeque (1979), in chunk order
      const index_t nb = count[static_cast<std::size_t>(c)];
      if (nb == 0) continue;
      const double* s = part.get() + 3 * c * cols;
      const double* q = s + cols;
      const double* shift = q + cols;
      const double na = static_cast<double>(n), nbd = static_cast<double>(nb);
      const double wt = nbd / (na + nbd), cross = na * nbd / (na + nbd);
      for (index_t j = j0; j < j1; ++j) {
        const double mb = shift[j] + s[j] / nbd;
        const double m2b = std::max(0.0, q[j] - s[j] * s[j] / nbd);
        const double delta = mb - mean[j];
        mean[j] += delta * wt;
        m2[j] += m2b + delta * delta * cross;
      }
      n += nb;
    }
  });
  return std::accumulate(count.begin(), count.end(), index_t(0));
}

/// Per-column sums over the valid rows of dy and of dy · (h − centre) (centre may be null; the dβ
/// and, up to invstd, dγ of a norm layer): chunks reduced in parallel like column_moments, their
/// sums added in chunk order.
template <class T>
void column_grad_sums(const T* dy, const T* h, const T* centre, index_t rows, index_t cols,
                      const unsigned char* valid, double* ASRKIT_RESTRICT sum_dy,
                      double* ASRKIT_RESTRICT sum_dy_h) {
  const index_t step = chunk_rows(cols, kReduceChunkElems), chunks = rows == 0 ? 0 : (rows + step - 1) / step;
  std::vector<double> part(static_cast<std::size_t>(2 * chunks * cols), 0.0);
  parallel_for(chunks, [&](index_t c) {
    double* a = part.data() + 2 * c * cols;
    for_valid_row_groups(valid, c * step, std::min(rows, (c + 1) * step),
                         [&](const index_t* group, index_t n) { grad_sums_rows(dy, h, cols, group, n, a, a + cols, centre); });
  });
  std::fill(sum_dy, sum_dy + cols, 0.0);
  std::fill(sum_dy_h, sum_dy_h + cols, 0.0);
  for (index_t c = 0; c < chunks; ++c) {
    const double* a = part.data() + 2 * c * cols;
    for (index_t j = 0; j < cols; ++j) {
      sum_dy[j] += a[j];
      sum_dy_h[j] += a[cols + j];
    }
  }
}

/// Sum of x[0..n) and of (x - shift)^2 in double, in 16 interleaved lanes (a fixed order the
/// compiler turns into SIMD code: a single running sum would be one serial add chain).
template <class T>
double lane_sum(const T* ASRKIT_RESTRICT x, index_t n) {
  constexpr int kLanes = 16;
  double acc[kLanes] = {};
  index_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += static_cast<double>(x[j + k]);
  for (int k = 0; j < n; ++j, ++k) acc[k] += static_cast<double>(x[j]);
  double s = 0;
  for (double a : acc) s += a;
  return s;
}
template <class T>
double lane_sum_sq(const T* ASRKIT_RESTRICT x, index_t n, double shift) {
  constexpr int kLanes = 16;
  double acc[kLanes] = {};
  index_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const double d = static_cast<double>(x[j + k]) - shift;
      acc[k] += d * d;
    }
  for (int k = 0; j < n; ++j, ++k) {
    const double d = static_cast<double>(x[j]) - shift;
    acc[k] += d * d;
  }
  double s = 0;
  for (double a : acc) s += a;
  return s;
}
/// Sum of a[j] * b[j] in double, lanes as lane_sum.
template <class T>
double lane_dot(const T* ASRKIT_RESTRICT a, const T* ASRKIT_RESTRICT b, index_t n) {
  constexpr int kLanes = 16;
  double acc[kLanes] = {};
  index_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += static_cast<double>(a[j + k]) * static_cast<double>(b[j + k]);
  for (int k = 0; j < n; ++j, ++k) acc[k] += static_cast<double>(a[j]) * static_cast<double>(b[j]);
  double s = 0;
  for (double v : acc) s += v;
  return s;
}

/// Calls f(r0, r1) for row ranges of about kChunkElems elements, in parallel (each row once).
template <class F>
void for_row_chunks(index_t rows, index_t cols, F&& f) {
  const index_t step = chunk_rows(cols);
  const index_t chunks = rows == 0 ? 0 : (rows + step - 1) / step;
  parallel_for(chunks, [&](index_t c) { f(c * step, std::min(rows, (c + 1) * step)); });
}

/// Valid-row flags of a time-major [T, B] batch: row t * B + b is valid when t < lengths[b].
inline std::vector<unsigned char> sequence_mask(index_t steps, index_t batch,
                                                const std::int32_t* lengths) {
  std::vector<unsigned char> m(static_cast<std::size_t>(steps * batch));
  for (index_t t = 0; t < steps; ++t)
    for (index_t b = 0; b < batch; ++b)
      m[static_cast<std::size_t>(t * batch + b)] = t < lengths[b] ? 1 : 0;
  return m;
}

}  // namespace norm
}  // namespace detail
}  // namespace asrkit
