// asrkit/ops/detail/gemm_tile.hpp - the register tile behind every asrkit product (internal).
//
// C [Rows, one panel] = alpha * (start + A [Rows, k] * B panel [k, panel]) + beta * C, where a
// panel is two SIMD registers of columns and every row of A, B and C may sit anywhere (a_of(i),
// row_of(kk), c_of(i)): B packed once (ops::PackedMatrix, ops::gemm), read in place
// (ops::gemm_panels), or gathered from a convolution's input; A and C strided matrices, or a
// convolution's taps and the input-gradient rows they add to (ops/conv.hpp). Each element of C
// is one register accumulation in k order (split into a fixed number of interleaved partial
// sums for small tiles), so a result depends only on the shapes, never on the thread count.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <utility>

#include <asrkit/core/config.hpp>
#include <asrkit/core/shape.hpp>

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
  static constexpr index_t max_rows =
      std::min<index_t>(8, std::max<index_t>(1, (registers - 3) / 2));
};

// dst[c * dst_ld + r] = src[r * src_ld + c] for r < rows, c < cols: a transposed copy, as packing
// needs for a transposed operand. Element by element it writes one element per destination cache
// line and ran at ~5 cycles per element (17% of a Conformer block at T = 250, whose Linears pack
// their weights for only 250 rows); here L x L squares (L = SIMD lanes) are loaded as L runs,
// transposed in registers and stored as L runs, and only the edges go element by element.
template <class T>
void transpose_block(const T* src, index_t src_ld, index_t rows, index_t cols, T* dst, index_t dst_ld) {
  index_t r0 = 0;
  if constexpr (PanelTraits<T>::lanes > 1) {
    using Packet = typename PanelTraits<T>::Packet;
    constexpr index_t L = PanelTraits<T>::lanes;
    const index_t c_squares = cols - cols % L;
    for (; r0 + L <= rows; r0 += L) {
      for (index_t c0 = 0; c0 < c_squares; c0 += L) {
#if defined(__GNUC__)  // PacketBlock<__m256, 8>: GCC drops __m256's may_alias in the template
#pragma GCC diagnostic push  // argument, as in Eigen's own uses of it; the block is only loaded
#pragma GCC diagnostic ignored "-Wignored-attributes"  // and stored through Eigen's functions
#endif
        Eigen::internal::PacketBlock<Packet, static_cast<int>(L)> square;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
        for (index_t r = 0; r < L; ++r)
          square.packet[r] = Eigen::internal::ploadu<Packet>(src + (r0 + r) * src_ld + c0);
        Eigen::internal::ptranspose(square);
        for (index_t q = 0; q < L; ++q)
          Eigen::internal::pstoreu(dst + (c0 + q) * dst_ld + r0, square.packet[q]);
      }
      for (index_t r = r0; r < r0 + L; ++r)
        for (index_t c = c_squares; c < cols; ++c) dst[c * dst_ld + r] = src[r * src_ld + c];
    }
  }
  for (index_t r = r0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) dst[c * dst_ld + r] = src[r * src_ld + c];
}

// Packs a [kb, cols <= panel] block of op(B) into dst [kb][panel], k-major and zero-padded to
// the panel's width; element (kk, j) of the block is b[kk * row_stride + j * col_stride] (op(B)
// as stored: row_stride = ldb, col_stride = 1; transposed: 1 and ldb; one of the two is 1).
template <class T>
void pack_panel(const T* b, index_t row_stride, index_t col_stride, index_t kb, index_t cols,
                T* dst) {
  constexpr index_t P = PanelTraits<T>::panel;
  if (col_stride == 1) {
    for (index_t kk = 0; kk < kb; ++kk) {
      const T* src = b + kk * row_stride;
      T* row = dst + kk * P;
      if (cols == P) {  // two vector moves; std::copy_n of 64 bytes was a memmove call per row
        using Packet = typename PanelTraits<T>::Packet;  // (9% of a [2048, 4096]ᵀ[4096, 2048])
        for (index_t j = 0; j < P; j += PanelTraits<T>::lanes)
          Eigen::internal::pstoreu(row + j, Eigen::internal::ploadu<Packet>(src + j));
      } else {
        std::copy_n(src, cols, row);
        std::fill(row + cols, row + P, T(0));
      }
    }
    return;
  }
  transpose_block(b, col_stride, cols, kb, dst, P);  // row_stride 1: column j is a stored run
  for (index_t kk = 0; kk < kb; ++kk) std::fill(dst + kk * P + cols, dst + (kk + 1) * P, T(0));
}

// Where row kk of an operand starts (E: T, or const T for one that is only read). Stored with
// a constant stride: b + kk * ld (a matrix, a packed panel, or B read in place by gemm_panels) ...
template <class E>
struct StridedRows {
  E* b;
  index_t ld;
  E* operator()(index_t kk) const { return b + kk * ld; }
  StridedRows from(index_t kk) const { return {b + kk * ld, ld}; }  // rows kk, kk + 1, ...
};

// ... or anywhere: rows[kk] + offset (a direct convolution's taps, ops/conv.hpp).
template <class E>
struct GatheredRows {
  E* const* rows;
  index_t offset;
  E* operator()(index_t kk) const { return rows[kk] + offset; }
  GatheredRows from(index_t kk) const { return {rows + kk, offset}; }
};

// How a tile orders each element's sum over k. `interleaved`: tiles of up to 4 rows split k into
// partial sums to hide the FMA latency, so a row's result depends on the height of the tile it
// falls in (that is, on m). `k_order`: one sum in plain k order in every tile, so a row of C
// depends on its own row of A only (ops::gemm: a frame gives the same bits alone or in a batch).
enum class SumOrder { interleaved, k_order };

// crow [0, cols <= panel) = alpha * (s0, s1) + beta * crow: one row of a finished tile
// (Whole: cols is the panel width).
template <bool Whole, class T, class Packet>
EIGEN_ALWAYS_INLINE void store_tile_row(T alpha, Packet s0, Packet s1, T beta, T* crow,
                                        index_t cols) {
  using namespace Eigen::internal;
  constexpr index_t L = PanelTraits<T>::lanes;
  s0 = pmul(pset1<Packet>(alpha), s0);
  s1 = pmul(pset1<Packet>(alpha), s1);
  if constexpr (Whole) {  // vector stores
    if (beta != T(0)) {  // as in BLAS, beta == 0 never reads C
      s0 = pmadd(pset1<Packet>(beta), ploadu<Packet>(crow), s0);
      s1 = pmadd(pset1<Packet>(beta), ploadu<Packet>(crow + L), s1);
    }
    pstoreu(crow, s0);
    pstoreu(crow + L, s1);
  } else {
    alignas(64) T sum[2 * L];
    pstore(sum, s0);
    pstore(sum + L, s1);
    if (beta == T(0))
      std::copy_n(sum, cols, crow);
    else
      for (index_t j = 0; j < cols; ++j) crow[j] = sum[j] + beta * crow[j];
  }
}

// Rows I... of a finished tile, acc[i] = (sums of columns [0, L), [L, 2L)), stored by a fold,
// unrolled at compile time: a runtime loop over the rows kept the accumulators in a stack array,
// stored and reloaded around every tile. The rows are stored in order, each read (beta != 0)
// after the one before is written, so rows of C may overlap (a convolution's input gradient).
template <class T, class Packet, int Rows, class CRows, int... I>
EIGEN_ALWAYS_INLINE void store_tile(T alpha, const Packet (&acc)[Rows][2], T beta, CRows c_of,
                                    index_t cols, std::integer_sequence<int, I...>) {
  if (cols == PanelTraits<T>::panel)
    (store_tile_row<true>(alpha, acc[I][0], acc[I][1], beta, c_of(I), cols), ...);
  else
    (store_tile_row<false>(alpha, acc[I][0], acc[I][1], beta, c_of(I), cols), ...);
}

// C tile [Rows, cols <= panel] = alpha * (start + A tile [Rows, k] * panel) + beta * C, where
// row i of A starts at a_of(i), row kk of the panel (2 SIMD registers wide) at row_of(kk) and
// row i of C at c_of(i), and start[i] (null: 0) is where row i's sums start (a convolution's
// bias, so C need not be filled and read back). Small tiles have too few independent
// accumulators to hide the FMA latency, so they split k into Split interleaved partial sums
// (added at the end), unless the caller asks for k order.
template <class T, int Rows, SumOrder Order, class ARows, class RowOf, class CRows>
ASRKIT_NOINLINE void packed_tile(index_t k, T alpha, ARows a_of, RowOf row_of, const T* start,
                                 T beta, CRows c_of, index_t cols) {
  using namespace Eigen::internal;
  using Packet = typename PanelTraits<T>::Packet;
  constexpr index_t L = PanelTraits<T>::lanes;
  // Partial sums per accumulator: wanted for small tiles, as many as the registers hold.
  constexpr int kWanted = Order == SumOrder::k_order ? 1 : Rows <= 2 ? 4 : Rows <= 4 ? 2 : 1;
  constexpr int Split = static_cast<int>(std::max<index_t>(
      1, std::min<index_t>(kWanted, (PanelTraits<T>::registers - 3) / (2 * Rows))));
  Packet acc[Split][Rows][2];
  for (int s = 0; s < Split; ++s)
    for (int i = 0; i < Rows; ++i)
      acc[s][i][0] = acc[s][i][1] = pset1<Packet>(start && s == 0 ? start[i] : T(0));
  const T* a[Rows];  // A's rows, hoisted out of the k loop
  for (int i = 0; i < Rows; ++i) {
    a[i] = a_of(i);
    prefetch(c_of(i));
    prefetch(c_of(i) + 2 * L - 1);
  }
  index_t kk = 0;
  for (; kk + Split <= k; kk += Split)
    for (int s = 0; s < Split; ++s) {
      const T* b = row_of(kk + s);
      const Packet b0 = ploadu<Packet>(b), b1 = ploadu<Packet>(b + L);
      for (int i = 0; i < Rows; ++i) {
        const Packet av = pset1<Packet>(a[i][kk + s]);
        acc[s][i][0] = pmadd(av, b0, acc[s][i][0]);
        acc[s][i][1] = pmadd(av, b1, acc[s][i][1]);
      }
    }
  for (; kk < k; ++kk) {  // the k % Split tail goes into the first partial sum
    const T* b = row_of(kk);
    const Packet b0 = ploadu<Packet>(b), b1 = ploadu<Packet>(b + L);
    for (int i = 0; i < Rows; ++i) {
      const Packet av = pset1<Packet>(a[i][kk]);
      acc[0][i][0] = pmadd(av, b0, acc[0][i][0]);
      acc[0][i][1] = pmadd(av, b1, acc[0][i][1]);
    }
  }
  for (int s = 1; s < Split; ++s)
    for (int i = 0; i < Rows; ++i) {
      acc[0][i][0] = padd(acc[0][i][0], acc[s][i][0]);
      acc[0][i][1] = padd(acc[0][i][1], acc[s][i][1]);
    }
  store_tile(alpha, acc[0], beta, c_of, cols, std::make_integer_sequence<int, Rows>{});
}

// C rows [0, rows <= max_rows) x one panel: the tile of that many rows.
template <SumOrder Order = SumOrder::interleaved, class T, class ARows, class RowOf, class CRows>
void packed_rows(index_t rows, index_t k, T alpha, ARows a_of, RowOf row_of, const T* start, T beta,
                 CRows c_of, index_t cols) {
  switch (rows) {
    case 8:
      return packed_tile<T, 8, Order>(k, alpha, a_of, row_of, start, beta, c_of, cols);
    case 7:
      return packed_tile<T, 7, Order>(k, alpha, a_of, row_of, start, beta, c_of, cols);
    case 6:
      return packed_tile<T, 6, Order>(k, alpha, a_of, row_of, start, beta, c_of, cols);
    case 5:
      return packed_tile<T, 5, Order>(k, alpha, a_of, row_of, start, beta, c_of, cols);
    case 4:
      return packed_tile<T, 4, Order>(k, alpha, a_of, row_of, start, beta, c_of, cols);
    case 3:
      return packed_tile<T, 3, Order>(k, alpha, a_of, row_of, start, beta, c_of, cols);
    case 2:
      return packed_tile<T, 2, Order>(k, alpha, a_of, row_of, start, beta, c_of, cols);
    default:
      return packed_tile<T, 1, Order>(k, alpha, a_of, row_of, start, beta, c_of, cols);
  }
}

// C [m, one panel] = alpha * (start + A [m, k] * panel) + beta * C, max_rows rows at a time.
template <class T, class ARows, class RowOf, class CRows>
void packed_column(index_t m, index_t k, T alpha, ARows a_of, RowOf row_of, const T* start, T beta,
                   CRows c_of, index_t cols) {
  constexpr index_t R = PanelTraits<T>::max_rows;
  for (index_t i = 0; i < m; i += R)
    packed_rows(std::min(R, m - i), k, alpha, a_of.from(i), row_of, start ? start + i : nullptr,
                beta, c_of.from(i), cols);
}

}  // namespace detail

}  // namespace ops
}  // namespace asrkit
