// asrkit/ops/packed_gemm.hpp - products with a right operand packed once and reused many times.
//
//   asrkit::ops::PackedMatrix<float> w_hh(asrkit::ops::Trans::yes, weight_hh.view());  // op(B) =
//   W^T for (t = 0; t < T; ++t)                                                          // every
//   step
//     asrkit::ops::gemm_packed(1.0f, h_prev, w_hh, 1.0f, gates[t]);  // gates += h W^T
//
// A recurrent layer multiplies the same weight by a small batch of rows (m = batch size, often
// 1-16) at every time step. A general GEMM (Eigen's, or BLAS) repacks the whole weight on every
// call, and for small m that copy costs more than the arithmetic. Here op(B) is copied once into
// column panels of kPanel columns, stored k-major ([panel][k][kPanel], zero-padded), so each step
// streams the weight exactly once, in order, and a register tile of up to 8 rows x kPanel columns
// (6 rows where the ISA has 16 SIMD registers, AVX2) stays in registers over the whole inner
// dimension.
//
// Threads take fixed groups of panels (the grid depends only on n), and every element of C is
// one register accumulation in k order, so results are bit-identical for any thread count.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>
#include <vector>

#include <asrkit/core/config.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/ops/detail/gemm_tile.hpp>
#include <asrkit/ops/gemm.hpp>

namespace asrkit {
namespace ops {

/// op(B) (k x n) packed into column panels for gemm_packed. Pack once, multiply many times.
template <class T>
class PackedMatrix {
  static_assert(std::is_floating_point_v<T>, "PackedMatrix<T>: T must be float or double");

 public:
  /// Columns per panel (two SIMD registers of T).
  static constexpr index_t kPanel = detail::PanelTraits<T>::panel;

  PackedMatrix() = default;
  /// Packs op(B): B [k, n] as stored (Trans::no), or B [n, k] read transposed (Trans::yes, a
  /// weight [out, in] for x W^T).
  PackedMatrix(Trans tb, TensorView<const T> b) { pack(tb, b); }

  void pack(Trans tb, TensorView<const T> b) {
    if (b.rank() != 2)
      throw ShapeError(
          "gemm.5",
          asrkit::detail::str("PackedMatrix: argument b must be rank 2, got ", b.shape().str()));
    pack(tb, b.data(), tb == Trans::no ? b.dim(0) : b.dim(1), tb == Trans::no ? b.dim(1) : b.dim(0),
         std::max<index_t>(b.dim(1), 1));
  }

  /// Raw form: op(B) is k x n; ldb is the row stride of the stored B.
  void pack(Trans tb, const T* b, index_t k, index_t n, index_t ldb) {
    k_ = k;
    n_ = n;
    panels_ = (n + kPanel - 1) / kPanel;
    data_.resize(static_cast<std::size_t>(panels_ * k * kPanel));  // pack_panel writes all of it
    // op(B)[kk][j] = b[kk * row + j * col]: row kk of B, or (transposed) column kk of B
    const index_t row = tb == Trans::no ? ldb : 1, col = tb == Trans::no ? 1 : ldb;
    for (index_t p = 0; p < panels_; ++p)
      detail::pack_panel(b + p * kPanel * col, row, col, k, std::min(kPanel, n - p * kPanel),
                         data_.data() + p * k * kPanel);
  }

  index_t rows() const noexcept { return k_; }  ///< k, the inner dimension
  index_t cols() const noexcept { return n_; }  ///< n, the columns of C
  index_t panels() const noexcept { return panels_; }
  const T* panel(index_t p) const noexcept { return data_.data() + p * k_ * kPanel; }

 private:
  index_t k_ = 0, n_ = 0, panels_ = 0;
  std::vector<T, Eigen::aligned_allocator<T>> data_;
};

/// Panels per thread work item (the fixed grid of gemm_packed).
inline constexpr index_t kPackedPanelsPerCell = 4;

/// C [m, n] = alpha * A [m, k] * op(B) + beta * C with op(B) packed (raw form; lda, ldc are row
/// strides). With beta == 0, C is not read.
template <class T>
void gemm_packed(index_t m, T alpha, const T* a, index_t lda, const PackedMatrix<T>& b, T beta,
                 T* c, index_t ldc) {
  constexpr index_t P = PackedMatrix<T>::kPanel;
  if (m < 0 || lda < b.rows() || ldc < b.cols())
    throw ValueError("gemm.6", asrkit::detail::str("gemm_packed: need m >= 0, lda >= k = ",
                                                   b.rows(), " and ldc >= n = ", b.cols(),
                                                   "; got m=", m, " lda=", lda, " ldc=", ldc));
  if (m == 0 || b.cols() == 0) return;
  const index_t cells = (b.panels() + kPackedPanelsPerCell - 1) / kPackedPanelsPerCell;
  detail::run_cells(cells, m * b.cols() * std::max<index_t>(b.rows(), 1), [&](index_t cell) {
    const index_t p_end = std::min(b.panels(), (cell + 1) * kPackedPanelsPerCell);
    for (index_t p = cell * kPackedPanelsPerCell; p < p_end; ++p)
      detail::packed_column(m, b.rows(), alpha, detail::StridedRows<const T>{a, lda},
                            detail::StridedRows<const T>{b.panel(p), P},
                            static_cast<const T*>(nullptr), beta, detail::StridedRows<T>{c + p * P, ldc},
                            std::min(P, b.cols() - p * P));
  });
}

/// C [m, n] = alpha * (start + A [m, k] * B [k, n]) + beta * C (raw, row-major; one thread) with
/// B read in place, kPanel columns at a time (only a last partial panel is copied): for a B that
/// is used once, by an A of few rows and a long k, e.g. a convolution's im2col tile times its
/// weight [out, C kh kw], where a general GEMM would repack the weight for every tile. Each panel
/// of B is read m / max_rows times, so it should fit in cache (k x kPanel elements). start [m]
/// (null: 0) is added to every column of row i, where its sums start: a bias, without a pass over
/// C.
template <class T>
void gemm_panels(index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda, const T* b,
                 index_t ldb, T beta, T* c, index_t ldc, const T* start = nullptr) {
  constexpr index_t P = PackedMatrix<T>::kPanel;
  std::vector<T, Eigen::aligned_allocator<T>> tail;
  for (index_t j = 0; j < n; j += P) {
    const index_t cols = std::min(P, n - j);
    const T* panel = b + j;
    index_t ldp = ldb;
    if (cols < P) {  // a full-width read would run past the end of B: copy, zero-padded
      tail.resize(static_cast<std::size_t>(k * P));
      detail::pack_panel(b + j, ldb, index_t(1), k, cols, tail.data());
      panel = tail.data();
      ldp = P;
    }
    detail::packed_column(m, k, alpha, detail::StridedRows<const T>{a, lda},
                          detail::StridedRows<const T>{panel, ldp}, start, beta,
                          detail::StridedRows<T>{c + j, ldc}, cols);
  }
}

/// C [m, n] = alpha * A [m, k] * op(B) + beta * C on rank-2 views. Throws ShapeError gemm.5 when
/// A is not [m, k] or C not [m, n] for the packed op(B) (k x n).
template <class T>
void gemm_packed(detail::type_identity_t<T> alpha, detail::type_identity_t<TensorView<const T>> a,
                 const PackedMatrix<T>& b, detail::type_identity_t<T> beta, TensorView<T> c) {
  if (a.rank() != 2 || c.rank() != 2 || a.dim(1) != b.rows() || c.dim(0) != a.dim(0) ||
      c.dim(1) != b.cols())
    throw ShapeError("gemm.5",
                     asrkit::detail::str("gemm_packed: op(B) is ", b.rows(), " x ", b.cols(),
                                         ", so A must be [m, ", b.rows(), "] and C [m, ", b.cols(),
                                         "]; got A ", a.shape().str(), ", C ", c.shape().str()));
  gemm_packed(a.dim(0), T(alpha), a.data(), std::max<index_t>(a.dim(1), 1), b, T(beta), c.data(),
              std::max<index_t>(c.dim(1), 1));
}

}  // namespace ops
}  // namespace asrkit
