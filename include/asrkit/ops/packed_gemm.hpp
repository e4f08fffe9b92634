// asrkit/ops/packed_gemm.hpp - products with a right operand packed once and reused many times.
//
//   asrkit::ops::PackedMatrix<float> w_hh(asrkit::ops::Trans::yes, weight_hh.view());  // op(B) = W^T
//   for (t = 0; t < T; ++t)                                                          // every step
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
#include <asrkit/ops/gemm.hpp>

namespace asrkit {
namespace ops {

namespace detail {
template <class T>
struct PanelTraits {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr index_t lanes = Eigen::internal::unpacket_traits<Packet>::size;
  static constexpr index_t panel = 2 * lanes;  // columns per panel: two SIMD registers per row
  // A tile of R rows holds 2R accumulators plus B's two registers and A's broadcast: 8 rows with
  // 32 registers (AVX-512), 6 with 16 (AVX2, SSE); more would spill accumulators to the stack.
  static constexpr index_t registers = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS;
  static constexpr index_t max_rows = std::min<index_t>(8, std::max<index_t>(1, (registers - 3) / 2));
};
}  // namespace detail

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
      throw ShapeError("gemm.5", asrkit::detail::str("PackedMatrix: argument b must be rank 2, got ",
                                                     b.shape().str()));
    pack(tb, b.data(), tb == Trans::no ? b.dim(0) : b.dim(1), tb == Trans::no ? b.dim(1) : b.dim(0),
         std::max<index_t>(b.dim(1), 1));
  }

  /// Raw form: op(B) is k x n; ldb is the row stride of the stored B.
  void pack(Trans tb, const T* b, index_t k, index_t n, index_t ldb) {
    k_ = k;
    n_ = n;
    panels_ = (n + kPanel - 1) / kPanel;
    data_.assign(static_cast<std::size_t>(panels_ * k * kPanel), T(0));
    for (index_t p = 0; p < panels_; ++p) {
      T* panel = data_.data() + p * k * kPanel;
      const index_t cols = std::min(kPanel, n - p * kPanel);
      if (tb == Trans::no) {  // row kk of op(B) is row kk of B: contiguous runs of `cols`
        for (index_t kk = 0; kk < k; ++kk)
          std::copy_n(b + kk * ldb + p * kPanel, cols, panel + kk * kPanel);
      } else {  // column j of op(B) is row j of B: read `cols` rows side by side
        const T* rows = b + p * kPanel * ldb;
        for (index_t kk = 0; kk < k; ++kk)
          for (index_t j = 0; j < cols; ++j) panel[kk * kPanel + j] = rows[j * ldb + kk];
      }
    }
  }

  index_t rows() const noexcept { return k_; }  ///< k, the inner dimension
  index_t cols() const noexcept { return n_; }  ///< n, the columns of C
  index_t panels() const noexcept { return panels_; }
  const T* panel(index_t p) const noexcept { return data_.data() + p * k_ * kPanel; }

 private:
  index_t k_ = 0, n_ = 0, panels_ = 0;
  std::vector<T, Eigen::aligned_allocator<T>> data_;
};

namespace detail {

// Where row kk of B's panel (kPanel columns) starts. Stored with a constant stride: b + kk * ld
// (a packed panel, or B read in place by gemm_panels) ...
template <class T>
struct StridedRows {
  const T* b;
  index_t ld;
  const T* operator()(index_t kk) const { return b + kk * ld; }
};

// ... or anywhere: rows[kk] + offset (a direct convolution's taps, ops/conv.hpp).
template <class T>
struct GatheredRows {
  const T* const* rows;
  index_t offset;
  const T* operator()(index_t kk) const { return rows[kk] + offset; }
};

// C tile [Rows, cols <= panel] = alpha * (start + A tile [Rows, k] * panel) + beta * C, where
// row kk of the panel (2 SIMD registers wide) starts at row_of(kk) and start[i] (null: 0) is
// where row i's sums start (a convolution's bias, so C need not be filled and read back). Small
// tiles have too few independent accumulators to hide the FMA latency, so they split k into
// Split interleaved partial sums (added at the end).
template <class T, int Rows, class RowOf>
ASRKIT_NOINLINE void packed_tile(index_t k, T alpha, const T* a, index_t lda, RowOf row_of, const T* start, T beta,
                 T* c, index_t ldc, index_t cols) {
  using namespace Eigen::internal;
  using Packet = typename PanelTraits<T>::Packet;
  constexpr index_t L = PanelTraits<T>::lanes;
  // Partial sums per accumulator: wanted for small tiles, as many as the registers hold.
  constexpr int kWanted = Rows <= 2 ? 4 : Rows <= 4 ? 2 : 1;
  constexpr int Split = static_cast<int>(
      std::max<index_t>(1, std::min<index_t>(kWanted, (PanelTraits<T>::registers - 3) / (2 * Rows))));
  Packet acc[Split][Rows][2];
  for (int s = 0; s < Split; ++s)
    for (int i = 0; i < Rows; ++i)
      acc[s][i][0] = acc[s][i][1] = pset1<Packet>(start && s == 0 ? start[i] : T(0));
  index_t kk = 0;
  for (; kk + Split <= k; kk += Split)
    for (int s = 0; s < Split; ++s) {
      const T* b = row_of(kk + s);
      const Packet b0 = ploadu<Packet>(b), b1 = ploadu<Packet>(b + L);
      for (int i = 0; i < Rows; ++i) {
        const Packet av = pset1<Packet>(a[i * lda + kk + s]);
        acc[s][i][0] = pmadd(av, b0, acc[s][i][0]);
        acc[s][i][1] = pmadd(av, b1, acc[s][i][1]);
      }
    }
  for (; kk < k; ++kk) {  // the k % Split tail goes into the first partial sum
    const T* b = row_of(kk);
    const Packet b0 = ploadu<Packet>(b), b1 = ploadu<Packet>(b + L);
    for (int i = 0; i < Rows; ++i) {
      const Packet av = pset1<Packet>(a[i * lda + kk]);
      acc[0][i][0] = pmadd(av, b0, acc[0][i][0]);
      acc[0][i][1] = pmadd(av, b1, acc[0][i][1]);
    }
  }
  for (int i = 0; i < Rows; ++i) {
    for (int s = 1; s < Split; ++s) {
      acc[0][i][0] = padd(acc[0][i][0], acc[s][i][0]);
      acc[0][i][1] = padd(acc[0][i][1], acc[s][i][1]);
    }
    T* crow = c + i * ldc;
    if (cols == 2 * L) {  // a whole panel: vector stores
      Packet s0 = pmul(pset1<Packet>(alpha), acc[0][i][0]), s1 = pmul(pset1<Packet>(alpha), acc[0][i][1]);
      if (beta != T(0)) {  // as in BLAS, beta == 0 never reads C
        s0 = pmadd(pset1<Packet>(beta), ploadu<Packet>(crow), s0);
        s1 = pmadd(pset1<Packet>(beta), ploadu<Packet>(crow + L), s1);
      }
      pstoreu(crow, s0);
      pstoreu(crow + L, s1);
      continue;
    }
    alignas(64) T sum[2 * L];
    pstore(sum, acc[0][i][0]);
    pstore(sum + L, acc[0][i][1]);
    if (beta == T(0))
      for (index_t j = 0; j < cols; ++j) crow[j] = alpha * sum[j];
    else
      for (index_t j = 0; j < cols; ++j) crow[j] = alpha * sum[j] + beta * crow[j];
  }
}

// C rows [0, rows <= max_rows) x one panel: the tile of that many rows.
template <class T, class RowOf>
void packed_rows(index_t rows, index_t k, T alpha, const T* a, index_t lda, RowOf row_of,
                 const T* start, T beta, T* c, index_t ldc, index_t cols) {
  switch (rows) {
    case 8: return packed_tile<T, 8>(k, alpha, a, lda, row_of, start, beta, c, ldc, cols);
    case 7: return packed_tile<T, 7>(k, alpha, a, lda, row_of, start, beta, c, ldc, cols);
    case 6: return packed_tile<T, 6>(k, alpha, a, lda, row_of, start, beta, c, ldc, cols);
    case 5: return packed_tile<T, 5>(k, alpha, a, lda, row_of, start, beta, c, ldc, cols);
    case 4: return packed_tile<T, 4>(k, alpha, a, lda, row_of, start, beta, c, ldc, cols);
    case 3: return packed_tile<T, 3>(k, alpha, a, lda, row_of, start, beta, c, ldc, cols);
    case 2: return packed_tile<T, 2>(k, alpha, a, lda, row_of, start, beta, c, ldc, cols);
    default: return packed_tile<T, 1>(k, alpha, a, lda, row_of, start, beta, c, ldc, cols);
  }
}

// C [m, one panel] = alpha * (start + A [m, k] * panel) + beta * C, max_rows rows at a time.
template <class T, class RowOf>
void packed_column(index_t m, index_t k, T alpha, const T* a, index_t lda, RowOf row_of,
                   const T* start, T beta, T* c, index_t ldc, index_t cols) {
  constexpr index_t R = PanelTraits<T>::max_rows;
  for (index_t i = 0; i < m; i += R)
    packed_rows(std::min(R, m - i), k, alpha, a + i * lda, lda, row_of, start ? start + i : nullptr,
                beta, c + i * ldc, ldc, cols);
}

}  // namespace detail

/// Panels per thread work item (the fixed grid of gemm_packed).
inline constexpr index_t kPackedPanelsPerCell = 4;

/// C [m, n] = alpha * A [m, k] * op(B) + beta * C with op(B) packed (raw form; lda, ldc are row
/// strides). With beta == 0, C is not read.
template <class T>
void gemm_packed(index_t m, T alpha, const T* a, index_t lda, const PackedMatrix<T>& b, T beta,
                 T* c, index_t ldc) {
  constexpr index_t P = PackedMatrix<T>::kPanel;
  if (m < 0 || lda < b.rows() || ldc < b.cols())
    throw ValueError("gemm.6", asrkit::detail::str("gemm_packed: need m >= 0, lda >= k = ", b.rows(),
                                                   " and ldc >= n = ", b.cols(), "; got m=", m,
                                                   " lda=", lda, " ldc=", ldc));
  if (m == 0 || b.cols() == 0) return;
  const index_t cells = (b.panels() + kPackedPanelsPerCell - 1) / kPackedPanelsPerCell;
  detail::run_cells(cells, m * b.cols() * std::max<index_t>(b.rows(), 1), [&](index_t cell) {
    const index_t p_end = std::min(b.panels(), (cell + 1) * kPackedPanelsPerCell);
    for (index_t p = cell * kPackedPanelsPerCell; p < p_end; ++p)
      detail::packed_column(m, b.rows(), alpha, a, lda, detail::StridedRows<T>{b.panel(p), P}, static_cast<const T*>(nullptr),
                            beta,
                            c + p * P, ldc, std::min(P, b.cols() - p * P));
  });
}

/// C [m, n] = alpha * (start + A [m, k] * B [k, n]) + beta * C (raw, row-major; one thread) with
/// B read in place, kPanel columns at a time (only a last partial panel is copied): for a B that
/// is used once, by an A of few rows and a long k, e.g. a convolution's im2col tile times its
/// weight [out, C kh kw], where a general GEMM would repack the weight for every tile. Each panel
/// of B is read m / max_rows times, so it should fit in cache (k x kPanel elements). start [m] (null: 0)
/// is added to every column of row i, where its sums start: a bias, without a pass over C.
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
      tail.assign(static_cast<std::size_t>(k * P), T(0));
      for (index_t kk = 0; kk < k; ++kk) std::copy_n(b + kk * ldb + j, cols, tail.data() + kk * P);
      panel = tail.data();
      ldp = P;
    }
    detail::packed_column(m, k, alpha, a, lda, detail::StridedRows<T>{panel, ldp}, start, beta,
                          c + j, ldc, cols);
  }
}

/// C [m, n] = alpha * A [m, k] * op(B) + beta * C on rank-2 views. Throws ShapeError gemm.5 when
/// A is not [m, k] or C not [m, n] for the packed op(B) (k x n).
template <class T>
void gemm_packed(detail::type_identity_t<T> alpha, detail::type_identity_t<TensorView<const T>> a,
                 const PackedMatrix<T>& b, detail::type_identity_t<T> beta,
                 TensorView<T> c) {
  if (a.rank() != 2 || c.rank() != 2 || a.dim(1) != b.rows() || c.dim(0) != a.dim(0) ||
      c.dim(1) != b.cols())
    throw ShapeError("gemm.5", asrkit::detail::str(
                                   "gemm_packed: op(B) is ", b.rows(), " x ", b.cols(),
                                   ", so A must be [m, ", b.rows(), "] and C [m, ", b.cols(),
                                   "]; got A ", a.shape().str(), ", C ", c.shape().str()));
  gemm_packed(a.dim(0), T(alpha), a.data(), std::max<index_t>(a.dim(1), 1), b, T(beta), c.data(),
              std::max<index_t>(c.dim(1), 1));
}

}  // namespace ops
}  // namespace asrkit
