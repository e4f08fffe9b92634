// asrkit/nn/row_conv.hpp - row convolution (lookahead): a per-feature convolution over the next
// τ frames for unidirectional models (Deep Speech 2, Amodei et al. 2016; SPECS §3.9).
//
//   asrkit::Rng rng(1);
//   asrkit::RowConvolution<float> look(1024, 20, rng);   // d = 1024 features, τ = 20 future frames
//   auto y  = look.forward_train(x, lengths);            // x [T, B, 1024] + lengths [B] -> [T, B, 1024]
//   auto dx = look.backward(dy);                         // dL/dx; adds dL/dW to weight().grad
//
//   asrkit::RowConvolutionStream<float> s(look, 1);      // streaming, one utterance
//   auto a = s.push(chunk);     // [Tc, 1, d] in -> every frame whose τ future frames have arrived
//   auto b = s.finish();        // the last τ frames, with zeros for the missing future
//
// r[t, b, i] = Σ_{j=0..τ} W[i, j] · x[t + j, b, i], where frames t + j >= lengths[b] count as zero:
// each item is right-padded by τ zeros at its own end, not at T. Padded outputs (t >= lengths[b])
// are 0 and padded inputs are never read, so padding never changes a result.
// The weight is "weight" [d, 1, τ + 1], the layout of torch.nn.Conv1d(d, d, τ + 1, groups = d,
// bias = False) (deepspeech.pytorch's Lookahead with context τ + 1), so the layer equals that
// Conv1d applied to [B, d, T] right-padded by τ, and weights load from PyTorch by name.
//
//   forward    y[t] = Σ_j W[:, j] ⊙ x[t + j]          for t < len (terms with t + j >= len dropped)
//   backward   dx[s] = Σ_j W[:, j] ⊙ dy[s − j]        for s < len (terms with s − j < 0 dropped)
//              dW[:, j] += Σ_{b, t < len − j} dy[t] ⊙ x[t + j]
// forward and dx are the same correlation run forwards and backwards in time
// (detail::rowconv::correlate); the streaming class runs it on a buffer of pending frames, so
// chunked output is bit-identical to the full forward.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asrkit/core/config.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/parallel_work.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/detail/vector_rows.hpp>

namespace asrkit {
namespace detail {
namespace rowconv {

/// Channels per task: a block of (τ + 1) taps x 64 floats (21 KiB at τ = 80) stays in L1/L2.
inline constexpr index_t kChannelBlock = 64;

inline index_t channel_blocks(index_t features) { return (features + kChannelBlock - 1) / kChannelBlock; }

template <class T>
void fma_row(T* ASRKIT_RESTRICT acc, const T* ASRKIT_RESTRICT a, const T* ASRKIT_RESTRICT b, index_t n) {
  for (index_t c = 0; c < n; ++c) acc[c] += a[c] * b[c];
}

/// Rows [0, n) of width `width`, `stride` apart, copied into `out` as a contiguous [n, width].
template <class T>
void pack_rows(const T* src, index_t stride, index_t n, index_t width, std::vector<T>& out) {
  out.resize(static_cast<std::size_t>(n * width));
  for (index_t r = 0; r < n; ++r) std::copy(src + r * stride, src + r * stride + width, out.data() + r * width);
}

/// The weight [d, 1, taps] as the kernels read it: per channel block c0 (width w), its taps'
/// rows contiguous, [taps, w] at c0·taps. Taps are d apart in a tap-major [taps, d] matrix, a
/// stride (4 KiB for d = 1024) that aliases in L1: packed, the τ = 80 forward took 6.1 ms
/// against 8.6 on a Zen 5. Packed once per call, or once per stream.
template <class T>
std::vector<T> packed_weights(const Tensor<T>& weight, index_t features, index_t taps) {
  std::vector<T> w(static_cast<std::size_t>(taps * features));
  for (index_t c0 = 0; c0 < features; c0 += kChannelBlock) {
    const index_t width = std::min(kChannelBlock, features - c0);
    for (index_t c = 0; c < width; ++c)
      for (index_t j = 0; j < taps; ++j)
        w[static_cast<std::size_t>(c0 * taps + j * width + c)] = weight.data()[(c0 + c) * taps + j];
  }
  return w;
}

#if defined(ASRKIT_VECTOR_ROWS)
/// The frame-block kernel's lane type: the widest vector (the kernel is compute-bound).
template <class T>
using Lanes = ops::detail::RowVec<T, ops::detail::kComputeVecBytes>;
#else
/// Without GCC vectors: 16 bytes of lanes in plain loops, for the compiler to vectorise.
template <class T>
struct Lanes {
  static constexpr index_t N = 16 / static_cast<index_t>(sizeof(T));
  T v[N] = {};
  friend void multiply_add(Lanes& acc, const Lanes& a, const Lanes& b) {
    for (index_t i = 0; i < N; ++i) acc.v[i] += a.v[i] * b.v[i];  // as fma_row writes it
  }
};
#endif

/// acc += a ⊙ b on GCC vectors (or T), written as fma_row writes it.
template <class V>
void multiply_add(V& acc, const V& a, const V& b) {
  acc += a * b;
}

/// Frames (or taps) processed together: kFrameBlock accumulators and a window of as many input
/// rows per vector, 2·kFrameBlock + 1 registers (8 keep AVX-512's two FMA pipes busy through
/// their latency; 6 fit AVX2's 16 registers).
inline constexpr index_t kFrameBlock = ops::detail::kComputeVecBytes >= 64 ? 8 : 6;

/// acc[k] = Σ_{s < steps} a[s·ld_a] ⊙ rows[(Dir·s + k)·W] for k < kFrameBlock, in vectors V at
/// one column of packed rows W apart, s in order (steps >= 1). Consecutive steps read kFrameBlock −
/// 1 of the same rows, so the rows stay in registers as a window that slides one row per step: a
/// step loads one vector of a and one row for kFrameBlock multiply-adds.
template <int Dir, class V, class T>
void window_sums(const T* a, index_t ld_a, const T* rows, index_t steps, V (&out)[kFrameBlock]) {
  constexpr index_t K = kFrameBlock, W = kChannelBlock;
  V acc[K], window[K];  // local, so they stay in registers; window[k]: rows[(Dir·s + k)·W] at step s
  for (index_t k = 0; k < K; ++k) {
    acc[k] = V{};
    window[k] = ops::detail::load_as<V>(rows + k * W);
  }
  for (index_t s = 0;;) {
    const V as = ops::detail::load_as<V>(a + s * ld_a);
    for (index_t k = 0; k < K; ++k) multiply_add(acc[k], as, window[k]);
    if (++s == steps) break;
    if constexpr (Dir > 0) {
      for (index_t k = 0; k + 1 < K; ++k) window[k] = window[k + 1];
      window[K - 1] = ops::detail::load_as<V>(rows + (s + K - 1) * W);
    } else {
      for (index_t k = K - 1; k > 0; --k) window[k] = window[k - 1];
      window[0] = ops::detail::load_as<V>(rows - s * W);
    }
  }
  std::copy(acc, acc + K, out);
}

/// y[t + k] = Σ_{j < taps} w[j] ⊙ xp[t + k + Dir·j] for k < kFrameBlock, a full channel block
/// (xp packed [frames, kChannelBlock], w [taps, kChannelBlock]; every tap inside): window_sums
/// over the taps. Taps are summed in order, as in the one-frame loop of correlate, so both give
/// identical bits.
template <int Dir, class T>
void correlate_frame_block(const T* xp, const T* w, index_t taps, index_t t, T* y, index_t y_stride) {
  using V = Lanes<T>;
  constexpr index_t L = sizeof(V) / sizeof(T);
  static_assert(kChannelBlock % L == 0, "a channel block is whole vectors");
  for (index_t c = 0; c < kChannelBlock; c += L) {
    V acc[kFrameBlock];
    window_sums<Dir>(w + c, kChannelBlock, xp + t * kChannelBlock + c, taps, acc);
    for (index_t k = 0; k < kFrameBlock; ++k) std::memcpy(y + (t + k) * y_stride + c, &acc[k], sizeof(V));
  }
}

/// For every item b and frame t < n_out[b]:  y[t, b] = Σ_{j < taps} w[j] ⊙ x[t + dir·j, b], where
/// frames outside [0, n_src[b]) are zero (dir = +1: lookahead; dir = −1: its transpose).
/// x and y are [T, B, d]; w is packed_weights; rows t >= n_out[b] of y are not written.
/// Tasks are (item, channel block) pairs, each summing its taps in order j = 0, 1, ...: the result
/// does not depend on the thread count.
template <class T>
void correlate(const T* x, T* y, index_t batch, index_t features, const std::vector<T>& w,
               index_t taps, int dir, const std::vector<index_t>& n_src,
               const std::vector<index_t>& n_out) {
  const index_t blocks = channel_blocks(features), stride = batch * features;
  index_t work = 0;  // multiply-adds
  for (index_t b = 0; b < batch; ++b) work += n_out[static_cast<std::size_t>(b)] * taps * features;
  parallel_for_work(batch * blocks, work, [&](index_t task) {
    const index_t b = task / blocks, c0 = (task % blocks) * kChannelBlock;
    const index_t width = std::min(kChannelBlock, features - c0);
    const index_t src = n_src[static_cast<std::size_t>(b)], out = n_out[static_cast<std::size_t>(b)];
    // Frames are B·d apart (32 KiB for B = 8, d = 1024), a stride that aliases in the caches:
    // read the item's block once into contiguous rows.
    std::vector<T> xp;
    pack_rows(x + b * features + c0, stride, src, width, xp);
    const T* wb = w.data() + c0 * taps;
    T* yb = y + b * features + c0;
    T acc[kChannelBlock];
    for (index_t t = 0; t < out;) {
      // tap j reads frame t + dir·j: it must lie in [0, src) for every frame of a block
      const index_t last = t + kFrameBlock - 1;
      const bool inside = dir > 0 ? last + taps - 1 < src : t - (taps - 1) >= 0 && last < src;
      if (width == kChannelBlock && last < out && inside) {
        if (dir > 0) correlate_frame_block<+1>(xp.data(), wb, taps, t, yb, stride);
        else correlate_frame_block<-1>(xp.data(), wb, taps, t, yb, stride);
        t += kFrameBlock;
        continue;
      }
      std::fill(acc, acc + width, T(0));
      const index_t reach = dir > 0 ? src - t : t + 1;  // taps before the item's end / frame 0
      for (index_t j = 0; j < std::min(taps, reach); ++j)
        fma_row(acc, wb + j * width, xp.data() + (t + dir * j) * width, width);
      std::copy(acc, acc + width, yb + t * stride);
      ++t;
    }
  });
}

/// g[j0 + k] += Σ_{t + j0 + k < len} dyp[t] ⊙ xp[t + j0 + k] for the taps j0 .. j0 + kFrameBlock − 1
/// of a full channel block (dyp, xp packed [len, kChannelBlock]; g [taps, kChannelBlock]):
/// window_sums over the frames every tap of the block reaches, then each tap's last frames.
template <class T>
void tap_block_grad(const T* dyp, const T* xp, index_t len, index_t j0, T* g) {
  using V = Lanes<T>;
  constexpr index_t W = kChannelBlock, L = sizeof(V) / sizeof(T);
  T acc[kFrameBlock][W] = {};
  const index_t common = len - j0 - (kFrameBlock - 1);  // t < common: every tap of the block inside
  if (common > 0) {
    for (index_t c = 0; c < W; c += L) {
      V sums[kFrameBlock];
      window_sums<+1>(dyp + c, W, xp + j0 * W + c, common, sums);
      for (index_t k = 0; k < kFrameBlock; ++k) std::memcpy(acc[k] + c, &sums[k], sizeof(V));
    }
  }
  for (index_t k = 0; k < kFrameBlock; ++k) {
    for (index_t t = std::max<index_t>(common, 0); t + j0 + k < len; ++t)
      fma_row(acc[k], dyp + t * W, xp + (t + j0 + k) * W, W);
    for (index_t c = 0; c < W; ++c) g[(j0 + k) * W + c] += acc[k][c];
  }
}

/// dW[i, 0, j] += Σ_b Σ_{t + j < len[b]} dy[t, b, i] · x[t + j, b, i]. Tasks are channel blocks;
/// items and frames are summed in order inside a task (thread-count independent).
template <class T>
void accumulate_weight_grad(const T* dy, const T* x, index_t batch, index_t features, index_t taps,
                            const std::vector<index_t>& lengths, T* grad) {
  const index_t stride = batch * features;
  index_t work = 0;  // multiply-adds
  for (index_t b = 0; b < batch; ++b) work += lengths[static_cast<std::size_t>(b)] * taps * features;
  parallel_for_work(channel_blocks(features), work, [&](index_t block) {
    const index_t c0 = block * kChannelBlock, width = std::min(kChannelBlock, features - c0);
    std::vector<T> g(static_cast<std::size_t>(taps * kChannelBlock), T(0));  // [taps, block]
    std::vector<T> dyp, xp;  // the item's block, packed [len, width]
    T acc[kChannelBlock];
    for (index_t b = 0; b < batch; ++b) {
      const index_t len = lengths[static_cast<std::size_t>(b)];
      // Frames are B·d apart (32 KiB for B = 8, d = 1024): such strides alias in the caches, so
      // copy the block once and run the τ + 1 passes over contiguous rows.
      pack_rows(dy + b * features + c0, stride, len, width, dyp);
      pack_rows(x + b * features + c0, stride, len, width, xp);
      // taps in blocks (each dy row loaded once for several taps), sums in local accumulators
      index_t j = 0;
      if (width == kChannelBlock)
        for (; j + kFrameBlock <= std::min(taps, len); j += kFrameBlock)
          tap_block_grad(dyp.data(), xp.data(), len, j, g.data());
      for (; j < std::min(taps, len); ++j) {
        std::fill(acc, acc + width, T(0));
        for (index_t t = 0; t + j < len; ++t) fma_row(acc, dyp.data() + t * width, xp.data() + (t + j) * width, width);
        for (index_t c = 0; c < width; ++c) g[static_cast<std::size_t>(j * kChannelBlock + c)] += acc[c];
      }
    }
    for (index_t c = 0; c < width; ++c)
      for (index_t j = 0; j < taps; ++j) grad[(c0 + c) * taps + j] += g[static_cast<std::size_t>(j * kChannelBlock + c)];
  });
}

}  // namespace rowconv
}  // namespace detail

/// Row convolution over time-major [T, B, d] batches with per-item lengths (SPECS §3.9).
template <class T, class Device = Cpu>
class RowConvolution {
  static_assert(std::is_floating_point_v<T>, "RowConvolution<T>: T must be float or double");
  static_assert(std::is_same_v<Device, Cpu>, "RowConvolution: only the Cpu device is implemented");

 public:
  /// `features` = d >= 1, `future_context` = τ >= 0 (τ = 0: a per-feature scale). Weight drawn as
  /// PyTorch's Conv1d default, U(±1/sqrt(τ + 1)), from `rng`.
  RowConvolution(index_t features, index_t future_context, Rng& rng)
      : features_(features), taps_(future_context + 1) {
    if (features < 1 || future_context < 0)
      throw ValueError("rowconv.1", detail::str("RowConvolution: features must be >= 1 and "
                                                "future_context >= 0, got ", features, " and ",
                                                future_context));
    weight_ = Parameter<T>(Shape{features_, 1, taps_});
    reset_parameters(rng);
  }
  /// PyTorch's default init drawn from init::global_rng().
  RowConvolution(index_t features, index_t future_context)
      : RowConvolution(features, future_context, init::global_rng()) {}

  /// Redraws the weight with PyTorch's Conv1d default (kaiming_uniform, a = sqrt(5)).
  void reset_parameters(Rng& rng) { init::torch_default(weight_, static_cast<Parameter<T>*>(nullptr), rng); }

  /// Inference: x [T, B, d], lengths [B] (int32, each in [0, T]) -> [T, B, d], 0 on padding.
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths) const {
    return run(x, checked_lengths(x, lengths));
  }
  /// Inference with every frame valid (lengths = T).
  Tensor<T> forward(TensorView<const T> x) const { return run(x, full_lengths(x)); }

  /// Training: as forward, and keeps a copy of x and the lengths for backward.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths) {
    return train(x, checked_lengths(x, lengths));
  }
  Tensor<T> forward_train(TensorView<const T> x) { return train(x, full_lengths(x)); }

  /// dL/dx [T, B, d] for dy (the forward output's shape; its padded frames are ignored), 0 on
  /// padded frames; adds dL/dW to weight().grad.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("rowconv.5", detail::str(name(), "::backward: no cached input; call "
                                                "forward_train first"));
    if (dy.shape() != x_.shape())
      throw ShapeError("rowconv.6", detail::str(name(), "::backward: argument dy: expected shape ",
                                                x_.shape().str(), " (the forward output), got ",
                                                dy.shape().str()));
    const index_t batch = x_.dim(1);
    const auto w = detail::rowconv::packed_weights(weight_.value, features_, taps_);
    Tensor<T> dx = padded_like(x_.shape(), lengths_);
    detail::rowconv::correlate(dy.data(), dx.data(), batch, features_, w, taps_, -1, lengths_, lengths_);
    detail::rowconv::accumulate_weight_grad(dy.data(), x_.data(), batch, features_, taps_, lengths_,
                                            weight_.grad.data());
    return dx;
  }

  /// Drops the cached input (frees its memory).
  void clear_cache() {
    x_ = Tensor<T>();
    lengths_.clear();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "weight"), weight_);
  }
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  index_t features() const noexcept { return features_; }
  index_t future_context() const noexcept { return taps_ - 1; }  ///< τ
  Parameter<T>& weight() noexcept { return weight_; }             ///< [d, 1, τ + 1]
  const Parameter<T>& weight() const noexcept { return weight_; }

 private:
  std::string name() const { return detail::str("RowConvolution(", features_, ", tau ", taps_ - 1, ")"); }

  void check_input(const Shape& s) const {
    if (s.rank() != 3 || s[2] != features_)
      throw ShapeError("rowconv.2", detail::str(name(), ": argument x: expected shape [T, B, ",
                                                features_, "], got ", s.str()));
  }

  std::vector<index_t> full_lengths(TensorView<const T> x) const {
    check_input(x.shape());
    return std::vector<index_t>(static_cast<std::size_t>(x.dim(1)), x.dim(0));
  }

  std::vector<index_t> checked_lengths(TensorView<const T> x, TensorView<const std::int32_t> lengths) const {
    check_input(x.shape());
    const auto len = detail::checked_lengths(lengths, x.dim(0), x.dim(1), name(), {"rowconv.3", "rowconv.4"});
    return std::vector<index_t>(len.begin(), len.end());
  }

  Tensor<T> run(TensorView<const T> x, const std::vector<index_t>& lengths) const {
    Tensor<T> y = padded_like(x.shape(), lengths);
    detail::rowconv::correlate(x.data(), y.data(), x.dim(1), features_,
                               detail::rowconv::packed_weights(weight_.value, features_, taps_),
                               taps_, +1, lengths, lengths);
    return y;
  }

  // An uninitialised [T, B, d] tensor whose padded frames (t >= lengths[b]) are 0; correlate
  // writes the others.
  static Tensor<T> padded_like(const Shape& s, const std::vector<index_t>& lengths) {
    Tensor<T> y(s, uninitialized);
    const index_t batch = s[1], d = s[2];
    for (index_t b = 0; b < batch; ++b)
      for (index_t t = lengths[static_cast<std::size_t>(b)]; t < s[0]; ++t)
        std::fill_n(y.data() + (t * batch + b) * d, d, T(0));
    return y;
  }

  Tensor<T> train(TensorView<const T> x, std::vector<index_t> lengths) {
    x_ = Tensor<T>(x);
    lengths_ = std::move(lengths);
    cached_ = true;
    return run(x_.view(), lengths_);
  }

  index_t features_, taps_;
  Parameter<T> weight_;
  Tensor<T> x_;
  std::vector<index_t> lengths_;
  bool cached_ = false;
};

/// Streaming row convolution for `batch` items that advance together (one stream per utterance
/// when they start or end at different times). push(chunk) returns frame t as soon as frame t + τ
/// has arrived; finish() returns the last frames with zeros for the missing future and empties the
/// stream for the next utterance. The concatenated outputs equal RowConvolution::forward on the
/// whole sequence bit for bit. The weights are copied when the stream is made. Latency: τ frames.
template <class T>
class RowConvolutionStream {
 public:
  template <class Device>
  RowConvolutionStream(const RowConvolution<T, Device>& layer, index_t batch)
      : features_(layer.features()),
        taps_(layer.future_context() + 1),
        batch_(batch),
        w_(detail::rowconv::packed_weights(layer.weight().value, features_, taps_)),
        pending_(Shape{0, batch, features_}) {
    if (batch < 1)
      throw ValueError("rowconv.7", detail::str("RowConvolutionStream: batch must be >= 1, got ", batch));
  }

  /// chunk [Tc, B, d] (Tc >= 0) -> [E, B, d], the next E frames that now have τ future frames.
  Tensor<T> push(TensorView<const T> chunk) {
    if (chunk.rank() != 3 || chunk.dim(1) != batch_ || chunk.dim(2) != features_)
      throw ShapeError("rowconv.8", detail::str("RowConvolutionStream: argument chunk: expected shape "
                                                "[Tc, ", batch_, ", ", features_, "], got ",
                                                chunk.shape().str()));
    const index_t have = pending_.dim(0) + chunk.dim(0);
    Tensor<T> frames(Shape{have, batch_, features_}, uninitialized);
    std::copy(pending_.data(), pending_.data() + pending_.numel(), frames.data());
    std::copy(chunk.data(), chunk.data() + chunk.numel(), frames.data() + pending_.numel());
    return emit(frames, std::max<index_t>(0, have - (taps_ - 1)));
  }

  /// The frames still pending (at most τ), computed with zeros past the end; resets the stream.
  Tensor<T> finish() {
    Tensor<T> frames = std::move(pending_);
    return emit(frames, frames.dim(0));
  }

  /// Frames received but not yet returned (at most τ after each push).
  index_t pending() const noexcept { return pending_.dim(0); }
  index_t batch() const noexcept { return batch_; }

 private:
  // Outputs for the first `count` of `frames`; the rest become the pending frames.
  Tensor<T> emit(const Tensor<T>& frames, index_t count) {
    const index_t have = frames.dim(0), row = batch_ * features_;
    Tensor<T> out(Shape{count, batch_, features_}, uninitialized);  // correlate writes every row
    detail::rowconv::correlate(frames.data(), out.data(), batch_, features_, w_, taps_, +1,
                               std::vector<index_t>(static_cast<std::size_t>(batch_), have),
                               std::vector<index_t>(static_cast<std::size_t>(batch_), count));
    Tensor<T> rest(Shape{have - count, batch_, features_}, uninitialized);
    std::copy(frames.data() + count * row, frames.data() + have * row, rest.data());
    pending_ = std::move(rest);
    return out;
  }

  index_t features_, taps_, batch_;
  std::vector<T> w_;   // packed_weights
  Tensor<T> pending_;  // [P, B, d], P <= τ
};

}  // namespace asrkit
