// asrkit/ops/depthwise_conv1d.hpp - depthwise 1-D convolution over the time axis of time-major
// sequences, forward and backward.
//
//   auto p = asrkit::ops::DepthwiseConv1dParams::centered(15);   // Conformer: k - 1 zeros, split
//   auto c = asrkit::ops::DepthwiseConv1dParams::causal(15);     // streaming: k - 1 zeros on the left
//   auto r = asrkit::ops::DepthwiseConv1dParams::lookahead(21);  // DS2 row conv (tau = 20, SPECS §3.9)
//   asrkit::ops::depthwise_conv1d_forward(p, x, w, b, y);        // x [T, B, C] -> y [T_out, B, C]
//   asrkit::ops::depthwise_conv1d_backward(p, x, w, dy, dx, dw, db);
//
// Each channel c has its own k taps (torch.nn.Conv1d(C, C, k, groups=C) on [B, C, T], whose weight
// is [C, 1, k]); with `left` zeros before frame 0 and `right` zeros after frame T - 1,
//   y[t, b, c] = bias[c] + sum_j w[c, j] x[t - left + j, b, c],   T_out = T + left + right - k + 1.
// Working on [T, B, C] directly keeps the channel axis contiguous, so every tap is one vectorised
// multiply-add over a frame (im2col + GEMM would run C products of size 1 x k).
// Threads: the forward and dx split output frames; dw and db split channel blocks, each summed in
// (t, b) order by one thread, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include <asrkit/core/config.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {
namespace ops {

/// Kernel size and zero padding (in frames) of a depthwise convolution over time.
struct DepthwiseConv1dParams {
  index_t kernel = 1;
  index_t left = 0;   ///< zeros before the first frame
  index_t right = 0;  ///< zeros after the last frame

  /// Output length equals input length, padding split (k - 1) / 2 left, k / 2 right (odd k: same).
  static DepthwiseConv1dParams centered(index_t k) { return {k, (k - 1) / 2, k / 2}; }
  /// Frame t sees frames t - k + 1 .. t only (streaming).
  static DepthwiseConv1dParams causal(index_t k) { return {k, k - 1, 0}; }
  /// Frame t sees frames t .. t + k - 1 only (DS2 row convolution with tau = k - 1).
  static DepthwiseConv1dParams lookahead(index_t k) { return {k, 0, k - 1}; }

  index_t out_steps(index_t steps) const { return steps + left + right - kernel + 1; }

  /// Throws ValueError depthwise_conv.1 unless kernel >= 1 and both paddings are >= 0.
  void check(const char* who = "depthwise_conv1d") const {
    if (kernel < 1 || left < 0 || right < 0)
      throw ValueError("depthwise_conv.1",
                       asrkit::detail::str(who, ": kernel must be >= 1 and padding >= 0, got kernel ",
                                           kernel, ", left ", left, ", right ", right));
  }
};

namespace detail {

template <class T>
using dw_arg_t = typename std::common_type<T>::type;  // blocks template deduction

/// Checks x [T, B, C], w (C·k elements: [C, 1, k] or [C, k]), bias ([C] or empty) and y/dy
/// [T_out, B, C]; returns T_out.
template <class T>
index_t check_depthwise(const DepthwiseConv1dParams& p, TensorView<const T> x, TensorView<const T> w,
                        TensorView<const T> bias, const Shape& out, const char* out_name) {
  p.check();
  if (x.rank() != 3)
    throw ShapeError("depthwise_conv.2", asrkit::detail::str("depthwise_conv1d: argument x: expected "
                                                             "shape [T, B, C], got ", x.shape().str()));
  const index_t ch = x.dim(2);
  if (w.numel() != ch * p.kernel || w.shape()[0] != ch)
    throw ShapeError("depthwise_conv.2", asrkit::detail::str("depthwise_conv1d: argument w: expected ",
                                                             "[", ch, ", 1, ", p.kernel, "], got ",
                                                             w.shape().str()));
  if (bias.data() != nullptr && (bias.rank() != 1 || bias.dim(0) != ch))
    throw ShapeError("depthwise_conv.2", asrkit::detail::str("depthwise_conv1d: argument bias: "
                                                             "expected [", ch, "], got ",
                                                             bias.shape().str()));
  const index_t steps = p.out_steps(x.dim(0));
  if (steps < 1)
    throw ShapeError("depthwise_conv.3", asrkit::detail::str("depthwise_conv1d: ", x.dim(0),
                                                             " frames padded by ", p.left, " + ",
                                                             p.right, " are shorter than the kernel ",
                                                             p.kernel));
  const Shape want{steps, x.dim(1), ch};
  if (out != want)
    throw ShapeError("depthwise_conv.2", asrkit::detail::str("depthwise_conv1d: argument ", out_name,
                                                             ": expected shape ", want.str(), ", got ",
                                                             out.str()));
  return steps;
}

/// w [C, k] transposed to [k, C], so that tap j is a contiguous row over the channels.
template <class T>
std::vector<T> taps_by_row(const T* w, index_t ch, index_t k) {
  std::vector<T> wt(static_cast<std::size_t>(ch * k));
  for (index_t c = 0; c < ch; ++c)
    for (index_t j = 0; j < k; ++j) wt[static_cast<std::size_t>(j * ch + c)] = w[c * k + j];
  return wt;
}

inline constexpr index_t kDepthwiseChannelBlock = 64;

}  // namespace detail

/// y = depthwise_conv(x) (see the header comment); y is overwritten. An empty `bias` means none.
template <class T>
void depthwise_conv1d_forward(const DepthwiseConv1dParams& p, detail::dw_arg_t<TensorView<const T>> x,
                              detail::dw_arg_t<TensorView<const T>> w,
                              detail::dw_arg_t<TensorView<const T>> bias, TensorView<T> y) {
  const index_t out = detail::check_depthwise<T>(p, x, w, bias, y.shape(), "y");
  const index_t steps = x.dim(0), batch = x.dim(1), ch = x.dim(2), k = p.kernel;
  const std::vector<T> wt = detail::taps_by_row(w.data(), ch, k);
  const T* px = x.data();
  const T* pb = bias.data();
  T* py = y.data();
  parallel_for(out, [&](index_t t) {
    for (index_t b = 0; b < batch; ++b) {
      T* ASRKIT_RESTRICT yr = py + (t * batch + b) * ch;
      if (pb)
        std::copy(pb, pb + ch, yr);
      else
        std::fill(yr, yr + ch, T(0));
      // taps j whose input frame s = t - left + j lies inside [0, T)
      const index_t j0 = std::max<index_t>(0, p.left - t), j1 = std::min<index_t>(k, steps + p.left - t);
      for (index_t j = j0; j < j1; ++j) {
        const T* ASRKIT_RESTRICT xr = px + ((t - p.left + j) * batch + b) * ch;
        const T* ASRKIT_RESTRICT wr = wt.data() + j * ch;
        for (index_t c = 0; c < ch; ++c) yr[c] += wr[c] * xr[c];
      }
    }
  });
}

/// Gradients for dy [T_out, B, C]: dx is overwritten (an empty dx skips it), dw ([C, 1, k]) and
/// db ([C], empty: none) accumulate.
///   dx[s, b, c] = sum_j w[c, j] dy[s + left - j, b, c],   dw[c, j] += sum_{t, b} dy[t, b, c] x[t - left + j, b, c].
template <class T>
void depthwise_conv1d_backward(const DepthwiseConv1dParams& p, detail::dw_arg_t<TensorView<const T>> x,
                               detail::dw_arg_t<TensorView<const T>> w,
                               detail::dw_arg_t<TensorView<const T>> dy, TensorView<T> dx,
                               TensorView<T> dw, TensorView<T> db) {
  const index_t out = detail::check_depthwise<T>(p, x, w, TensorView<const T>(), dy.shape(), "dy");
  const index_t steps = x.dim(0), batch = x.dim(1), ch = x.dim(2), k = p.kernel;
  if (dx.data() != nullptr && dx.shape() != x.shape())
    throw ShapeError("depthwise_conv.2", asrkit::detail::str("depthwise_conv1d_backward: argument dx: "
                                                             "expected shape ", x.shape().str(),
                                                             ", got ", dx.shape().str()));
  if (dw.numel() != ch * k || (db.data() != nullptr && db.numel() != ch))
    throw ShapeError("depthwise_conv.2", asrkit::detail::str("depthwise_conv1d_backward: dw must have ",
                                                             ch * k, " elements and db ", ch,
                                                             ", got ", dw.shape().str(), " and ",
                                                             db.shape().str()));
  const T* px = x.data();
  const T* pdy = dy.data();
  if (dx.data() != nullptr) {
    const std::vector<T> wt = detail::taps_by_row(w.data(), ch, k);
    T* pdx = dx.data();
    parallel_for(steps, [&](index_t s) {
      for (index_t b = 0; b < batch; ++b) {
        T* ASRKIT_RESTRICT dr = pdx + (s * batch + b) * ch;
        std::fill(dr, dr + ch, T(0));
        // taps j whose output frame t = s + left - j lies inside [0, T_out)
        const index_t j0 = std::max<index_t>(0, s + p.left - out + 1), j1 = std::min<index_t>(k, s + p.left + 1);
        for (index_t j = j0; j < j1; ++j) {
          const T* ASRKIT_RESTRICT gr = pdy + ((s + p.left - j) * batch + b) * ch;
          const T* ASRKIT_RESTRICT wr = wt.data() + j * ch;
          for (index_t c = 0; c < ch; ++c) dr[c] += wr[c] * gr[c];
        }
      }
    });
  }
  const index_t blocks = (ch + detail::kDepthwiseChannelBlock - 1) / detail::kDepthwiseChannelBlock;
  T* pdw = dw.data();
  T* pdb = db.data();
  parallel_for(blocks, [&](index_t blk) {
    const index_t c0 = blk * detail::kDepthwiseChannelBlock;
    const index_t n = std::min(detail::kDepthwiseChannelBlock, ch - c0);
    std::vector<T> acc(static_cast<std::size_t>((k + 1) * n), T(0));  // rows 0..k-1: dw, row k: db
    for (index_t t = 0; t < out; ++t)
      for (index_t b = 0; b < batch; ++b) {
        const T* ASRKIT_RESTRICT gr = pdy + (t * batch + b) * ch + c0;
        T* ASRKIT_RESTRICT ab = acc.data() + k * n;
        for (index_t c = 0; c < n; ++c) ab[c] += gr[c];
        const index_t j0 = std::max<index_t>(0, p.left - t), j1 = std::min<index_t>(k, steps + p.left - t);
        for (index_t j = j0; j < j1; ++j) {
          const T* ASRKIT_RESTRICT xr = px + ((t - p.left + j) * batch + b) * ch + c0;
          T* ASRKIT_RESTRICT aj = acc.data() + j * n;
          for (index_t c = 0; c < n; ++c) aj[c] += gr[c] * xr[c];
        }
      }
    for (index_t c = 0; c < n; ++c) {
      for (index_t j = 0; j < k; ++j) pdw[(c0 + c) * k + j] += acc[static_cast<std::size_t>(j * n + c)];
      if (pdb) pdb[c0 + c] += acc[static_cast<std::size_t>(k * n + c)];
    }
  });
}

}  // namespace ops
}  // namespace asrkit
