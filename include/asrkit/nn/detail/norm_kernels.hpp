// asrkit/nn/detail/norm_kernels.hpp - the reductions behind BatchNorm, SequenceBatchNorm,
// RecurrentBatchNorm and LayerNorm (internal; not part of the API).
//
// A row-major [rows, cols] matrix is reduced over its rows, per column (feature), counting only
// the rows whose `valid` flag is set (nullptr: every row). The rows are cut into fixed chunks of
// about kChunkElems elements; each chunk is reduced in double while it sits in cache (two passes:
// mean, then squared deviations), and the chunk results are combined in chunk order with Chan et
// al.'s pairwise update. Chunks depend on the shape only, never on the thread count, so results
// are bit-identical for any number of threads (DESIGN.md sec. 3, Numerics).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <asrkit/core/config.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {
namespace detail {
namespace norm {

/// Elements per chunk: 64K floats = 256 KiB, about one L2 cache.
inline constexpr index_t kChunkElems = 65536;

inline index_t chunk_rows(index_t cols) { return std::max<index_t>(1, kChunkElems / std::max<index_t>(cols, 1)); }

// ---- row kernels: restrict-qualified parameters so the compiler vectorises each loop ----------

template <class T>
void add_row(double* ASRKIT_RESTRICT acc, const T* ASRKIT_RESTRICT x, index_t n) {
  for (index_t j = 0; j < n; ++j) acc[j] += static_cast<double>(x[j]);
}
template <class T>
void add_sq_dev_row(double* ASRKIT_RESTRICT acc, const T* ASRKIT_RESTRICT x,
                    const double* ASRKIT_RESTRICT mean, index_t n) {
  for (index_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - mean[j];
    acc[j] += d * d;
  }
}
template <class T>
void add_grad_row(double* ASRKIT_RESTRICT sum_dy, double* ASRKIT_RESTRICT sum_dyh,
                  const T* ASRKIT_RESTRICT dy, const T* ASRKIT_RESTRICT h, index_t n) {
  for (index_t j = 0; j < n; ++j) {
    sum_dy[j] += static_cast<double>(dy[j]);
    sum_dyh[j] += static_cast<double>(dy[j]) * static_cast<double>(h[j]);
  }
}
/// xhat = (x - mu) * is; y = xhat * g + b.
template <class T>
void normalize_row(T* ASRKIT_RESTRICT y, T* ASRKIT_RESTRICT xhat, const T* ASRKIT_RESTRICT x,
                   const T* ASRKIT_RESTRICT mu, const T* ASRKIT_RESTRICT is,
                   const T* ASRKIT_RESTRICT g, const T* ASRKIT_RESTRICT b, index_t n) {
  for (index_t j = 0; j < n; ++j) {
    const T h = (x[j] - mu[j]) * is[j];
    xhat[j] = h;
    y[j] = h * g[j] + b[j];
  }
}
/// y = x * a + b.
template <class T>
void affine_row(T* ASRKIT_RESTRICT y, const T* ASRKIT_RESTRICT x, const T* ASRKIT_RESTRICT a,
                const T* ASRKIT_RESTRICT b, index_t n) {
  for (index_t j = 0; j < n; ++j) y[j] = x[j] * a[j] + b[j];
}
/// dx = k * (dy - c - h * e).
template <class T>
void bn_backward_row(T* ASRKIT_RESTRICT dx, const T* ASRKIT_RESTRICT dy, const T* ASRKIT_RESTRICT h,
                     const T* ASRKIT_RESTRICT k, const T* ASRKIT_RESTRICT c,
                     const T* ASRKIT_RESTRICT e, index_t n) {
  for (index_t j = 0; j < n; ++j) dx[j] = k[j] * (dy[j] - c[j] - h[j] * e[j]);
}

/// LayerNorm rows: y = (x - mu) * rs [* g + b].
template <class T>
void standardize_row(T* ASRKIT_RESTRICT y, const T* ASRKIT_RESTRICT x, T mu, T rs, index_t n) {
  for (index_t j = 0; j < n; ++j) y[j] = (x[j] - mu) * rs;
}
template <class T>
void standardize_affine_row(T* ASRKIT_RESTRICT y, const T* ASRKIT_RESTRICT x, T mu, T rs,
                            const T* ASRKIT_RESTRICT g, const T* ASRKIT_RESTRICT b, index_t n) {
  for (index_t j = 0; j < n; ++j) y[j] = (x[j] - mu) * rs * g[j] + b[j];
}
template <class T>
void mul_row(T* ASRKIT_RESTRICT out, const T* ASRKIT_RESTRICT a, const T* ASRKIT_RESTRICT b, index_t n) {
  for (index_t j = 0; j < n; ++j) out[j] = a[j] * b[j];
}
/// dx = rs * (g - ma - h * mb).
template <class T>
void ln_backward_row(T* ASRKIT_RESTRICT dx, const T* ASRKIT_RESTRICT g, const T* ASRKIT_RESTRICT h,
                     T rs, T ma, T mb, index_t n) {
  for (index_t j = 0; j < n; ++j) dx[j] = rs * (g[j] - ma - h[j] * mb);
}

/// Per-column mean and M2 (sum of squared deviations) over the valid rows; returns the count.
/// `mean` and `m2` have `cols` entries.
template <class T>
index_t column_moments(const T* ASRKIT_RESTRICT x, index_t rows, index_t cols,
                       const unsigned char* valid, double* ASRKIT_RESTRICT mean,
                       double* ASRKIT_RESTRICT m2) {
  const index_t step = chunk_rows(cols);
  const index_t chunks = rows == 0 ? 0 : (rows + step - 1) / step;
  std::vector<double> c_mean(static_cast<std::size_t>(chunks * cols), 0.0);
  std::vector<double> c_m2(static_cast<std::size_t>(chunks * cols), 0.0);
  std::vector<index_t> c_n(static_cast<std::size_t>(chunks), 0);
  parallel_for(chunks, [&](index_t c) {
    double* ASRKIT_RESTRICT mu = c_mean.data() + c * cols;
    double* ASRKIT_RESTRICT s2 = c_m2.data() + c * cols;
    const index_t r0 = c * step, r1 = std::min(rows, r0 + step);
    index_t n = 0;
    for (index_t r = r0; r < r1; ++r) {
      if (valid && !valid[r]) continue;
      add_row(mu, x + r * cols, cols);
      ++n;
    }
    c_n[static_cast<std::size_t>(c)] = n;
    if (n == 0) return;
    const double inv = 1.0 / static_cast<double>(n);
    for (index_t j = 0; j < cols; ++j) mu[j] *= inv;
    for (index_t r = r0; r < r1; ++r)  // second pass: the chunk is still in cache
      if (!valid || valid[r]) add_sq_dev_row(s2, x + r * cols, mu, cols);
  });
  // Chan, Golub & LeVeque (1979): merge (n_a, mean_a, M2_a) with (n_b, mean_b, M2_b), in order.
  std::fill(mean, mean + cols, 0.0);
  std::fill(m2, m2 + cols, 0.0);
  index_t n = 0;
  for (index_t c = 0; c < chunks; ++c) {
    const index_t nb = c_n[static_cast<std::size_t>(c)];
    if (nb == 0) continue;
    const double* mb = c_mean.data() + c * cols;
    const double* sb = c_m2.data() + c * cols;
    const double na = static_cast<double>(n), nbd = static_cast<double>(nb);
    const double w = nbd / (na + nbd), cross = na * nbd / (na + nbd);
    for (index_t j = 0; j < cols; ++j) {
      const double delta = mb[j] - mean[j];
      mean[j] += delta * w;
      m2[j] += sb[j] + delta * delta * cross;
    }
    n += nb;
  }
  return n;
}

/// Per-column sums over the valid rows of dy and of dy * xhat (the dβ and dγ of a norm layer),
/// chunked like column_moments and added in chunk order.
template <class T>
void column_grad_sums(const T* ASRKIT_RESTRICT dy, const T* ASRKIT_RESTRICT xhat, index_t rows,
                      index_t cols, const unsigned char* valid, double* ASRKIT_RESTRICT sum_dy,
                      double* ASRKIT_RESTRICT sum_dy_xhat) {
  const index_t step = chunk_rows(cols);
  const index_t chunks = rows == 0 ? 0 : (rows + step - 1) / step;
  std::vector<double> p(static_cast<std::size_t>(2 * chunks * cols), 0.0);
  parallel_for(chunks, [&](index_t c) {
    double* ASRKIT_RESTRICT a = p.data() + 2 * c * cols;
    double* ASRKIT_RESTRICT b = a + cols;
    const index_t r0 = c * step, r1 = std::min(rows, r0 + step);
    for (index_t r = r0; r < r1; ++r)
      if (!valid || valid[r]) add_grad_row(a, b, dy + r * cols, xhat + r * cols, cols);
  });
  std::fill(sum_dy, sum_dy + cols, 0.0);
  std::fill(sum_dy_xhat, sum_dy_xhat + cols, 0.0);
  for (index_t c = 0; c < chunks; ++c) {
    const double* a = p.data() + 2 * c * cols;
    const double* b = a + cols;
    for (index_t j = 0; j < cols; ++j) {
      sum_dy[j] += a[j];
      sum_dy_xhat[j] += b[j];
    }
  }
}

// ---- feature-column blocks: each task owns whole columns over all rows -------------------------
//
// BatchNorm reduces over rows, per column, so splitting the work by columns needs no reduction
// across threads: a task computes its columns' statistics (chunk by chunk, in chunk order, exactly
// as column_moments does per column) and then normalises the same columns while they are still in
// L2/L3. Every operation is per column, so the result does not depend on the split either.

/// Columns per task boundary (64 bytes of float: no two tasks write one cache line of a row).
inline constexpr index_t kColAlign = 16;
/// Columns per sub-block. Narrow sub-blocks (128) were slower: a row segment of 512 bytes per
/// 4 KiB page makes every row a TLB miss; 1024 keeps F <= 1024 in one block per task.
inline constexpr index_t kColBlock = 1024;

/// Elements below which a normalisation runs on the calling thread (a per-step BN of a small
/// batch inside a recurrent loop cannot repay starting a thread team).
inline constexpr index_t kParallelMinElements = index_t(1) << 15;

/// Calls f(c0, c1) for column ranges covering [0, cols), in parallel over one contiguous range per
/// thread (cut into sub-blocks of kColBlock columns, processed in order) when rows x cols is at
/// least kParallelMinElements.
template <class F>
void for_column_blocks(index_t rows, index_t cols, F&& f) {
  const index_t threads = rows * cols >= kParallelMinElements ? num_threads() : 1;
  const index_t tasks = std::max<index_t>(1, std::min<index_t>(threads, cols / kColAlign));
  parallel_for(tasks, [&](index_t t) {
    auto edge = [&](index_t i) {
      return i == tasks ? cols : (cols * i / tasks) / kColAlign * kColAlign;
    };
    const index_t c1 = edge(t + 1);
    for (index_t c = edge(t); c < c1; c += kColBlock) f(c, std::min(c1, c + kColBlock));
  });
}

/// column_moments restricted to columns [c0, c1): the same per-column arithmetic, in the same
/// chunk order (so the same bits). `mean`, `m2` are indexed from column 0; returns the count.
template <class T>
index_t column_moments_block(const T* x, index_t rows, index_t cols, const unsigned char* valid,
                             index_t c0, index_t c1, double* ASRKIT_RESTRICT mean,
                             double* ASRKIT_RESTRICT m2) {
  const index_t w = c1 - c0, step = chunk_rows(cols);
  std::vector<double> scratch(static_cast<std::size_t>(2 * w));
  double* ASRKIT_RESTRICT mu = scratch.data();
  double* ASRKIT_RESTRICT s2 = mu + w;
  std::fill(mean + c0, mean + c1, 0.0);
  std::fill(m2 + c0, m2 + c1, 0.0);
  index_t n = 0;
  for (index_t r0 = 0; r0 < rows; r0 += step) {
    const index_t r1 = std::min(rows, r0 + step);
    std::fill(scratch.begin(), scratch.end(), 0.0);
    index_t nb = 0;
    for (index_t r = r0; r < r1; ++r) {
      if (valid && !valid[r]) continue;
      add_row(mu, x + r * cols + c0, w);
      ++nb;
    }
    if (nb == 0) continue;
    const double inv = 1.0 / static_cast<double>(nb);
    for (index_t j = 0; j < w; ++j) mu[j] *= inv;
    for (index_t r = r0; r < r1; ++r)
      if (!valid || valid[r]) add_sq_dev_row(s2, x + r * cols + c0, mu, w);
    // Chan, Golub & LeVeque (1979), as in column_moments.
    const double na = static_cast<double>(n), nbd = static_cast<double>(nb);
    const double wt = nbd / (na + nbd), cross = na * nbd / (na + nbd);
    for (index_t j = 0; j < w; ++j) {
      const double delta = mu[j] - mean[c0 + j];
      mean[c0 + j] += delta * wt;
      m2[c0 + j] += s2[j] + delta * delta * cross;
    }
    n += nb;
  }
  return n;
}

/// column_grad_sums restricted to columns [c0, c1) (same chunk partials, added in chunk order).
template <class T>
void column_grad_sums_block(const T* dy, const T* xhat, index_t rows, index_t cols,
                            const unsigned char* valid, index_t c0, index_t c1,
                            double* ASRKIT_RESTRICT sum_dy, double* ASRKIT_RESTRICT sum_dy_xhat) {
  const index_t w = c1 - c0, step = chunk_rows(cols);
  std::vector<double> scratch(static_cast<std::size_t>(2 * w));
  double* ASRKIT_RESTRICT a = scratch.data();
  double* ASRKIT_RESTRICT b = a + w;
  std::fill(sum_dy + c0, sum_dy + c1, 0.0);
  std::fill(sum_dy_xhat + c0, sum_dy_xhat + c1, 0.0);
  for (index_t r0 = 0; r0 < rows; r0 += step) {
    const index_t r1 = std::min(rows, r0 + step);
    std::fill(scratch.begin(), scratch.end(), 0.0);
    for (index_t r = r0; r < r1; ++r)
      if (!valid || valid[r]) add_grad_row(a, b, dy + r * cols + c0, xhat + r * cols + c0, w);
    for (index_t j = 0; j < w; ++j) {
      sum_dy[c0 + j] += a[j];
      sum_dy_xhat[c0 + j] += b[j];
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
