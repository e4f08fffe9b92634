// asrkit/analysis/covariance.hpp - column means, covariances and projections of activation
// matrices [N, D] (rows = data points/frames, columns = neurons), the O(N) part of CCA/SVCCA.
//
//   auto mean = asrkit::analysis::column_means(x.view(), "x");           // double, throws on NaN
//   Eigen::MatrixXd cov = asrkit::analysis::covariance(x.view(), mean);  // np.cov of the columns
//   auto p = asrkit::analysis::project(x.view(), mean, basis);          // (X - mean) · basis
//
// Every pass walks X in chunks of kChunkRows rows: a chunk is centred into a small buffer (so a
// large mean offset never cancels catastrophically, as X^T X - N·mu·mu^T would in float), its
// product runs in T on ops::gemm, and the chunks are summed in double. The chunk grid depends
// only on N, so results do not depend on the thread count. The covariance computes the lower
// triangle only, tile by tile, the tiles shared among the threads (SPECS §9.1, step 1).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/ops/gemm.hpp>

namespace asrkit {
namespace analysis {

/// Rows per chunk: each chunk's product is accumulated in T, the chunks in double.
inline constexpr index_t kChunkRows = 4096;
/// Side of the square tiles of a covariance's lower triangle (one tile per task).
inline constexpr index_t kCovarianceTile = 512;

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

// Rows [r0, r0 + rows) of x minus mean, into buf [rows, D].
template <class T>
void centre_rows(TensorView<const T> x, const Eigen::VectorXd& mean, index_t r0, index_t rows, T* buf) {
  const index_t d = x.dim(1);
  const Vector<T> mu = mean.cast<T>();
  constexpr index_t kBlock = 256;
  parallel_for((rows + kBlock - 1) / kBlock, [&](index_t blk) {
    const index_t b0 = blk * kBlock, nb = std::min(kBlock, rows - b0);
    MatrixMap<T>(buf + b0 * d, nb, d) =
        MatrixMap<const T>(x.data() + (r0 + b0) * d, nb, d).rowwise() - mu.transpose();
  });
}

// Sum over chunks of f(r0, rows, chunk_product) where f writes the chunk's product (in T) into a
// [m, n] buffer; the chunk products are added to a double [m, n] matrix in chunk order.
template <class T, class F>
Eigen::MatrixXd sum_chunk_products(index_t rows, index_t m, index_t n, F&& chunk_product) {
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(m, n);
  RowMatrix<T> part = RowMatrix<T>::Zero(m, n);  // tiles left unwritten stay 0
  for (index_t c = 0, chunks = chunk_count(rows); c < chunks; ++c) {
    const index_t r0 = c * kChunkRows;
    chunk_product(r0, std::min(kChunkRows, rows - r0), part.data());
    sum += part.template cast<double>();
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
  const index_t n = x.dim(0), d = x.dim(1);
  const index_t tiles = (d + kCovarianceTile - 1) / kCovarianceTile;
  std::vector<std::pair<index_t, index_t>> lower;  // (row tile, column tile), column <= row
  for (index_t i = 0; i < tiles; ++i)
    for (index_t j = 0; j <= i; ++j) lower.emplace_back(i, j);
  Tensor<T> chunk(Shape{std::min(kChunkRows, n), d}, uninitialized);
  Eigen::MatrixXd cov = detail::sum_chunk_products<T>(n, d, d, [&](index_t r0, index_t rows, T* out) {
    detail::centre_rows(x, mean, r0, rows, chunk.data());
    parallel_for(static_cast<index_t>(lower.size()), [&](index_t t) {
      const index_t i0 = lower[t].first * kCovarianceTile, j0 = lower[t].second * kCovarianceTile;
      const index_t mi = std::min(kCovarianceTile, d - i0), nj = std::min(kCovarianceTile, d - j0);
      ops::gemm(ops::Trans::yes, ops::Trans::no, mi, nj, rows, T(1), chunk.data() + i0, d,
                chunk.data() + j0, d, T(0), out + i0 * d + j0, d);
    });
  });
  cov.triangularView<Eigen::StrictlyUpper>() = cov.transpose();  // mirror the lower triangle
  return cov / static_cast<double>(n - 1);
}

/// Cross-covariance (X - mean_x)^T (Y - mean_y) / (N - 1) of x [N, Dx] and y [N, Dy], in double.
template <class T>
Eigen::MatrixXd cross_covariance(TensorView<const T> x, const Eigen::VectorXd& mean_x,
                                 TensorView<const T> y, const Eigen::VectorXd& mean_y) {
  const index_t n = x.dim(0), dx = x.dim(1), dy = y.dim(1), rows_max = std::min(kChunkRows, n);
  Tensor<T> cx(Shape{rows_max, dx}, uninitialized), cy(Shape{rows_max, dy}, uninitialized);
  const Eigen::MatrixXd sum = detail::sum_chunk_products<T>(n, dx, dy, [&](index_t r0, index_t rows, T* out) {
    detail::centre_rows(x, mean_x, r0, rows, cx.data());
    detail::centre_rows(y, mean_y, r0, rows, cy.data());
    ops::gemm(ops::Trans::yes, ops::Trans::no, dx, dy, rows, T(1), cx.data(), dx, cy.data(), dy, T(0), out, dy);
  });
  return sum / static_cast<double>(n - 1);
}

/// (X - mean) · basis: x [N, D] projected on the columns of basis (D x k), as [N, k] in T.
template <class T>
Tensor<T> project(TensorView<const T> x, const Eigen::VectorXd& mean, const Eigen::MatrixXd& basis) {
  const index_t n = x.dim(0), d = x.dim(1), k = basis.cols();
  const RowMatrix<T> b = basis.cast<T>();
  Tensor<T> out(Shape{n, k}, uninitialized), chunk(Shape{std::min(kChunkRows, n), d}, uninitialized);
  for (index_t r0 = 0; r0 < n; r0 += kChunkRows) {
    const index_t rows = std::min(kChunkRows, n - r0);
    detail::centre_rows(x, mean, r0, rows, chunk.data());
    ops::gemm(ops::Trans::no, ops::Trans::no, rows, k, d, T(1), chunk.data(), d, b.data(),
              std::max<index_t>(k, 1), T(0), out.data() + r0 * k, std::max<index_t>(k, 1));
  }
  return out;
}

}  // namespace analysis
}  // namespace asrkit
