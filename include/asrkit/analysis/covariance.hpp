// asrkit/analysis/covariance.hpp - column means, covariances and projections of activation
// matrices [N, D] (rows = data points/frames, columns = neurons), the O(N) part of CCA/SVCCA.
//
//   auto mean = asrkit::analysis::column_means(x.view(), "x");           // double, throws on NaN
//   Eigen::MatrixXd cov = asrkit::analysis::covariance(x.view(), mean);  // np.cov of the columns
//   auto p = asrkit::analysis::project(x.view(), mean, basis);          // (X - mean) · basis
//
// Every pass centres the rows it reads as it goes (so a large mean offset never cancels
// catastrophically, as X^T X - N·mu·mu^T would in float), without a centred copy of X. The means
// and products walk X in chunks of kChunkRows rows; a chunk's product is summed in T and the
// chunks in double. The covariance and cross-covariance walk each chunk
// in slabs of ops::detail::kGemmDepth rows that are centred and packed once for the whole D x D
// result (not once per tile, as a GEMM per tile would), and the covariance computes the lower
// triangle only (SPECS §9.1, step 1). The chunk grid depends only on N, so results do not depend
// on the thread count.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/packed_gemm.hpp>

namespace asrkit {
namespace analysis {

/// Rows per chunk: each chunk's product is accumulated in T, the chunks in double.
inline constexpr index_t kChunkRows = 4096;
/// Side of the square tiles of a (cross-)covariance: a slab's packed rows of a tile's two
/// operands, 2 x 256 KiB, stay in L2 while the tile runs.
inline constexpr index_t kCovarianceTile = 256;

namespace detail {

using asrkit::detail::str;

inline index_t chunk_count(index_t rows) { return (rows + kChunkRows - 1) / kChunkRows; }

// Eigen's own product kernel threads by Eigen::nbThreads() with a blocking that depends on it, so
// its sums change in the last bits with the thread count. The entry points of analysis/ hold
// this guard while they run: the dense D x D and k x k algebra (eigensolvers, SVD, products) then
// runs on one thread, and only asrkit's fixed-grid loops use the others (DESIGN sec. 3).
class SerialEigen {
 public:
  SerialEigen() : threads_(Eigen::nbThreads()) { Eigen::setNbThreads(1); }
  ~SerialEigen() { Eigen::setNbThreads(threads_); }
  SerialEigen(const SerialEigen&) = delete;
  SerialEigen& operator=(const SerialEigen&) = delete;

 private:
  int threads_;
};

// Which blocks of (X - mean_x)^T (Y - mean_y) centred_product computes: all of them, or (Y is
// X) the lower triangle of the symmetric product.
enum class Blocks { all, lower };

// dst [rows, cols] (rows ld apart) = rows [r0, r0 + rows) of columns [j0, j0 + cols) of x minus mu.
template <class T>
void centre_block(TensorView<const T> x, const Vector<T>& mu, index_t r0, index_t rows, index_t j0,
                  index_t cols, T* dst, index_t ld) {
  using Strided = Eigen::OuterStride<>;
  Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Strided>(dst, rows, cols, Strided(ld)) =
      Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Strided>(x.data() + r0 * x.dim(1) + j0, rows,
                                                                cols, Strided(x.dim(1)))
          .rowwise() -
      mu.segment(j0, cols).transpose();
}

// The same block (cols <= panel) packed as one k-major panel dst [rows][panel]
// (ops::detail::pack_panel's layout, zero-padded).
template <class T>
void pack_centred_panel(TensorView<const T> x, const Vector<T>& mu, index_t r0, index_t rows,
                        index_t j0, index_t cols, T* dst) {
  constexpr index_t P = ops::detail::PanelTraits<T>::panel;
  centre_block(x, mu, r0, rows, j0, cols, dst, P);
  if (cols < P)
    for (index_t kk = 0; kk < rows; ++kk) std::fill(dst + kk * P + cols, dst + (kk + 1) * P, T(0));
}

// (X - mean_x)^T (Y - mean_y) [Dx, Dy] in double, for x [N, Dx] and y [N, Dy]. X is walked in
// slabs of kGemmDepth rows; each slab is centred and packed once, Y's columns into panels and X's
// into transposed rows (for Blocks::lower, Y is X and one packing serves both operands), and
// every kCovarianceTile tile of the result then multiplies the packed operands it needs with the
// GEMM tile (a lower product computes a diagonal tile only up to the diagonal, to the panel).
// Tiles are shared among the threads in contiguous runs of equal work, and each element is one
// sum in row order over a chunk of kChunkRows rows, in T, the chunks summed in double: the same
// bits for any thread count.
template <class T>
Eigen::MatrixXd centred_product(TensorView<const T> x, const Eigen::VectorXd& mean_x,
                                TensorView<const T> y, const Eigen::VectorXd& mean_y, Blocks blocks) {
  constexpr index_t P = ops::detail::PanelTraits<T>::panel, R = ops::detail::PanelTraits<T>::max_rows;
  constexpr index_t kSlab = ops::detail::kGemmDepth, kTile = kCovarianceTile;
  static_assert(kChunkRows % kSlab == 0 && kTile % P == 0, "slabs tile chunks, panels tile tiles");
  const index_t n = x.dim(0), dx = x.dim(1), dy = y.dim(1);
  const index_t x_panels = (dx + P - 1) / P, y_panels = (dy + P - 1) / P;
  const bool lower = blocks == Blocks::lower;
  const Vector<T> mu_x = mean_x.cast<T>(), mu_y = mean_y.cast<T>();

  // The tiles, with their work in (row group, panel) products; then contiguous runs of them, one
  // per thread, of about equal work.
  struct Tile {
    index_t i0, j0, rows, cols;
  };
  // Columns of tile t that its row group [i, i + m) computes: a diagonal tile of a lower product
  // stops at the diagonal (rounded up to the panel by the product).
  auto group_cols = [lower](const Tile& t, index_t i, index_t m) {
    return lower ? std::min(t.cols, i + m - t.j0) : t.cols;
  };
  std::vector<Tile> tiles;
  std::vector<index_t> work_before{0};
  for (index_t i0 = 0; i0 < dx; i0 += kTile)
    for (index_t j0 = 0; j0 < (lower ? i0 + 1 : dy); j0 += kTile) {
      const Tile t{i0, j0, std::min(kTile, dx - i0), std::min(kTile, dy - j0)};
      index_t work = 0;
      for (index_t i = i0; i < i0 + t.rows; i += R)
        work += (group_cols(t, i, std::min(R, i0 + t.rows - i)) + P - 1) / P;
      tiles.push_back(t);
      work_before.push_back(work_before.back() + work);
    }
  const index_t runs = std::min<index_t>(num_threads(), static_cast<index_t>(tiles.size()));
  std::vector<std::size_t> run_start(runs + 1, tiles.size());
  for (index_t r = 0, t = 0; r < runs; ++r) {
    while (work_before[t] * runs < work_before.back() * r) ++t;
    run_start[r] = t;
  }

  std::vector<T, Eigen::aligned_allocator<T>> y_packed(y_panels * kSlab * P), x_rows(dx * kSlab);
  RowMatrix<T> chunk_sum = RowMatrix<T>::Zero(dx, dy);  // unwritten (upper) elements stay 0
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(dx, dy);
  for (index_t r0 = 0; r0 < n; r0 += kSlab) {
    const index_t rows = std::min(kSlab, n - r0);
    const bool first = r0 % kChunkRows == 0, last = r0 + rows == n || (r0 + rows) % kChunkRows == 0;
    // Pack: Y's panel p is [rows][P]; x_rows holds row i of X^T (column i of X) at i * rows.
    parallel_for(std::max(x_panels, y_panels), [&](index_t p) {
      if (p < y_panels) {
        T* panel = y_packed.data() + p * rows * P;
        const index_t cols = std::min(P, dy - p * P);
        pack_centred_panel(y, mu_y, r0, rows, p * P, cols, panel);
        if (lower) ops::detail::transpose_block(panel, P, rows, cols, x_rows.data() + p * P * rows, rows);
      }
      if (!lower && p < x_panels) {
        thread_local std::vector<T, Eigen::aligned_allocator<T>> scratch;
        scratch.resize(kSlab * P);
        const index_t cols = std::min(P, dx - p * P);
        pack_centred_panel(x, mu_x, r0, rows, p * P, cols, scratch.data());
        ops::detail::transpose_block(scratch.data(), P, rows, cols, x_rows.data() + p * P * rows, rows);
      }
    });
    parallel_for(runs, [&](index_t run) {
      for (std::size_t t = run_start[run]; t < run_start[run + 1]; ++t) {
        const Tile& tile = tiles[t];
        for (index_t i = tile.i0; i < tile.i0 + tile.rows; i += R) {
          const index_t m = std::min(R, tile.i0 + tile.rows - i);
          ops::detail::panels_product(m, group_cols(tile, i, m), rows, T(1), x_rows.data() + i * rows, rows,
                                      y_packed.data() + (tile.j0 / P) * rows * P, rows * P,
                                      first ? T(0) : T(1), chunk_sum.data() + i * dy + tile.j0, dy);
        }
        if (last)
          sum.block(tile.i0, tile.j0, tile.rows, tile.cols) +=
              chunk_sum.block(tile.i0, tile.j0, tile.rows, tile.cols).template cast<double>();
      }
    });
  }
  return sum;
}

}  // namespace detail

/// Column means of x [N, D] in double. Throws ValueError svcca.4 naming `name` and the first
/// non-finite element when x holds a NaN or an infinity.
template <class T>
Eigen::VectorXd column_means(TensorView<const T> x, const char* name) {
  const index_t n = x.dim(0), d = x.dim(1), chunks = detail::chunk_count(n);
  // One partial sum per chunk, summed in chunk order: the same bits at any thread count.
  Eigen::MatrixXd partial(d, std::max<index_t>(chunks, 1));
  partial.setZero();
  parallel_for(chunks, [&](index_t c) {
    const index_t r0 = c * kChunkRows, rows = std::min(kChunkRows, n - r0);
    auto acc = partial.col(c);
    for (index_t i = r0; i < r0 + rows; ++i)  // row by row: contiguous, vectorised
      acc += VectorMap<const T>(x.data() + i * d, d).template cast<double>();
  });
  Eigen::VectorXd mean = partial.rowwise().sum() / static_cast<double>(n);
  if (!mean.allFinite()) {  // a NaN or an infinity somewhere: find the first one for the message
    const T* p = x.data();
    for (index_t i = 0; i < n * d; ++i)
      if (!std::isfinite(p[i]))
        throw ValueError("svcca.4", detail::str("argument ", name, ": element (", i / d, ", ", i % d,
                                                ") is ", p[i], "; activations must be finite"));
    throw ValueError("svcca.4", detail::str("argument ", name, ": the column sums overflow; rescale the activations"));
  }
  return mean;
}

/// Covariance of the columns of x [N, D] (mean-centred, divided by N - 1, as np.cov), in double.
template <class T>
Eigen::MatrixXd covariance(TensorView<const T> x, const Eigen::VectorXd& mean) {
  Eigen::MatrixXd cov = detail::centred_product(x, mean, x, mean, detail::Blocks::lower);
  cov.triangularView<Eigen::StrictlyUpper>() = cov.transpose();  // mirror the lower triangle
  return cov / static_cast<double>(x.dim(0) - 1);
}

/// Cross-covariance (X - mean_x)^T (Y - mean_y) / (N - 1) of x [N, Dx] and y [N, Dy], in double.
template <class T>
Eigen::MatrixXd cross_covariance(TensorView<const T> x, const Eigen::VectorXd& mean_x,
                                 TensorView<const T> y, const Eigen::VectorXd& mean_y) {
  return detail::centred_product(x, mean_x, y, mean_y, detail::Blocks::all) /
         static_cast<double>(x.dim(0) - 1);
}

/// (X - mean) · basis: x [N, D] projected on the columns of basis (D x k), as [N, k] in T.
/// The basis is packed once; blocks of kProjectRows rows share the threads, each centring
/// kGemmDepth columns of its rows at a time into a buffer that stays in L2 and multiplying them
/// into its rows of the result (a row's result depends on that row only).
template <class T>
Tensor<T> project(TensorView<const T> x, const Eigen::VectorXd& mean, const Eigen::MatrixXd& basis) {
  constexpr index_t P = ops::detail::PanelTraits<T>::panel, kDepth = ops::detail::kGemmDepth;
  constexpr index_t kProjectRows = 128;
  const index_t n = x.dim(0), d = x.dim(1), k = basis.cols();
  Tensor<T> out(Shape{n, k}, uninitialized);
  if (k == 0 || n == 0) return out;
  const RowMatrix<T> b = basis.cast<T>();
  ops::PackedMatrix<T> packed;
  packed.pack(ops::Trans::no, b.data(), d, k, k);
  const Vector<T> mu = mean.cast<T>();
  parallel_for((n + kProjectRows - 1) / kProjectRows, [&](index_t block) {
    thread_local std::vector<T, Eigen::aligned_allocator<T>> centred;
    centred.resize(kProjectRows * kDepth);
    const index_t r0 = block * kProjectRows, rows = std::min(kProjectRows, n - r0);
    for (index_t c0 = 0; c0 < d; c0 += kDepth) {  // rows of packed panel p: panel(p) + c0 P ..
      const index_t cols = std::min(kDepth, d - c0);
      detail::centre_block(x, mu, r0, rows, c0, cols, centred.data(), cols);
      ops::detail::panels_product(rows, k, cols, T(1), centred.data(), cols, packed.panel(0) + c0 * P,
                                  d * P, c0 == 0 ? T(0) : T(1), out.data() + r0 * k, k);
    }
  });
  return out;
}

}  // namespace analysis
}  // namespace asrkit
