// asrkit/ops/conv.hpp - 1-D and 2-D convolution as GEMMs over receptive fields, forward and backward.
//
//   asrkit::ops::ConvParams p;                 // 2-D: kernel {kh, kw}, stride, padding, dilation
//   p.kernel = {41, 11}; p.stride = {2, 2}; p.padding = {20, 5};
//   asrkit::ops::conv2d_forward(p, x, w, b, y);          // x [B,C,H,W], w [O,C/g,kh,kw] -> y [B,O,Ho,Wo]
//   asrkit::ops::conv2d_backward(p, x, w, dy, dx, dw, db);   // dx overwritten, dw and db accumulate
//   auto p1 = asrkit::ops::ConvParams::conv1d(/*kernel*/ 5, /*stride*/ 1, /*padding*/ 2);
//
// Cross-correlation as in PyTorch (Conv2d, zero padding): with Ho = (H + 2 ph - dh (kh - 1) - 1)
// / sh + 1 (floor) and likewise Wo,
//   y[b, o, i, j] = bias[o] + sum_{c in group(o), u, v} w[o, c', u, v] x[b, c, i sh - ph + u dh,
//                                                                         j sw - pw + v dw].
// A 1-D convolution is the case H = kh = 1 (x [B, C, L] is read as [B, C, 1, L]).
//
// im2col lays the receptive fields out as a [C kh kw, Ho Wo] matrix (row (c, u, v), column (i, j)),
// so each group is one GEMM, W_g [O/g, C/g kh kw] x col_g, done by gemm_panels' tile (8 weight
// rows, 6 on AVX2, x a panel of output positions, ops/packed_gemm.hpp): W_g has few rows (DS2:
// 32) and a long k, and a general GEMM would repack all of it for every tile. The forward has two paths:
//  - direct (wide output rows, e.g. DS2's convs over time): the input is split once into its
//    stride phases (PhaseImage), after which every row of col for a panel of one output row is a
//    contiguous run of the input copy; the tile reads those runs in place through a table of
//    pointers, so col is never written, and kernel rows on padding are skipped;
//  - im2col tiles (narrow output rows, which a panel would mostly pad): output positions are
//    processed in tiles (kConvForwardTileBytes of columns), so the buffer stays in cache.
// The backward has the same two paths, both from phase-split copies of the input rows
// (PhaseRows) into phase-split bands of dX rows:
//  - direct (wide output rows): per output row, dW_g^T += X_taps dY_row^T with the taps' input
//    runs read in place, and dX_taps += W_g^T dY_row added straight into the taps' runs of the
//    band, both by the GEMM tile with rows of A and C gathered through pointer tables;
//  - im2col tiles (kConvBackwardTileBytes): dW_g^T += col_g dY_g^T (ops::gemm, col read in
//    place), and dcol_g = W_g^T dY_g in chunks of rows (gemm_panels, dY read in place), each added
//    into the band by col2im while still in cache (contiguous vector adds).
// Threads: forward splits (image, tile) or (image, output row, 4 panels) items, each output
// computed whole by one tile. Backward splits each image into a fixed number of slabs
// (independent of the thread count); every slab owns a dW partial and a band of dX rows, which
// are summed in slab order afterwards, so results do not depend on the thread count.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#include <asrkit/core/device.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/packed_gemm.hpp>

namespace asrkit {
namespace ops {

/// Hyper-parameters of a 2-D convolution ({height, width} pairs); 1-D uses {1, k} etc.
struct ConvParams {
  std::array<index_t, 2> kernel{1, 1};
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> padding{0, 0};   ///< zeros on both sides
  std::array<index_t, 2> dilation{1, 1};
  index_t groups = 1;                     ///< C and O divisible by groups; groups = C: depthwise

  /// The 1-D convolution over the last axis with these settings.
  static ConvParams conv1d(index_t kernel, index_t stride = 1, index_t padding = 0,
                           index_t dilation = 1, index_t groups = 1) {
    ConvParams p;
    p.kernel = {1, kernel};
    p.stride = {1, stride};
    p.padding = {0, padding};
    p.dilation = {1, dilation};
    p.groups = groups;
    return p;
  }

  /// Throws ValueError conv.1 unless kernel, stride, dilation, groups >= 1 and padding >= 0.
  void check(const char* who = "conv") const {
    for (int a = 0; a < 2; ++a) {
      const auto i = static_cast<std::size_t>(a);
      if (kernel[i] < 1 || stride[i] < 1 || dilation[i] < 1 || padding[i] < 0)
        throw ValueError("conv.1", asrkit::detail::str(
                                       who, ": kernel, stride and dilation must be >= 1 and "
                                       "padding >= 0, got kernel ", kernel[0], "x", kernel[1],
                                       ", stride ", stride[0], "x", stride[1], ", padding ",
                                       padding[0], "x", padding[1], ", dilation ", dilation[0],
                                       "x", dilation[1]));
    }
    if (groups < 1)
      throw ValueError("conv.1", asrkit::detail::str(who, ": groups must be >= 1, got ", groups));
  }

  /// Output length along axis a (0: height, 1: width) for input length n; < 1 when the padded
  /// input is shorter than the dilated kernel.
  index_t out_size(int a, index_t n) const {
    const auto i = static_cast<std::size_t>(a);
    const index_t span = dilation[i] * (kernel[i] - 1) + 1;
    const index_t padded = n + 2 * padding[i];
    return padded < span ? 0 : (padded - span) / stride[i] + 1;
  }
};

/// Bytes of im2col columns per tile. Forward: gemm_panels reads each column panel of the tile
/// out/8 times, and larger tiles mean fewer, longer runs of im2col; 4 MiB (a share of L3 per
/// thread) was fastest for DS2's convs (K = 451 and 7392 rows), 1 and 16 MiB slower. Backward's
/// GEMMs (ops::gemm) preferred about L2-sized tiles when they were Eigen's. See bench/bench_layers.cpp and bench/bench_ds2.cpp.
inline constexpr std::size_t kConvForwardTileBytes = std::size_t(1) << 22;
inline constexpr std::size_t kConvBackwardTileBytes = std::size_t(1) << 20;
/// conv2d_backward computes a tile's dcol = W^T dY in chunks of about this many bytes, so that
/// col2im adds each chunk from L2 (the whole tile's dcol would be kConvBackwardTileBytes again).
inline constexpr std::size_t kConvDcolChunkBytes = std::size_t(1) << 17;

namespace detail {

template <class T>
using conv_arg_t = typename std::common_type<T>::type;  // blocks template deduction

/// One image's geometry: input [C, H, W], output positions P = Ho * Wo, K = C kh kw col rows.
struct ConvGeometry {
  index_t c, h, w, ho, wo;
  index_t kh, kw, sh, sw, ph, pw, dh, dw;
  index_t positions() const { return ho * wo; }
  index_t col_rows() const { return c * kh * kw; }

  ConvGeometry(const ConvParams& p, index_t channels, index_t height, index_t width)
      : c(channels), h(height), w(width), ho(p.out_size(0, height)), wo(p.out_size(1, width)),
        kh(p.kernel[0]), kw(p.kernel[1]), sh(p.stride[0]), sw(p.stride[1]), ph(p.padding[0]),
        pw(p.padding[1]), dh(p.dilation[0]), dw(p.dilation[1]) {}

  // Input rows [r0, r1) that output positions [p0, p1) read.
  void rows_touched(index_t p0, index_t p1, index_t& r0, index_t& r1) const {
    r0 = std::max<index_t>(0, (p0 / wo) * sh - ph);
    r1 = std::min<index_t>(h, ((p1 - 1) / wo) * sh - ph + (kh - 1) * dh + 1);
    if (r1 < r0) r1 = r0;
  }
};

template <class T>
index_t tile_positions(const ConvGeometry& g, std::size_t bytes) {
  const index_t rows = std::max<index_t>(1, g.col_rows());
  const index_t fit = static_cast<index_t>(bytes / (sizeof(T) * static_cast<std::size_t>(rows)));
  // Whole panels of gemm_panels (a partial one is copied), and at least 64 columns so the GEMMs
  // stay efficient for very deep receptive fields.
  constexpr index_t panel = PackedMatrix<T>::kPanel;
  return std::max<index_t>(1, std::min(g.positions(), std::max<index_t>(64, fit / panel * panel)));
}

// x as [B, C, H, W] (rank 4) or [B, C, L] (rank 3, read as H = 1); checks and returns geometry.
template <class T>
ConvGeometry conv_geometry(const char* who, const ConvParams& p, const TensorView<const T>& x,
                           const TensorView<const T>& w) {
  p.check(who);
  const bool one_d = x.rank() == 3;
  if (x.rank() != 3 && x.rank() != 4)
    throw ShapeError("conv.2", asrkit::detail::str(who, ": input x must be [B, C, L] or [B, C, H, W],"
                                                   " got ", x.shape().str()));
  if (one_d && (p.kernel[0] != 1 || p.stride[0] != 1 || p.padding[0] != 0 || p.dilation[0] != 1))
    throw ValueError("conv.1", asrkit::detail::str(who, ": a rank-3 input [B, C, L] needs the 1-D "
                                                   "settings (kernel, stride, dilation 1 and "
                                                   "padding 0 along the height), got kernel ",
                                                   p.kernel[0], "x", p.kernel[1]));
  const index_t c = x.dim(1), h = one_d ? 1 : x.dim(2), wd = x.dim(-1);
  if (c % p.groups != 0)
    throw ShapeError("conv.2", asrkit::detail::str(who, ": input channels (", c, " in x ",
                                                   x.shape().str(), ") must be divisible by groups ",
                                                   p.groups));
  const bool w_ok = w.rank() == x.rank() && w.dim(0) % p.groups == 0 && w.dim(1) * p.groups == c &&
                    (one_d ? w.dim(2) == p.kernel[1]
                           : w.dim(2) == p.kernel[0] && w.dim(3) == p.kernel[1]);
  if (!w_ok)
    throw ShapeError("conv.3", asrkit::detail::str(
                                   who, ": weight must be [O, C/groups, ",
                                   one_d ? "" : asrkit::detail::str(p.kernel[0], ", "), p.kernel[1],
                                   "] with C/groups = ", c / p.groups, " and O divisible by groups ",
                                   p.groups, ", got ", w.shape().str()));
  ConvGeometry g(p, c, h, wd);
  if (g.ho < 1 || g.wo < 1)
    throw ShapeError("conv.4", asrkit::detail::str(
                                   who, ": input ", x.shape().str(), " is smaller than the dilated "
                                   "kernel (", (p.kernel[0] - 1) * p.dilation[0] + 1, "x",
                                   (p.kernel[1] - 1) * p.dilation[1] + 1, ") plus padding ",
                                   p.padding[0], "x", p.padding[1]));
  return g;
}

// Entries [m0, m1) of phase s (padded columns m sw + s, m < len) that are image columns
// m sw + s - pw in [0, w).
inline void phase_image_range(const ConvGeometry& g, index_t s, index_t len, index_t& m0,
                              index_t& m1) {
  m0 = std::min(len, std::max<index_t>(0, (g.pw - s + g.sw - 1) / g.sw));
  m1 = std::min(len, std::max(m0, (g.w + g.pw - s + g.sw - 1) / g.sw));
}

// Rows [r0, r1) of channel plane x [H, W], each split into its sw phases of zero-padded
// columns (phase s, entry m: padded column m sw + s), into dst [r1 - r0, sw, len].
template <class T>
void split_phases(const ConvGeometry& g, const T* x, index_t r0, index_t r1, index_t len, T* dst) {
  const index_t phases = g.sw;
  for (index_t r = r0; r < r1; ++r)
    for (index_t s = 0; s < phases; ++s) {
      T* row = dst + ((r - r0) * phases + s) * len;
      // row[m] is padded column m sw + s, image column m sw + off: inside for m in [m0, m1).
      const T* src = x + r * g.w;
      const index_t off = s - g.pw;
      index_t m0, m1;
      phase_image_range(g, s, len, m0, m1);
      std::fill(row, row + m0, T(0));
      if (phases == 1)
        std::copy(src + m0 + off, src + m1 + off, row + m0);
      else if (phases == 2)  // a constant stride the compiler vectorises (DS2's convs)
        for (index_t m = m0; m < m1; ++m) row[m] = src[2 * m + off];
      else
        for (index_t m = m0; m < m1; ++m) row[m] = src[m * phases + off];
      std::fill(row + m1, row + len, T(0));
    }
}

// The direct forward's copy of the input. Output column j reads padded input column
// j sw + v dw = (j + q) sw + s, with s = v dw mod sw and q = v dw / sw; so once each zero-padded
// input row is split into its sw phases (phase s holds padded columns s, s + sw, s + 2 sw, ...),
// kernel tap (c, u, v) of a panel of outputs is one contiguous run of a phase row, which the
// GEMM tile reads in place: no im2col. Rows are `len` long, room for the last panel's overrun.
template <class T>
struct PhaseImage {
  index_t phases, len;

  PhaseImage(const ConvGeometry& g, index_t panels, index_t panel)
      : phases(g.sw), len(panels * panel + (g.kw - 1) * g.dw / g.sw) {
    len = (len + 15) / 16 * 16;                         // rows start on cache lines ...
    if (len * index_t(sizeof(T)) % 4096 == 0) len += 16;  // ... but not 4 KiB apart (aliasing)
  }
  index_t channel_size(const ConvGeometry& g) const { return g.h * phases * len; }

  // The phase rows of channel plane x [H, W] into dst [H, phases, len].
  void fill(const ConvGeometry& g, const T* x, T* dst) const { split_phases(g, x, 0, g.h, len, dst); }
};

// Input rows [r0, r0 + rows) of every channel of one image, each split into its sw phases of
// padded columns as in PhaseImage, for im2col (a copy of x's rows) and col2im (dx's
// accumulator). Output column ow of kernel tap (c, u, v) reads padded column
// ow sw + v dw = (ow + q) sw + s (s = v dw mod sw, q = v dw / sw), so a run of outputs
// [ow, ow + n) of one output row is the contiguous run [ow + q, ow + q + n) of phase s: im2col
// copies runs and col2im adds vectors, where reading or adding x in place would touch every
// sw-th element. add_to drops the sums that col2im leaves on padding columns.
template <class T>
struct PhaseRows {
  index_t r0 = 0, rows = 0, phases = 1, len = 0;
  std::vector<T> data;

  // rows [first, first + count), zero: col2im's accumulator.
  void reset(const ConvGeometry& g, index_t first, index_t count) {
    resize(g, first, count);
    std::fill(data.begin(), data.end(), T(0));
  }
  // rows [first, first + count) of image x [C, H, W].
  void gather(const ConvGeometry& g, const T* x, index_t first, index_t count) {
    resize(g, first, count);
    for (index_t c = 0; c < g.c; ++c)
      split_phases(g, x + c * g.h * g.w, r0, r0 + rows, len, row(c, r0, 0));
  }
  T* row(index_t c, index_t r, index_t s) { return data.data() + ((c * rows + r - r0) * phases + s) * len; }
  const T* row(index_t c, index_t r, index_t s) const {
    return data.data() + ((c * rows + r - r0) * phases + s) * len;
  }

  // x[c, r, .] += the image columns of every phase row held (x is one image [C, H, W]).
  void add_to(const ConvGeometry& g, T* x) const {
    for (index_t c = 0; c < g.c; ++c)
      for (index_t r = r0; r < r0 + rows; ++r)
        for (index_t s = 0; s < phases; ++s) {
          const T* src = row(c, r, s);
          T* dst = x + (c * g.h + r) * g.w;
          index_t m0, m1;
          phase_image_range(g, s, len, m0, m1);
          for (index_t m = m0; m < m1; ++m) dst[m * phases + s - g.pw] += src[m];
        }
  }

 private:
  void resize(const ConvGeometry& g, index_t first, index_t count) {
    r0 = first;
    rows = count;
    phases = g.sw;
    // Runs reach ow + q + n <= Wo + (kw - 1) dw / sw; image columns reach (w - 1 + pw) / sw.
    len = std::max(g.wo + (g.kw - 1) * g.dw / g.sw, (g.w - 1 + g.pw) / g.sw + 1);
    data.resize(static_cast<std::size_t>(g.c * rows * phases * len));
  }
};

// f(k, c, ih, s, m, j, n) for every run of positions [p0 + j, p0 + j + n) of col row
// k = (c, u, v) in [k0, k1) that lies in one output row: input row ih (outside [0, h) on padding
// rows), entries [m, m + n) of its phase s (PhaseRows).
template <class F>
void for_each_run(const ConvGeometry& g, index_t k0, index_t k1, index_t p0, index_t p1, F&& f) {
  for (index_t k = k0; k < k1; ++k) {
    const index_t c = k / (g.kh * g.kw), u = k / g.kw % g.kh, v = k % g.kw;
    const index_t s = v * g.dw % g.sw, q = v * g.dw / g.sw;
    index_t p = p0, oh = p0 / g.wo, ow = p0 % g.wo;
    while (p < p1) {
      const index_t n = std::min(g.wo - ow, p1 - p);
      f(k, c, oh * g.sh - g.ph + u * g.dh, s, ow + q, p - p0, n);
      p += n;
      ++oh;
      ow = 0;
    }
  }
}

// col[k, j - p0] for positions j in [p0, p1) of one image (zeros where padded), from x_rows
// (which must hold every input row those positions read).
template <class T>
void im2col_range(const ConvGeometry& g, const PhaseRows<T>& x_rows, index_t p0, index_t p1,
                  T* col, index_t ld) {
  for_each_run(g, 0, g.col_rows(), p0, p1,
               [&](index_t k, index_t c, index_t ih, index_t s, index_t m, index_t j, index_t n) {
    T* dst = col + k * ld + j;
    if (ih < 0 || ih >= g.h) {
      std::fill(dst, dst + n, T(0));
    } else {
      ASRKIT_ASSERT(ih >= x_rows.r0 && ih < x_rows.r0 + x_rows.rows);
      std::copy_n(x_rows.row(c, ih, s) + m, n, dst);
    }
  });
}

// The adjoint of im2col_range over col rows [k0, k1) (col points at row k0): dx += col[k - k0,
// j - p0] for every position j in [p0, p1) of one image, through band (which must hold every
// input row those positions read).
template <class T>
void col2im_range(const ConvGeometry& g, const T* col, index_t ld, index_t k0, index_t k1,
                  index_t p0, index_t p1, PhaseRows<T>& band) {
  using Run = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  using ConstRun = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  for_each_run(g, k0, k1, p0, p1,
               [&](index_t k, index_t c, index_t ih, index_t s, index_t m, index_t j, index_t n) {
    if (ih < 0 || ih >= g.h) return;
    ASRKIT_ASSERT(ih >= band.r0 && ih < band.r0 + band.rows);
    Run(band.row(c, ih, s) + m, n) += ConstRun(col + (k - k0) * ld + j, n);
  });
}

// Which backward is faster (direct / im2col time on the Zen 5 EPYC, /tmp harness over both
// paths, 1 and 2 threads): the direct one writes neither col nor dcol, and its dW needs no
// panels of output columns, but its dX does. Where whole panels of an output row waste at most
// 1/8: DS2's conv 1 and 2 (og 32) 0.77-0.78 and 0.56-0.60; a 1-D conv k 5 over 500 frames 0.81,
// 0.90, 0.95, 0.98 at 16, 128, 256, 512 channels; 3x3 over 250 columns, 64 channels: 0.89. On
// narrow rows it depends on the channels: 3x3, 256 channels over 39 columns 1.24-1.31
// (Conv2dSubsampling's second conv 1.21-1.28), over 100 columns, 128 channels 1.01-1.02, over
// 19 columns, 16 channels 0.74-0.78. Hence: direct wherever the panels fit, for any og.
template <class T>
bool direct_backward_pays(const ConvGeometry& g) {
  constexpr index_t P = PackedMatrix<T>::kPanel;
  return (g.wo + P - 1) / P * P * 8 <= g.wo * 9;
}

// Which forward is faster (one core, direct / im2col time, /tmp harness over both paths): the
// direct one saves writing im2col, a cost shared by the og output channels of a group, but pays
// for whole panels of output columns and reads its taps from unaligned addresses. Measured:
// DS2's conv 1 and 2 (og 32, 41x11 and 21x11): 0.72 and 0.57; a 1-D conv k 5 over 500 frames:
// 0.74 / 0.84 / 0.92 / 0.96 / 0.96 / 1.02-1.12 at og 16 / 32 / 64 / 96 / 128 / 256; a 3x3 conv
// with 100 output columns (panels 28% padding): 0.74 at og 16, 1.00 at og 64, 1.21 at og 128;
// Conv2dSubsampling's 39 and 19 output columns: 1.40 and 1.59. Hence: direct where the last
// partial panel of an output row wastes at most 1/8 of the work and og <= 128.
template <class T>
bool direct_pays(const ConvGeometry& g, index_t out_per_group) {
  return direct_backward_pays<T>(g) && out_per_group <= 128;
}

inline Shape conv_out_shape(const Shape& x, index_t out_channels, const ConvGeometry& g) {
  return x.rank() == 3 ? Shape{x[0], out_channels, g.wo} : Shape{x[0], out_channels, g.ho, g.wo};
}

// The forward by im2col tiles: y [B, O, P] = W_g col_g per group, + bias (null: none).
template <class T>
void conv_forward_im2col(const ConvGeometry& g, index_t groups, index_t batch, index_t out,
                         const T* x, const T* w, const T* bias, T* y) {
  const index_t og = out / groups, kg = g.col_rows() / groups;
  const index_t np = g.positions(), tile = tile_positions<T>(g, kConvForwardTileBytes);
  const index_t tiles = (np + tile - 1) / tile, items = batch * tiles;
  const index_t in_image = g.c * g.h * g.w;
  const index_t chunks = std::min<index_t>(items, num_threads());
  parallel_for(chunks, [&](index_t chunk) {
    std::vector<T> col(static_cast<std::size_t>(g.col_rows() * std::min(tile, np)));
    PhaseRows<T> x_rows;
    for (index_t it = chunk * items / chunks; it < (chunk + 1) * items / chunks; ++it) {
      const index_t b = it / tiles, p0 = (it % tiles) * tile, p1 = std::min(np, p0 + tile);
      const index_t n = p1 - p0;
      index_t r0, r1;
      g.rows_touched(p0, p1, r0, r1);
      x_rows.gather(g, x + b * in_image, r0, r1 - r0);
      im2col_range(g, x_rows, p0, p1, col.data(), n);
      T* yb = y + b * out * np + p0;
      for (index_t gi = 0; gi < groups; ++gi)
        gemm_panels<T>(og, n, kg, T(1), w + gi * og * kg, kg, col.data() + gi * kg * n, n, T(0),
                       yb + gi * og * np, np, bias ? bias + gi * og : nullptr);
    }
  });
}

// Kernel rows u in [u0, u1) whose input row i sh - ph + u dh of output row i lies inside [0, h).
inline void valid_kernel_rows(const ConvGeometry& g, index_t i, index_t& u0, index_t& u1) {
  const index_t top = i * g.sh - g.ph;
  u0 = std::min(g.kh, top >= 0 ? 0 : (-top + g.dh - 1) / g.dh);
  u1 = std::max(u0, std::min(g.kh, top >= g.h ? 0 : (g.h - 1 - top) / g.dh + 1));
}

// Output panels per work item of the direct forward (a 1-D conv has one output row per image).
inline constexpr index_t kDirectPanelsPerItem = 4;

// The direct forward: the same GEMM tile as im2col's, with B's rows gathered from PhaseImage
// (one pointer per kernel tap) instead of copied. Taps that fall on padding rows are skipped: the
// weights are reordered to [O, kh, C/g, kw] so an output row's valid kernel rows u in [u0, u1)
// are one contiguous run of k.
template <class T>
void conv_forward_direct(const ConvGeometry& g, index_t groups, index_t batch, index_t out,
                         const T* x, const T* w, const T* bias, T* y) {
  constexpr index_t P = PackedMatrix<T>::kPanel;
  const index_t og = out / groups, cg = g.c / groups, taps = cg * g.kh * g.kw;
  const index_t panels = (g.wo + P - 1) / P;
  const PhaseImage<T> ph(g, panels, P);
  const index_t plane = ph.channel_size(g);
  Tensor<T> phased(Shape{batch * g.c * plane}, uninitialized);
  parallel_for(batch * g.c, [&](index_t bc) {
    ph.fill(g, x + bc * g.h * g.w, phased.data() + bc * plane);
  });
  Tensor<T> wr(Shape{out * taps}, uninitialized);  // w [o, c, u, v] -> wr [o, u, c, v]
  for (index_t o = 0; o < out; ++o)
    for (index_t c = 0; c < cg; ++c)
      for (index_t u = 0; u < g.kh; ++u)
        std::copy_n(w + ((o * cg + c) * g.kh + u) * g.kw, g.kw,
                    wr.data() + ((o * g.kh + u) * cg + c) * g.kw);
  std::vector<index_t> tap_column(static_cast<std::size_t>(g.kw));  // tap v: phase row, offset
  for (index_t v = 0; v < g.kw; ++v)
    tap_column[static_cast<std::size_t>(v)] = v * g.dw % g.sw * ph.len + v * g.dw / g.sw;
  const index_t blocks = (panels + kDirectPanelsPerItem - 1) / kDirectPanelsPerItem;
  const index_t items = batch * g.ho * blocks, np = g.positions();
  const index_t chunks = std::min<index_t>(items, num_threads());
  parallel_for(chunks, [&](index_t chunk) {
    std::vector<const T*> rows(static_cast<std::size_t>(groups * taps));  // group gi's at gi * taps
    index_t rows_of = -1;  // the output row (b * ho + i) that `rows` was built for
    for (index_t it = chunk * items / chunks; it < (chunk + 1) * items / chunks; ++it) {
      const index_t b = it / (g.ho * blocks), i = it / blocks % g.ho, blk = it % blocks;
      const index_t j0 = blk * kDirectPanelsPerItem * P;
      const index_t j1 = std::min(g.wo, j0 + kDirectPanelsPerItem * P);
      const index_t top = i * g.sh - g.ph;
      index_t u0, u1;
      valid_kernel_rows(g, i, u0, u1);
      const index_t k = (u1 - u0) * cg * g.kw;
      T* yrow = y + (b * out * g.ho + i) * g.wo;  // channel o at yrow + o * np
      if (rows_of != b * g.ho + i) {  // the taps' input rows, once per output row
        rows_of = b * g.ho + i;
        for (index_t gi = 0; gi < groups; ++gi) {
          const T* image = phased.data() + (b * g.c + gi * cg) * plane;
          const T** row = rows.data() + gi * taps;
          for (index_t u = u0; u < u1; ++u)
            for (index_t c = 0; c < cg; ++c) {
              const T* input_row = image + c * plane + (top + u * g.dh) * ph.phases * ph.len;
              for (index_t v = 0; v < g.kw; ++v)
                *row++ = input_row + tap_column[static_cast<std::size_t>(v)];
            }
        }
      }
      for (index_t gi = 0; gi < groups; ++gi) {
        const T* a = wr.data() + gi * og * taps + u0 * cg * g.kw;
        for (index_t j = j0; j < j1; j += P)
          packed_column(og, k, T(1), StridedRows<const T>{a, taps},
                        GatheredRows<const T>{rows.data() + gi * taps, j},
                        bias ? bias + gi * og : nullptr, T(0),
                        StridedRows<T>{yrow + gi * og * np + j, np}, std::min(P, g.wo - j));
      }
    }
  });
}

// What conv2d_backward's work items share and produce: the weight transposed, W_g^T [kg, og]
// per group (both paths multiply dY by it), and for every item (a slab of one image) its dW_g^T
// partials (same layout) and its band of dX rows; the caller sums them in item order.
template <class T>
struct ConvGradients {
  index_t wsize;                    // elements of w
  bool need_dx;
  index_t slabs = 0;                // work items per image, set by allocate
  std::vector<T> wt;                // W_g^T [kg, og] per group (only with dx)
  std::vector<T> dw_part;           // [items][wsize]: dW_g^T [kg, og] per group
  std::vector<PhaseRows<T>> band;   // [items] (none without dx)

  ConvGradients(const ConvGeometry& g, index_t groups, index_t out, const T* w, bool dx)
      : wsize(out * g.col_rows() / groups), need_dx(dx) {
    const index_t og = out / groups, kg = g.col_rows() / groups;
    wt.resize(need_dx ? static_cast<std::size_t>(wsize) : 0);
    for (index_t gi = 0; need_dx && gi < groups; ++gi)
      Eigen::Map<RowMatrix<T>>(wt.data() + gi * kg * og, kg, og) =
          Eigen::Map<const RowMatrix<T>>(w + gi * og * kg, og, kg).transpose();
  }
  void allocate(index_t batch, index_t slabs_per_image) {
    slabs = slabs_per_image;
    dw_part.assign(static_cast<std::size_t>(batch * slabs * wsize), T(0));
    band.resize(need_dx ? static_cast<std::size_t>(batch * slabs) : 0);
  }
};

// The backward by im2col tiles (recomputed from PhaseRows copies of the input rows): per tile
// and group, dW_g^T += col_g dY_g^T (gemm, col read in place) and dcol_g = W_g^T dY_g in
// L2-sized chunks of rows, each added into the slab's band by col2im while still in cache.
template <class T>
void conv_backward_im2col(const ConvGeometry& g, index_t groups, index_t batch, index_t out,
                          const T* x, const T* dy, ConvGradients<T>& parts) {
  const index_t og = out / groups, kg = g.col_rows() / groups;
  const index_t np = g.positions(), tile = tile_positions<T>(g, kConvBackwardTileBytes);
  const index_t tiles = (np + tile - 1) / tile;
  // A fixed number of work items (never the thread count): at least 8 slabs overall.
  const index_t slabs = std::min<index_t>(tiles, std::max<index_t>(1, (8 + batch - 1) / batch));
  const index_t items = batch * slabs, in_image = g.c * g.h * g.w;
  parts.allocate(batch, slabs);
  // Rows of a dcol chunk: about kConvDcolChunkBytes, whole tiles of gemm_panels' rows.
  constexpr index_t R = PanelTraits<T>::max_rows;
  const index_t dcol_rows = std::max<index_t>(
      R, static_cast<index_t>(kConvDcolChunkBytes / (sizeof(T) * std::min(tile, np))) / R * R);
  const index_t chunks = std::min<index_t>(items, num_threads());
  parallel_for(chunks, [&](index_t chunk) {
    const index_t width = std::min(tile, np);
    std::vector<T> col(static_cast<std::size_t>(g.col_rows() * width));
    std::vector<T> dcol(parts.need_dx ? static_cast<std::size_t>(dcol_rows * width) : 0);
    PhaseRows<T> x_rows;  // the input rows the slab reads
    for (index_t it = chunk * items / chunks; it < (chunk + 1) * items / chunks; ++it) {
      const index_t b = it / slabs, s = it % slabs;
      const index_t t0 = s * tiles / slabs, t1 = (s + 1) * tiles / slabs;
      const index_t sp0 = t0 * tile, sp1 = std::min(np, t1 * tile);
      index_t r0, r1;
      g.rows_touched(sp0, sp1, r0, r1);
      x_rows.gather(g, x + b * in_image, r0, r1 - r0);
      if (parts.need_dx) parts.band[static_cast<std::size_t>(it)].reset(g, r0, r1 - r0);
      T* dwp = parts.dw_part.data() + it * parts.wsize;
      const T* dyb = dy + b * out * np;
      for (index_t p0 = sp0; p0 < sp1; p0 += tile) {
        const index_t n = std::min(tile, sp1 - p0);
        im2col_range(g, x_rows, p0, p0 + n, col.data(), n);
        for (index_t gi = 0; gi < groups; ++gi) {
          const T* dy_g = dyb + gi * og * np + p0;  // dY_g [og, n], rows np apart
          // dW_g^T [kg, og] += col_g [kg, n] dY_g^T [n, og]: transposed, so that the big
          // operand col is read as stored (row copies) and only dY's og rows are transposed.
          gemm<Cpu, T>(Trans::no, Trans::yes, kg, og, n, T(1), col.data() + gi * kg * n, n, dy_g,
                       np, T(1), dwp + gi * kg * og, og);
          if (!parts.need_dx) continue;
          // dcol_g = W_g^T [kg, og] dY_g [og, n], dcol_rows rows at a time, each added into
          // the band while it is still in cache; dY_g is read in place.
          for (index_t r = 0; r < kg; r += dcol_rows) {
            const index_t rows = std::min(dcol_rows, kg - r);
            gemm_panels(rows, n, og, T(1), parts.wt.data() + (gi * kg + r) * og, og, dy_g, np,
                        T(0), dcol.data(), n);
            col2im_range(g, dcol.data(), n, gi * kg + r, gi * kg + r + rows, p0, p0 + n,
                         parts.band[static_cast<std::size_t>(it)]);
          }
        }
      }
    }
  });
}

// The backward for the shapes the direct forward takes, with neither col nor dcol: per output
// row i of a slab and group, over its taps (c, u, v) whose input row lies inside the image,
//   dW_g^T [taps, og] += X [taps, Wo] dY_i^T [Wo, og]   (A: each tap's run of a PhaseRows copy of
//                        the input, read in place; B: dY's row i transposed into panels),
//   dX [taps, Wo]     += W_g^T [taps, og] dY_i [og, Wo] (C: each tap's run of the slab's band,
//                        panel by panel of output columns; B: dY read in place),
// both through the GEMM tile with rows of A and C gathered by pointer tables. Taps are listed
// v-major ([v, c, u]), so consecutive rows of a tile add to different input rows: taps (c, u, v)
// and (c, u, v + sw) add to overlapping runs of one phase row, which in one tile would make each
// row's load wait for the store before it.
template <class T>
void conv_backward_direct(const ConvGeometry& g, index_t groups, index_t batch, index_t out,
                          const T* x, const T* dy, ConvGradients<T>& parts) {
  constexpr index_t P = PackedMatrix<T>::kPanel;
  const index_t og = out / groups, kg = g.col_rows() / groups, cg = g.c / groups;
  const index_t np = g.positions(), in_image = g.c * g.h * g.w;
  const index_t o_panels = (og + P - 1) / P;
  // A fixed number of work items (never the thread count): at least 8 slabs of output rows.
  const index_t slabs = std::min<index_t>(g.ho, std::max<index_t>(1, (8 + batch - 1) / batch));
  const index_t items = batch * slabs;
  parts.allocate(batch, slabs);
  const index_t chunks = std::min<index_t>(items, num_threads());
  parallel_for(chunks, [&](index_t chunk) {
    PhaseRows<T> x_rows;
    std::vector<const T*> x_run(static_cast<std::size_t>(kg)), w_row(x_run.size());
    std::vector<T*> dx_run(x_run.size()), dw_row(x_run.size());
    std::vector<T, Eigen::aligned_allocator<T>> dy_t(static_cast<std::size_t>(o_panels * g.wo * P));
    std::vector<T, Eigen::aligned_allocator<T>> tail(static_cast<std::size_t>(og * P));
    for (index_t it = chunk * items / chunks; it < (chunk + 1) * items / chunks; ++it) {
      const index_t b = it / slabs, s = it % slabs;
      const index_t i0 = s * g.ho / slabs, i1 = (s + 1) * g.ho / slabs;
      index_t r0, r1;
      g.rows_touched(i0 * g.wo, i1 * g.wo, r0, r1);
      x_rows.gather(g, x + b * in_image, r0, r1 - r0);
      PhaseRows<T>* band = parts.need_dx ? &parts.band[static_cast<std::size_t>(it)] : nullptr;
      if (band) band->reset(g, r0, r1 - r0);
      T* dwp = parts.dw_part.data() + it * parts.wsize;
      for (index_t i = i0; i < i1; ++i) {
        index_t u0, u1;
        valid_kernel_rows(g, i, u0, u1);
        const index_t taps = (u1 - u0) * cg * g.kw, top = i * g.sh - g.ph;
        if (taps == 0) continue;
        for (index_t gi = 0; gi < groups; ++gi) {
          // Tap t (v-major) is col row k = (c, u, v) of the group: its input run, its row of
          // W_g^T and of dW_g^T, its run of dX.
          index_t t = 0;
          for (index_t v = 0; v < g.kw; ++v)
            for (index_t c = 0; c < cg; ++c)
              for (index_t u = u0; u < u1; ++u, ++t) {
                const index_t k = (c * g.kh + u) * g.kw + v, ih = top + u * g.dh;
                const index_t phase = v * g.dw % g.sw, q = v * g.dw / g.sw;
                x_run[t] = x_rows.row(gi * cg + c, ih, phase) + q;
                dw_row[t] = dwp + (gi * kg + k) * og;
                if (!band) continue;
                w_row[t] = parts.wt.data() + (gi * kg + k) * og;
                dx_run[t] = band->row(gi * cg + c, ih, phase) + q;
              }
          const T* dy_i = dy + (b * out + gi * og) * np + i * g.wo;  // dY_g's row i, rows np apart
          for (index_t op = 0; op < o_panels; ++op)  // dY_i^T, k-major panels [Wo][P]
            pack_panel(dy_i + op * P * np, index_t(1), np, g.wo, std::min(P, og - op * P),
                       dy_t.data() + op * g.wo * P);
          for (index_t op = 0; op < o_panels; ++op)
            packed_column(taps, g.wo, T(1), GatheredRows<const T>{x_run.data(), 0},
                          StridedRows<const T>{dy_t.data() + op * g.wo * P, P},
                          static_cast<const T*>(nullptr), T(1),
                          GatheredRows<T>{dw_row.data(), op * P}, std::min(P, og - op * P));
          if (!band) continue;
          for (index_t j = 0; j < g.wo; j += P) {
            const index_t cols = std::min(P, g.wo - j);
            StridedRows<const T> dy_panel{dy_i + j, np};
            if (cols < P) {  // a full-width read would run past dY's row: copy, zero-padded
              pack_panel(dy_i + j, np, index_t(1), og, cols, tail.data());
              dy_panel = {tail.data(), P};
            }
            packed_column(taps, og, T(1), GatheredRows<const T>{w_row.data(), 0}, dy_panel,
                          static_cast<const T*>(nullptr), T(1), GatheredRows<T>{dx_run.data(), j},
                          cols);
          }
        }
      }
    }
  });
}

// dx (null: none; zeroed beforehand) += and dw += the gradients for dy, by the direct path or by
// im2col tiles; then the items' partials are summed in a fixed order.
template <class T>
void conv_backward(const ConvGeometry& g, index_t groups, index_t batch, index_t out, const T* x,
                   const T* w, const T* dy, T* dx, T* dw, bool direct) {
  const index_t og = out / groups, kg = g.col_rows() / groups;
  ConvGradients<T> parts(g, groups, out, w, dx != nullptr);
  if (direct)
    conv_backward_direct(g, groups, batch, out, x, dy, parts);
  else
    conv_backward_im2col(g, groups, batch, out, x, dy, parts);
  // Fixed-order reductions: slabs of an image into dx, every partial into dw.
  const index_t slabs = parts.slabs, items = batch * slabs, in_image = g.c * g.h * g.w;
  if (dx) {
    parallel_for(batch, [&](index_t b) {
      for (index_t s = 0; s < slabs; ++s)
        parts.band[static_cast<std::size_t>(b * slabs + s)].add_to(g, dx + b * in_image);
    });
  }
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<Array> total(parts.dw_part.data(), parts.wsize);  // item 0's
  for (index_t it = 1; it < items; ++it)
    total += Eigen::Map<const Array>(parts.dw_part.data() + it * parts.wsize, parts.wsize);
  for (index_t gi = 0; gi < groups; ++gi)  // dW_g += (dW_g^T)^T
    Eigen::Map<RowMatrix<T>>(dw + gi * og * kg, og, kg) +=
        Eigen::Map<const RowMatrix<T>>(parts.dw_part.data() + gi * kg * og, kg, og).transpose();
}

}  // namespace detail

/// The output shape of a convolution of x ([B, C, L] or [B, C, H, W]) with weight w.
template <class T>
Shape conv_output_shape(const ConvParams& p, detail::conv_arg_t<TensorView<const T>> x,
                        detail::conv_arg_t<TensorView<const T>> w) {
  const auto g = detail::conv_geometry<T>("conv", p, x, w);
  return detail::conv_out_shape(x.shape(), w.dim(0), g);
}

/// im2col of one image: x [C, H, W] (or [C, L] for 1-D) -> col [C kh kw, Ho Wo].
template <class Device = Cpu, class T>
void im2col(const ConvParams& p, detail::conv_arg_t<TensorView<const T, Device>> x,
            TensorView<T, Device> col) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::im2col: only the Cpu device is implemented");
  p.check("im2col");
  if (x.rank() != 2 && x.rank() != 3)
    throw ShapeError("conv.2", asrkit::detail::str("im2col: image x must be [C, L] or [C, H, W], "
                                                   "got ", x.shape().str()));
  const detail::ConvGeometry g(p, x.dim(0), x.rank() == 2 ? 1 : x.dim(1), x.dim(-1));
  const Shape want{g.col_rows(), g.positions()};
  if (col.shape() != want)
    throw ShapeError("conv.5", asrkit::detail::str("im2col: col must be ", want.str(), " for x ",
                                                   x.shape().str(), ", got ", col.shape().str()));
  if (want.numel() > 0) {
    detail::PhaseRows<T> x_rows;
    x_rows.gather(g, x.data(), 0, g.h);
    detail::im2col_range(g, x_rows, 0, g.positions(), col.data(), g.positions());
  }
}

/// col2im of one image (the adjoint of im2col): x [C, H, W] += the columns scattered back.
template <class Device = Cpu, class T>
void col2im(const ConvParams& p, detail::conv_arg_t<TensorView<const T, Device>> col,
            TensorView<T, Device> x) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::col2im: only the Cpu device is implemented");
  p.check("col2im");
  if (x.rank() != 2 && x.rank() != 3)
    throw ShapeError("conv.2", asrkit::detail::str("col2im: image x must be [C, L] or [C, H, W], "
                                                   "got ", x.shape().str()));
  const detail::ConvGeometry g(p, x.dim(0), x.rank() == 2 ? 1 : x.dim(1), x.dim(-1));
  const Shape want{g.col_rows(), g.positions()};
  if (col.shape() != want)
    throw ShapeError("conv.5", asrkit::detail::str("col2im: col must be ", want.str(), " for x ",
                                                   x.shape().str(), ", got ", col.shape().str()));
  if (want.numel() > 0) {
    detail::PhaseRows<T> band;
    band.reset(g, 0, g.h);
    detail::col2im_range(g, col.data(), g.positions(), 0, g.col_rows(), 0, g.positions(), band);
    band.add_to(g, x.data());
  }
}

/// y = conv(x, w) + bias. x [B, C, H, W] or [B, C, L]; w [O, C/groups, kh, kw] or [O, C/groups, k];
/// bias [O] or a default view {} for none; y [B, O, Ho, Wo] or [B, O, Lo] (overwritten).
template <class Device = Cpu, class T>
void conv2d_forward(const ConvParams& p, detail::conv_arg_t<TensorView<const T, Device>> x,
                    detail::conv_arg_t<TensorView<const T, Device>> w,
                    detail::conv_arg_t<TensorView<const T, Device>> bias, TensorView<T, Device> y) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::conv2d_forward: only the Cpu device is implemented");
  const auto g = detail::conv_geometry<T>("conv2d_forward", p, x, w);
  const index_t batch = x.dim(0), out = w.dim(0);
  const Shape want = detail::conv_out_shape(x.shape(), out, g);
  if (y.shape() != want)
    throw ShapeError("conv.5", asrkit::detail::str("conv2d_forward: output y must be ", want.str(),
                                                   ", got ", y.shape().str()));
  const bool has_bias = bias.data() != nullptr;
  if (has_bias && (bias.rank() != 1 || bias.dim(0) != out))
    throw ShapeError("conv.6", asrkit::detail::str("conv2d_forward: bias must be [", out, "], got ",
                                                   bias.shape().str()));
  if (y.numel() == 0) return;
  if (detail::direct_pays<T>(g, out / p.groups))
    detail::conv_forward_direct(g, p.groups, batch, out, x.data(), w.data(), bias.data(), y.data());
  else
    detail::conv_forward_im2col(g, p.groups, batch, out, x.data(), w.data(), bias.data(), y.data());
}

/// Backward of conv2d_forward for the upstream gradient dy (shape of y). dx (the shape of x, or a
/// default view {} to skip it) is overwritten; dw and db (or {}) are accumulated into (+=).
template <class Device = Cpu, class T>
void conv2d_backward(const ConvParams& p, detail::conv_arg_t<TensorView<const T, Device>> x,
                     detail::conv_arg_t<TensorView<const T, Device>> w,
                     detail::conv_arg_t<TensorView<const T, Device>> dy,
                     detail::conv_arg_t<TensorView<T, Device>> dx, TensorView<T, Device> dw,
                     detail::conv_arg_t<TensorView<T, Device>> db) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::conv2d_backward: only the Cpu device is implemented");
  const auto g = detail::conv_geometry<T>("conv2d_backward", p, x, w);
  const index_t batch = x.dim(0), out = w.dim(0);
  const Shape want = detail::conv_out_shape(x.shape(), out, g);
  if (dy.shape() != want)
    throw ShapeError("conv.5", asrkit::detail::str("conv2d_backward: output gradient dy must be ",
                                                   want.str(), ", got ", dy.shape().str()));
  const bool need_dx = dx.data() != nullptr, need_db = db.data() != nullptr;
  if (need_dx && dx.shape() != x.shape())
    throw ShapeError("conv.5", asrkit::detail::str("conv2d_backward: input gradient dx must be ",
                                                   x.shape().str(), ", got ", dx.shape().str()));
  if (dw.shape() != w.shape())
    throw ShapeError("conv.5", asrkit::detail::str("conv2d_backward: weight gradient dw must be ",
                                                   w.shape().str(), ", got ", dw.shape().str()));
  if (need_db && (db.rank() != 1 || db.dim(0) != out))
    throw ShapeError("conv.6", asrkit::detail::str("conv2d_backward: bias gradient db must be [",
                                                   out, "], got ", db.shape().str()));
  if (need_db) {
    // db[o] += sum over b and positions of dy[b, o, .]
    const index_t np = g.positions();
    for (index_t o = 0; o < out; ++o) {
      T acc = T(0);
      for (index_t b = 0; b < batch; ++b)
        acc += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(dy.data() + (b * out + o) * np, np).sum();
      db.data()[o] += acc;
    }
  }
  if (need_dx) std::fill(dx.data(), dx.data() + dx.numel(), T(0));
  if (batch == 0 || dy.numel() == 0 || g.col_rows() == 0) return;
  detail::conv_backward(g, p.groups, batch, out, x.data(), w.data(), dy.data(), dx.data(),
                        dw.data(), detail::direct_backward_pays<T>(g));
}

}  // namespace ops
}  // namespace asrkit
