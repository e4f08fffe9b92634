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
#include <array>
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
using ops::detail::load_as;
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

/// LayerNorm's backward row from what forward_train kept, h: x (FromX) or xhat, with xhat =
/// (x - mu) * rs: dx = rs * (g - ma - xhat * mb) with g = γ ⊙ dy (γ null: g = dy). xhat is formed
/// as forward_train forms it; the two paths still differ by a few ulps where the compiler
/// contracts them differently (tests/nn/test_input_cache.cpp).
template <bool FromX, class T>
void ln_backward_row(T* dx, const T* dy, const T* h, const T* gamma, T mu, T rs, T ma, T mb, index_t n) {
  const T c = -rs * ma, e = -rs * mb;
  const auto xhat = [mu, rs](auto hj) {
    if constexpr (FromX) return (hj - mu) * rs;
    else return hj;
  };
  if (gamma) map_row(dx, n, [rs, c, e, xhat](auto d, auto hj, auto g) { return d * g * rs + (xhat(hj) * e + c); }, dy, h, gamma);
  else map_row(dx, n, [rs, c, e, xhat](auto d, auto hj) { return d * rs + (xhat(hj) * e + c); }, dy, h);
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

/// The identity: what BatchNorm keeps of its input (map_row_keeping's `keep`).
inline constexpr auto unchanged = [](auto v) { return v; };

/// map_row(y, n, f, x, p...), and keep(x) written to `kept` when it is not null (BatchNorm keeps
/// x itself, LayerNorm a copied x standardised), with streaming stores when `streaming`: the one
/// pass of a training forward that caches what its backward reads.
template <class T, class F, class K, class... P>
void map_row_keeping(T* ASRKIT_RESTRICT y, T* ASRKIT_RESTRICT kept, bool streaming, const T* ASRKIT_RESTRICT x,
                     index_t n, F f, K keep, const P*... p) {
  // restrict (and stream_row inlined): the stores to y and kept cannot change f's captures
  // (LayerNorm's float mean and 1/σ), so the loop keeps them in registers (config.hpp)
  if (kept && streaming) {
    stream_row(
        kept, n,
        [&](index_t j) {
          const auto v = vec_load(x + j);
          vec_store(y + j, f(v, vec_load(p + j)...));
          return keep(v);
        },
        [&](index_t j0, index_t j1) {
          map_row(y + j0, j1 - j0, f, x + j0, (p + j0)...);
          map_row(kept + j0, j1 - j0, keep, x + j0);
        });
  } else {
    map_row(y, n, f, x, p...);
    if (kept) map_row(kept, n, keep, x);
  }
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
/// Rows whose dβ and dγ LayerNorm's backward sums in T before adding them into double. dy has
/// either sign and is not shifted, so the float rounding grows with the rows summed: for dβ of
/// [1100, 1024] N(0, 1) floats, the worst |error| / (1 + |dβ|) was 6.3e-6 over 64 rows, 3.8e-6
/// over 16, 2.9e-6 over 8 and 5.6e-8 in double at every row (one float sum over all rows, as
/// PyTorch's CPU kernel: 2.0e-5). Each flush costs about a row pass: on [4000, 1024], 16 rows
/// added 0.1-0.2 ms to a 1.3 ms backward, and every row in double 1 ms (docs/norms.md).
inline constexpr index_t kGradFlushRows = 16;

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

/// out[k] += Σ_j f(j, zero)[k] over j in [0, n), k < K: f returns a std::array of K values of
/// the type of `zero`, RowVec<T> (the columns j..j+L) over the vector part and T over the tail.
/// They are summed in T, in vector lanes that are added into per-lane double totals every
/// kLaneFlush steps (each T partial sum has at most 64 terms, as column_moments'), and the totals
/// into out at the end. The order depends on n and the vector width only. Products formed and
/// summed in double made LayerNorm's backward compute-bound (ln_grad_sums_row); four
/// interleaved accumulators per sum instead of one made it slower (1.65-1.8 against 1.5-1.6 ms).
template <index_t K, class T, class F>
void lane_sums(index_t n, double* out, F f) {  // f by value: a local whose captures stay in registers
  constexpr index_t kLaneFlush = 64;
  index_t j = 0;
  const auto sweep = [&](auto zero) {
    using V = decltype(zero);
    constexpr index_t L = sizeof(V) / sizeof(T);
    double total[K][L] = {};
    while (j + L <= n) {
      const index_t j1 = std::min(n - (n - j) % L, j + kLaneFlush * L);
      V acc[K];
      std::fill(acc, acc + K, zero);
      for (; j < j1; j += L) {
        const auto v = f(j, zero);
        for (index_t k = 0; k < K; ++k) acc[k] += v[static_cast<std::size_t>(k)];
      }
      for (index_t k = 0; k < K; ++k) {
        T lanes[L];
        std::memcpy(lanes, &acc[k], sizeof lanes);
        for (index_t l = 0; l < L; ++l) total[k][l] += static_cast<double>(lanes[l]);
      }
    }
    for (index_t k = 0; k < K; ++k)
      for (index_t l = 0; l < L; ++l) out[k] += total[k][l];  // in lane order
  };
#if defined(ASRKIT_VECTOR_ROWS)
  sweep(ops::detail::RowVec<T>{});
#endif
  sweep(T{});  // the tail (every column without vectors)
}

/// LayerNorm's row statistics: the mean, and the biased variance about it (two passes over the
/// row, which is in L1 cache).
template <class T>
void row_moments(const T* ASRKIT_RESTRICT x, index_t n, double& mean, double& var) {
  double s = 0, q = 0;
  lane_sums<1, T>(n, &s, [x](index_t j, auto z) { return std::array{load_as<decltype(z)>(x + j)}; });
  mean = s / static_cast<double>(n);
  const T mu = static_cast<T>(mean);
  lane_sums<1, T>(n, &q, [x, mu](index_t j, auto z) {
    const auto d = load_as<decltype(z)>(x + j) - mu;
    return std::array{d * d};
  });
  // Σ(x − mu)² about the rounded mean mu exceeds the one about the mean by n·(mu − mean)²
  var = std::max(0.0, q / static_cast<double>(n) - (mean - mu) * (mean - mu));
}

/// LayerNorm backward's reductions over one row of dy and what forward_train kept, h: x (FromX)
/// or xhat, with xhat = (x - mu) * rs. In one pass: sums[0] += Σ_j g and sums[1] += Σ_j g·xhat
/// with g = γ ⊙ dy (γ null: dy), and per column s[j] += dy, q[j] += dy·xhat (the row's dβ, dγ in
/// T; s null: skipped; the caller moves them into double every kGradFlushRows rows).
/// LayerNorm's backward from xhat on [4000, 1024] floats, one core of the Zen 5 EPYC
/// (docs/norms.md): 2.55 ms with the products in double (grad_sums_rows) and g, Σg, Σg·xhat in
/// separate passes; 2.0 ms in T in one pass over four rows at a time (eight read streams, as
/// grad_sums_rows; two rows: 1.9 ms); 1.3-1.5 ms one row at a time; from x, 1.6-1.9 ms.
template <bool FromX, class T>
void ln_grad_sums_row(const T* ASRKIT_RESTRICT dy, const T* ASRKIT_RESTRICT h, T mu, T rs,
                      const T* ASRKIT_RESTRICT gamma, index_t cols, double* sums, T* ASRKIT_RESTRICT s,
                      T* ASRKIT_RESTRICT q) {
  // Affine: γ given and the column sums wanted (LayerNorm has both or neither); a branch per
  // step on either made the memory-bound loop slower
  const auto row = [&](auto affine) {
    lane_sums<2, T>(cols, sums, [=](index_t j, auto z) {
      using V = decltype(z);
      const V d = load_as<V>(dy + j);
      V xh = load_as<V>(h + j), g = d;
      if constexpr (FromX) xh = (xh - mu) * rs;
      if constexpr (decltype(affine)::value) {
        g = d * load_as<V>(gamma + j);
        vec_store(s + j, load_as<V>(s + j) + d);
        vec_store(q + j, load_as<V>(q + j) + d * xh);
      }
      return std::array{g, g * xh};
    });
  };
  if (gamma && s) row(std::true_type{});
  else row(std::false_type{});
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
