// asrkit/ops/gemm.hpp - general matrix products, C = alpha * op(A) * op(B) + beta * C.
//
//   asrkit::ops::gemm(asrkit::ops::Trans::no, asrkit::ops::Trans::yes, 1.0f, x, w, 0.0f, y);
//   // y [N, out] = x [N, in] * w[out, in]^T   (a Linear layer without bias)
//   asrkit::ops::gemm_batched(Trans::no, Trans::no, 1.0f, a, b, 0.0f, c);   // [batch, m, n]
//
// Matrices are row-major asrkit views (the last axis is the column). A row-major [k, m] matrix
// read with Trans::yes is the m x k matrix A^T: the blocks are packed from either layout, so no
// transpose is ever materialised. C is cut into a fixed grid of kGemmRowBlock x kGemmColBlock
// cells (the grid depends only on m and n), the cells are shared among asrkit::set_num_threads
// threads, and each cell is one single-threaded blocked product (detail::gemm_cell): k in blocks
// of kGemmDepth, op(B) packed block by block into column panels that stay in L2, op(A)'s rows
// copied next to each other, and the register tile of ops/detail/gemm_tile.hpp over each
// (rows, panel) pair. Every element of C is summed in the same order (k in blocks, each in k
// order) whatever the grid, cell, thread or the other rows, so results are bit-identical for any
// thread count (DESIGN sec. 3, Numerics) and a row of C does not depend on the other rows of A. It
// replaced Eigen's GEMM, which reached about half the FMA peak of an AVX2 core (Zen 3: ~48 of
// ~98 GFLOP/s at 1024^3; this kernel 75-87, OpenBLAS 89; docs/layers.md).
//
// The raw-pointer form takes leading dimensions like BLAS (row-major: lda >= columns of the
// stored A) so that sub-blocks of larger buffers can be multiplied in place.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <asrkit/core/device.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/ops/detail/gemm_tile.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace asrkit {
namespace ops {

/// Whether an operand is used as stored (no) or transposed (yes).
enum class Trans { no, yes };

/// The fixed cell grid of C (see the header comment; tuned with bench/bench_layers.cpp).
inline constexpr index_t kGemmRowBlock = 512;
inline constexpr index_t kGemmColBlock = 2048;
/// A product big enough for threads (kParallelMinWork) but smaller than this many cells is cut
/// into thinner row blocks (never under kGemmMinRowBlock rows), so that e.g. the [250, 256] x
/// [256, 1024] projections of one utterance are not a single cell on a single thread.
inline constexpr index_t kGemmMinCells = 4;
inline constexpr index_t kGemmMinRowBlock = 64;

namespace detail {

template <class T>
using type_identity_t = typename std::common_type<T>::type;  // blocks template deduction

template <class T>
using StridedMutMap = Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Products below this many multiply-adds run on the calling thread: starting an OpenMP team
// costs microseconds (and far more when the cores are oversubscribed), which a recurrent step of
// a small layer cannot repay. The choice depends only on the shape, and the cells compute the
// same values on any thread, so results stay independent of the thread count.
inline constexpr index_t kParallelMinWork = index_t(1) << 16;

// Runs f(cell) for every cell. At more than one thread every product of at least `work`
// multiply-adds runs inside an OpenMP team (even a single cell).
template <class F>
void run_cells(index_t cells, index_t work, F&& f) {
#if defined(_OPENMP)
  const int threads = num_threads();
  if (threads > 1 && work >= kParallelMinWork && !omp_in_parallel()) {
    const int team = static_cast<int>(std::min<index_t>(threads, std::max<index_t>(cells, 2)));
#pragma omp parallel for schedule(static) num_threads(team)
    for (index_t c = 0; c < cells; ++c) f(c);
    return;
  }
#endif
  for (index_t c = 0; c < cells; ++c) f(c);
}

// Rows per cell: kGemmRowBlock, or thinner (a multiple of 16, >= kGemmMinRowBlock) when a
// threaded product would otherwise have fewer than kGemmMinCells cells. Depends only on the shape.
inline index_t gemm_row_block(index_t m, index_t col_cells, index_t work) {
  if (work < kParallelMinWork ||
      ((m + kGemmRowBlock - 1) / kGemmRowBlock) * col_cells >= kGemmMinCells)
    return kGemmRowBlock;
  const index_t want_rows = (kGemmMinCells + col_cells - 1) / col_cells;  // row cells wanted
  const index_t block = ((m + want_rows - 1) / want_rows + 15) / 16 * 16;
  return std::min(kGemmRowBlock, std::max(kGemmMinRowBlock, block));
}

/// k per block of gemm_cell: a block of op(A)'s rows for one register tile (kGemmDepth x 8 rows)
/// stays in L1 while the tile runs over the packed panels of op(B).
inline constexpr index_t kGemmDepth = 256;
/// Bytes of op(B) packed at a time (kGemmDepth x a multiple of the panel width), sized for L2.
inline constexpr std::size_t kGemmPackBytes = std::size_t(256) << 10;

// Grow-only packing buffers of the calling thread: 0 for op(B)'s panels, 1 for op(A)'s rows.
template <class T>
T* gemm_scratch(int which, std::size_t elements) {
  thread_local std::vector<T, Eigen::aligned_allocator<T>> buffers[2];
  auto& b = buffers[which];
  if (b.size() < elements) b.resize(elements);
  return b.data();
}

// C [m, n] = alpha * A [m, kb] * B + beta * C, B given as packed panels (pack_panel: panel p
// holds columns [p P, p P + P) as [kb][P] at bp + p * panel_stride). The tile runs over
// every (rows, panel) pair, the rows outermost so their block of A stays in L1 while B's panels
// stream from L2; each element is summed in k order (a row of C depends on its row of A only).
template <class T>
void panels_product(index_t m, index_t n, index_t kb, T alpha, const T* a, index_t lda, const T* bp,
                    index_t panel_stride, T beta, T* c, index_t ldc) {
  constexpr index_t P = PanelTraits<T>::panel, R = PanelTraits<T>::max_rows;
  const index_t panels = (n + P - 1) / P;
  for (index_t i = 0; i < m; i += R)
    for (index_t p = 0; p < panels; ++p)
      packed_rows<SumOrder::k_order>(std::min(R, m - i), kb, alpha,
                                     StridedRows<const T>{a + i * lda, lda},
                                     StridedRows<const T>{bp + p * panel_stride, P},
                                     static_cast<const T*>(nullptr), beta,
                                     StridedRows<T>{c + i * ldc + p * P, ldc},
                                     std::min(P, n - p * P));
}

// C [m, n] = alpha * op(A) [m, k] * op(B) [k, n] + beta * C on one thread (k >= 1). For each
// block of kGemmDepth k: op(A)'s rows are copied side by side (the tile reads up to 8 rows at
// once; rows a multiple of 4 KiB apart in the caller's matrix would share L1 sets; a stored
// op(A) against at most two panels is read in place), op(B) is
// packed kGemmPackBytes at a time into zero-padded k-major panels, and the tile runs over every
// (rows, panel) pair, the rows outermost so their block stays in L1. Blocks after the first add
// to C (beta 1); beta == 0 never reads C.
template <class T>
void gemm_cell(Trans ta, Trans tb, index_t m, index_t n, index_t k, T alpha, const T* a,
               index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  constexpr index_t P = PanelTraits<T>::panel;
  const index_t kc = std::min(k, kGemmDepth);
  const index_t block_cols =
      std::max<index_t>(P, static_cast<index_t>(kGemmPackBytes / (sizeof(T) * kc)) / P * P);
  const index_t n_padded = (n + P - 1) / P * P;
  T* bp = gemm_scratch<T>(0, static_cast<std::size_t>(kc * std::min(n_padded, block_cols)));
  // op(A) read in place: its rows of a block are read once per panel, so copying them only pays
  // for more than two panels (conv's dW^T = col dY^T has two), unless they share L1 sets.
  const bool a_in_place =
      ta == Trans::no && n <= 2 * P && (lda * index_t(sizeof(T))) % 4096 != 0;
  T* ap = a_in_place ? nullptr : gemm_scratch<T>(1, static_cast<std::size_t>(m * kc));
  // op(B)[kk][j] = b[kk * b_row + j * b_col]
  const index_t b_row = tb == Trans::no ? ldb : 1, b_col = tb == Trans::no ? 1 : ldb;
  for (index_t k0 = 0; k0 < k; k0 += kc) {
    const index_t kb = std::min(kc, k - k0);
    const T* a_block = ap;  // op(A) [m, kb], rows a_ld apart
    index_t a_ld = kb;
    if (a_in_place) {
      a_block = a + k0;
      a_ld = lda;
    } else if (ta == Trans::no) {
      for (index_t i = 0; i < m; ++i) std::copy_n(a + i * lda + k0, kb, ap + i * kb);
    } else {  // op(A)[i][kk] = A[k0 + kk][i]
      transpose_block(a + k0 * lda, lda, kb, m, ap, kb);
    }
    const T block_beta = k0 == 0 ? beta : T(1);
    for (index_t j0 = 0; j0 < n; j0 += block_cols) {
      const index_t nb = std::min(block_cols, n - j0), panels = (nb + P - 1) / P;
      for (index_t p = 0; p < panels; ++p)  // panel p: op(B)[k0 .. k0 + kb, j0 + p P ..]
        pack_panel(b + k0 * b_row + (j0 + p * P) * b_col, b_row, b_col, kb, std::min(P, nb - p * P),
                   bp + p * kb * P);
      panels_product(m, nb, kb, alpha, a_block, a_ld, bp, kb * P, block_beta, c + j0, ldc);
    }
  }
}

}  // namespace detail

/// C[m, n] = alpha * op(A) * op(B) + beta * C (row-major, BLAS-like leading dimensions).
/// op(A) is m x k: A is stored [m, k] (Trans::no) or [k, m] (Trans::yes); op(B) is k x n.
/// With beta == 0, C is not read.
template <class Device = Cpu, class T>
void gemm(Trans ta, Trans tb, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
          const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::gemm: only the Cpu device is implemented");
  static_assert(std::is_floating_point_v<T>, "ops::gemm: T must be float or double");
  if (m < 0 || n < 0 || k < 0)
    throw ValueError(
        "gemm.1", asrkit::detail::str("gemm: sizes must be >= 0, got m=", m, " n=", n, " k=", k));
  const index_t a_cols = ta == Trans::no ? k : m;
  const index_t b_cols = tb == Trans::no ? n : k;
  if (lda < a_cols || ldb < b_cols || ldc < n || lda < 1 || ldb < 1 || ldc < 1)
    throw ValueError(
        "gemm.2", asrkit::detail::str("gemm: leading dimensions too small: lda=", lda,
                                      " (needs >= ", a_cols, "), ldb=", ldb, " (needs >= ", b_cols,
                                      "), ldc=", ldc, " (needs >= ", n, ")"));
  if (m == 0 || n == 0) return;
  const index_t work = m * n * std::max<index_t>(k, 1);
  const index_t col_cells = (n + kGemmColBlock - 1) / kGemmColBlock;
  const index_t row_block = detail::gemm_row_block(m, col_cells, work);
  const index_t row_cells = (m + row_block - 1) / row_block;
  detail::run_cells(row_cells * col_cells, work, [&](index_t cell) {
    const index_t r0 = (cell / col_cells) * row_block, c0 = (cell % col_cells) * kGemmColBlock;
    const index_t mr = std::min(row_block, m - r0), nc = std::min(kGemmColBlock, n - c0);
    detail::StridedMutMap<T> cm(c + r0 * ldc + c0, mr, nc, Eigen::OuterStride<>(ldc));
    if (k == 0) {  // empty sum: C = beta * C
      if (beta == T(0))
        cm.setZero();
      else
        cm *= beta;
      return;
    }
    // Rows r0.. of op(A) and columns c0.. of op(B).
    detail::gemm_cell(ta, tb, mr, nc, k, alpha, ta == Trans::no ? a + r0 * lda : a + r0, lda,
                      tb == Trans::no ? b + c0 : b + c0 * ldb, ldb, beta, c + r0 * ldc + c0, ldc);
  });
}

namespace detail {
struct GemmDims {
  index_t m, n, k;
};
// Checks that op(A) * op(B) chains into C; throws gemm.3 naming all three shapes.
inline GemmDims gemm_dims(Trans ta, Trans tb, const Shape& a, const Shape& b, const Shape& c) {
  if (a.rank() != 2 || b.rank() != 2 || c.rank() != 2)
    throw ShapeError("gemm.3", asrkit::detail::str("gemm: A, B and C must be rank 2, got A ",
                                                   a.str(), ", B ", b.str(), ", C ", c.str()));
  const index_t m = ta == Trans::no ? a[0] : a[1];
  const index_t k = ta == Trans::no ? a[1] : a[0];
  const index_t kb = tb == Trans::no ? b[0] : b[1];
  const index_t n = tb == Trans::no ? b[1] : b[0];
  if (k != kb || c[0] != m || c[1] != n)
    throw ShapeError(
        "gemm.3", asrkit::detail::str("gemm: op(A) is ", m, " x ", k, " and op(B) is ", kb, " x ",
                                      n, ", so the inner sizes must agree and C must be [", m, ", ",
                                      n, "]; got A ", a.str(), ta == Trans::yes ? "^T" : "", ", B ",
                                      b.str(), tb == Trans::yes ? "^T" : "", ", C ", c.str()));
  return {m, n, k};
}
}  // namespace detail

/// C = alpha * op(A) * op(B) + beta * C on rank-2 views. Throws ShapeError gemm.3 when the
/// shapes do not chain (the message gives all three shapes).
template <class Device = Cpu, class T>
void gemm(Trans ta, Trans tb, detail::type_identity_t<T> alpha,
          detail::type_identity_t<TensorView<const T, Device>> a,
          detail::type_identity_t<TensorView<const T, Device>> b, detail::type_identity_t<T> beta,
          TensorView<T, Device> c) {
  const auto d = detail::gemm_dims(ta, tb, a.shape(), b.shape(), c.shape());
  gemm<Device, T>(ta, tb, d.m, d.n, d.k, alpha, a.data(), std::max<index_t>(a.dim(1), 1), b.data(),
                  std::max<index_t>(b.dim(1), 1), beta, c.data(), std::max<index_t>(d.n, 1));
}

/// C[i] = alpha * op(A[i]) * op(B[i]) + beta * C[i] for every i of rank-3 views [batch, ., .].
/// Items run in parallel when there are at least as many as threads (each product then runs on
/// one thread); otherwise one after another, each product sharing its cells among the threads.
template <class Device = Cpu, class T>
void gemm_batched(Trans ta, Trans tb, detail::type_identity_t<T> alpha,
                  detail::type_identity_t<TensorView<const T, Device>> a,
                  detail::type_identity_t<TensorView<const T, Device>> b,
                  detail::type_identity_t<T> beta, TensorView<T, Device> c) {
  if (a.rank() != 3 || b.rank() != 3 || c.rank() != 3 || a.dim(0) != b.dim(0) ||
      a.dim(0) != c.dim(0))
    throw ShapeError(
        "gemm.4",
        asrkit::detail::str("gemm_batched: A, B and C must be rank 3 with one batch size, "
                            "got A ",
                            a.shape().str(), ", B ", b.shape().str(), ", C ", c.shape().str()));
  const index_t batch = a.dim(0);
  const auto d = detail::gemm_dims(ta, tb, a.shape().drop_front(), b.shape().drop_front(),
                                   c.shape().drop_front());
  const index_t lda = std::max<index_t>(a.dim(2), 1), ldb = std::max<index_t>(b.dim(2), 1);
  const index_t sa = a.dim(1) * a.dim(2), sb = b.dim(1) * b.dim(2), sc = d.m * d.n;
  auto one = [&](index_t i) {
    gemm<Device, T>(ta, tb, d.m, d.n, d.k, alpha, a.data() + i * sa, lda, b.data() + i * sb, ldb,
                    beta, c.data() + i * sc, std::max<index_t>(d.n, 1));
  };
  if (batch >= num_threads())
    parallel_for(batch, one);
  else
    for (index_t i = 0; i < batch; ++i) one(i);
}

}  // namespace ops
}  // namespace asrkit
