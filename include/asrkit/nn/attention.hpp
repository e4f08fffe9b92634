// asrkit/nn/attention.hpp - multi-head self-attention over [T, B, D] sequences: the standard
// Transformer form (torch.nn.MultiheadAttention) and Transformer-XL relative-position form
// (Conformer / ESPnet RelPositionMultiHeadedAttention, "latest" rel_pos_type).
//
//   asrkit::Rng rng(1);
//   asrkit::MultiHeadAttention<float> mha(256, 4, rng);            // D = 256, 4 heads of 64
//   auto y  = mha.forward(x, lengths);                             // x [T, B, 256], lengths [B]
//   auto yc = mha.forward(x, lengths, asrkit::AttentionMask::chunked(16, 4));   // streaming
//   auto yt = mha.forward_train(x, lengths);                       // caches for backward
//   auto dx = mha.backward(dy);                                    // adds to every Parameter::grad
//
//   asrkit::RelPositionalEncoding<float> pe(256);                  // nn/positional_encoding.hpp
//   auto [xs, pos] = pe.forward(x);                                // x·sqrt(D), pos [2T-1, 256]
//   asrkit::RelPositionMultiHeadAttention<float> rel(256, 4, rng);
//   auto yr = rel.forward(xs, pos, lengths);
//
// Equations (Vaswani et al. 2017 eq. 1; Dai et al. 2019 sec. 3.3; SPECS §10.2 for the BN form),
// per batch item b and head h with d_k = D / heads, queries i and keys j:
//   MultiHeadAttention:     S_ij = q_i·k_j / sqrt(d_k)
//   RelPosition...:         S_ij = ((q_i + u)·k_j + (q_i + v)·p_{i−j}) / sqrt(d_k),
//                           p_d = row T−1−d of linear_pos(pos_emb), d = i − j the distance
//   A_i = softmax_j(S_ij over the allowed keys j),   ctx_i = Σ_j A_ij v_j,   y = out(concat_h ctx)
// Allowed keys: j < lengths[b] (key padding) and the AttentionMask range of i (causal: j <= i;
// chunk: j in i's chunk or one of `left_chunks` earlier chunks, WeNet's subsequent_chunk_mask).
// Masked keys get exactly zero weight; padded frames (t >= lengths[b]) give y = 0 and dx = 0.
// With projection_norm = batch_norm (FusionFormer, SPECS §10.2) a masked SequenceBatchNorm
// follows linear_q, linear_k, linear_v and the output projection.
//
// Data flow and cache (forward_train): x → q, k, v [T, B, D] (three GEMMs) → optional BN → per
// (b, h) in parallel, in blocks of query rows: scores by GEMM into the cached probabilities
// [B, H, L, L], fused masked softmax, dropout, ctx by GEMM → output projection → optional BN →
// zero padded frames. backward recomputes the dropout masks from per-(b, h) seeds.
// Results are identical for any thread count (each (b, h) is one task; no cross-task sums).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/reduce.hpp>

namespace asrkit {

/// Which keys a query may see besides key padding.
enum class MaskKind {
  none,    ///< every valid key (full context)
  causal,  ///< keys j <= i
  chunk,   ///< keys of the query's chunk and of up to `left_chunks` previous chunks (streaming)
};

/// A structured self-attention mask (combined with key padding from lengths).
struct AttentionMask {
  MaskKind kind = MaskKind::none;
  index_t chunk_size = 0;    ///< chunk: frames per chunk (>= 1)
  index_t left_chunks = -1;  ///< chunk: previous chunks visible; -1 = all previous chunks

  static AttentionMask full() { return {}; }
  static AttentionMask causal() { return {MaskKind::causal, 0, -1}; }
  static AttentionMask chunked(index_t chunk_size, index_t left_chunks = -1) {
    return {MaskKind::chunk, chunk_size, left_chunks};
  }
};

/// The keys [begin, end) query t may attend to in a sequence of `length` valid frames. Both ends
/// are non-decreasing in t, and t itself is always inside (t < length), so no row is empty.
struct KeyRange {
  index_t begin, end;
};
inline KeyRange key_range(const AttentionMask& m, index_t t, index_t length) {
  switch (m.kind) {
    case MaskKind::causal:
      return {0, std::min(t + 1, length)};
    case MaskKind::chunk: {
      const index_t c = t / m.chunk_size;
      const index_t begin =
          m.left_chunks < 0 ? 0 : std::max<index_t>((c - m.left_chunks) * m.chunk_size, 0);
      return {begin, std::min((c + 1) * m.chunk_size, length)};
    }
    case MaskKind::none:
      break;
  }
  return {0, length};
}

/// Normalisation after each projection (SPECS §10.2).
enum class ProjectionNorm { none, batch_norm };

/// Options of MultiHeadAttention and RelPositionMultiHeadAttention.
struct MultiHeadAttentionOptions {
  bool bias = true;      ///< biases of the q/k/v and output projections (linear_pos never has one)
  double dropout = 0.0;  ///< dropout on the attention weights A (training only), in [0, 1)
  ProjectionNorm projection_norm = ProjectionNorm::none;
  BatchNormOptions norm = {};  ///< used when projection_norm == batch_norm
};

namespace detail {
namespace attention {

/// Query rows per block: a block's scores [64, L] stay in L2 while they are softmaxed and used.
inline constexpr index_t kRowBlock = 64;

inline void check_options(index_t d_model, index_t heads, const MultiHeadAttentionOptions& o,
                          const char* layer) {
  if (d_model < 1 || heads < 1 || d_model % heads != 0)
    throw ValueError("attention.1", detail::str(layer,
                                                ": d_model must be a positive multiple of "
                                                "heads, got d_model=",
                                                d_model, " heads=", heads));
  if (!(o.dropout >= 0.0 && o.dropout < 1.0))
    throw ValueError("attention.1",
                     detail::str(layer, ": dropout must be in [0, 1), got ", o.dropout));
}

inline void check_mask(const AttentionMask& m, const char* layer) {
  if (m.kind == MaskKind::chunk && (m.chunk_size < 1 || m.left_chunks < -1))
    throw ValueError("attention.5", detail::str(layer,
                                                ": chunk mask needs chunk_size >= 1 and "
                                                "left_chunks >= -1, got chunk_size=",
                                                m.chunk_size, " left_chunks=", m.left_chunks));
}

inline void check_input(const Shape& s, index_t d_model, const char* layer) {
  if (s.rank() != 3 || s[2] != d_model)
    throw ShapeError("attention.2", detail::str(layer, ": argument x: expected shape [T, B, ",
                                                d_model, "], got ", s.str()));
}

/// Validated lengths (attention.3 / attention.4), all T when the view is empty.
inline std::vector<std::int32_t> checked_lengths(TensorView<const std::int32_t> lengths,
                                                 index_t steps, index_t batch, const char* layer) {
  return detail::checked_lengths(lengths, steps, batch, layer, {"attention.3", "attention.4"});
}

/// Per-thread scratch (reused across calls; OpenMP keeps its threads).
template <class T>
T* scratch(std::size_t n, int slot) {
  thread_local std::vector<T> buffers[2];
  auto& v = buffers[slot];
  if (v.size() < n) v.resize(n);
  return v.data();
}

/// Pointers into the [T, B, D] projections of one batch; see AttentionCore for the layout.
template <class T>
struct Problem {
  const T *q, *k, *v;
  const T* q_pos = nullptr;  // relative form: (q + v_bias) [T, B, D]
  const T* pos = nullptr;    // relative form: linear_pos(pos_emb) [2T - 1, D]
  index_t steps, batch, heads, d_k;
  const std::int32_t* lengths;
  AttentionMask mask;
  T scale;
  double dropout;
  index_t ld() const { return batch * heads * d_k; }  // row stride of [T, B, D]
  index_t d_model() const { return heads * d_k; }
  // Offset of (t, b, head h) in a [T, B, D] tensor.
  index_t at(index_t t, index_t b, index_t h) const {
    return (t * batch + b) * d_model() + h * d_k;
  }
};

/// The block of query rows [i0, i0 + rows) and its key columns [c0, c1) (the union of the rows'
/// key ranges: both ends are monotone in the row).
struct Block {
  index_t i0, rows, c0, c1;
  index_t width() const { return c1 - c0; }
};
inline Block block_at(const AttentionMask& m, index_t i0, index_t length) {
  const index_t rows = std::min(kRowBlock, length - i0);
  return {i0, rows, key_range(m, i0, length).begin, key_range(m, i0 + rows - 1, length).end};
}

/// Adds the relative-position term to a block of scores: S[ii, jj] += scale (q_pos_i · p_{i−j}).
/// R = scale · Qpos_block · P[rb : rb + W + rows − 1]^T with rb = T−1 − (i0 + rows − 1) + c0 holds
/// every needed distance; row ii, column jj of S reads R[ii, rows − 1 − ii + jj] (ESPnet's
/// rel_shift).
template <class T>
void add_relative_scores(const Problem<T>& p, index_t b, index_t h, const Block& blk, T* s,
                         index_t lds, T* r) {
  const index_t wr = blk.width() + blk.rows - 1;
  const index_t rb = p.steps - 1 - (blk.i0 + blk.rows - 1) + blk.c0;
  ops::gemm(ops::Trans::no, ops::Trans::yes, blk.rows, wr, p.d_k, p.scale,
            p.q_pos + p.at(blk.i0, b, h), p.ld(), p.pos + rb * p.d_model() + h * p.d_k, p.d_model(),
            T(0), r, wr);
  for (index_t ii = 0; ii < blk.rows; ++ii) {
    const T* ASRKIT_RESTRICT src = r + ii * wr + (blk.rows - 1 - ii);
    T* ASRKIT_RESTRICT dst = s + ii * lds;
    for (index_t jj = 0; jj < blk.width(); ++jj) dst[jj] += src[jj];
  }
}

/// Softmax of row `s` over the keys [lo, hi) (block-relative), zero elsewhere in [0, width).
template <class T>
void masked_softmax_row(T* s, index_t lo, index_t hi, index_t width) {
  std::fill(s, s + lo, T(0));
  std::fill(s + hi, s + width, T(0));
  Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>> a(s + lo, hi - lo);
  const T mx = a.maxCoeff();
  a = (a - mx).exp();
  a *= T(1) / a.sum();
}

/// Inverted dropout on the allowed entries of a probability block, in row order: one uniform per
/// allowed entry from `rng` (forward and backward draw the same sequence). Writes the kept
/// scale (1/(1−p)) or 0 into `keep` (same layout as `s`, width W).
template <class T>
void draw_dropout(Rng& rng, double p, const AttentionMask& m, index_t length, const Block& blk,
                  T* keep) {
  const double q = 1.0 - p;
  const T scale = static_cast<T>(1.0 / q);
  for (index_t ii = 0; ii < blk.rows; ++ii) {
    const KeyRange kr = key_range(m, blk.i0 + ii, length);
    T* row = keep + ii * blk.width();
    std::fill(row, row + blk.width(), T(0));
    for (index_t j = kr.begin; j < kr.end; ++j)
      row[j - blk.c0] = rng.uniform<double>() < q ? scale : T(0);
  }
}

/// Forward of one (b, h): ctx rows of batch item b, head h. `probs` (training) receives the
/// softmax A as [L, L] (ld L, zeros outside the allowed keys); inference uses scratch.
template <class T>
void forward_one(const Problem<T>& p, index_t b, index_t h, T* ctx, T* probs, std::uint64_t seed) {
  const index_t length = p.lengths[b];
  if (length == 0) return;
  Rng rng(seed);
  for (index_t i0 = 0; i0 < length; i0 += kRowBlock) {
    const Block blk = block_at(p.mask, i0, length);
    const index_t w = blk.width();
    T* s;
    index_t lds;
    if (probs) {  // scores straight into the cache; columns outside [c0, c1) are zero
      s = probs + i0 * length + blk.c0;
      lds = length;
      for (index_t ii = 0; ii < blk.rows; ++ii) {
        T* row = probs + (i0 + ii) * length;
        std::fill(row, row + blk.c0, T(0));
        std::fill(row + blk.c1, row + length, T(0));
      }
    } else {
      s = scratch<T>(static_cast<std::size_t>(blk.rows * w), 0);
      lds = w;
    }
    ops::gemm(ops::Trans::no, ops::Trans::yes, blk.rows, w, p.d_k, p.scale, p.q + p.at(i0, b, h),
              p.ld(), p.k + p.at(blk.c0, b, h), p.ld(), T(0), s, lds);
    if (p.pos)
      add_relative_scores(p, b, h, blk, s, lds,
                          scratch<T>(static_cast<std::size_t>(blk.rows * (w + blk.rows)), 1));
    for (index_t ii = 0; ii < blk.rows; ++ii) {
      const KeyRange kr = key_range(p.mask, i0 + ii, length);
      masked_softmax_row(s + ii * lds, kr.begin - blk.c0, kr.end - blk.c0, w);
    }
    const T* weights = s;
    index_t ldw = lds;
    if (p.dropout > 0 && probs) {  // A ⊙ mask / (1 − p) into scratch; the cache keeps A
      T* keep = scratch<T>(static_cast<std::size_t>(blk.rows * w), 0);
      draw_dropout(rng, p.dropout, p.mask, length, blk, keep);
      for (index_t ii = 0; ii < blk.rows; ++ii)
        for (index_t jj = 0; jj < w; ++jj) keep[ii * w + jj] *= s[ii * lds + jj];
      weights = keep;
      ldw = w;
    }
    ops::gemm(ops::Trans::no, ops::Trans::no, blk.rows, p.d_k, w, T(1), weights, ldw,
              p.v + p.at(blk.c0, b, h), p.ld(), T(0), ctx + p.at(i0, b, h), p.ld());
  }
}

/// Gradients of one (b, h) from dctx. dq, dk, dv, dq_pos are [T, B, D] (zero-initialised;
/// dk, dv accumulate over row blocks); dpos is this item's [2T−1, D] partial sum (head h columns).
template <class T>
void backward_one(const Problem<T>& p, index_t b, index_t h, const T* probs, std::uint64_t seed,
                  const T* dctx, T* dq, T* dk, T* dv, T* dq_pos, T* dpos) {
  const index_t length = p.lengths[b];
  if (length == 0) return;
  Rng rng(seed);
  for (index_t i0 = 0; i0 < length; i0 += kRowBlock) {
    const Block blk = block_at(p.mask, i0, length);
    const index_t w = blk.width();
    const T* a = probs + i0 * length + blk.c0;  // A block, ld = length
    const T* dout = dctx + p.at(i0, b, h);
    T* da = scratch<T>(static_cast<std::size_t>(blk.rows * w), 0);
    // dA_dropped = dctx V^T
    ops::gemm(ops::Trans::no, ops::Trans::yes, blk.rows, w, p.d_k, T(1), dout, p.ld(),
              p.v + p.at(blk.c0, b, h), p.ld(), T(0), da, w);
    if (p.dropout > 0) {
      T* keep = scratch<T>(static_cast<std::size_t>(blk.rows * w * 2), 1);
      T* dropped = keep + blk.rows * w;
      draw_dropout(rng, p.dropout, p.mask, length, blk, keep);
      for (index_t ii = 0; ii < blk.rows; ++ii)
        for (index_t jj = 0; jj < w; ++jj) {
          dropped[ii * w + jj] = a[ii * length + jj] * keep[ii * w + jj];
          da[ii * w + jj] *= keep[ii * w + jj];
        }
      // dV += (A ⊙ mask)^T dctx
      ops::gemm(ops::Trans::yes, ops::Trans::no, w, p.d_k, blk.rows, T(1), dropped, w, dout, p.ld(),
                T(1), dv + p.at(blk.c0, b, h), p.ld());
    } else {
      ops::gemm(ops::Trans::yes, ops::Trans::no, w, p.d_k, blk.rows, T(1), a, length, dout, p.ld(),
                T(1), dv + p.at(blk.c0, b, h), p.ld());
    }
    // Softmax backward over the allowed keys: dS = A ⊙ (dA − Σ_j dA_j A_j) (zero where A is).
    for (index_t ii = 0; ii < blk.rows; ++ii) {
      const T* ar = a + ii * length;
      T* dr = da + ii * w;
      T dot = 0;
      for (index_t jj = 0; jj < w; ++jj) dot += dr[jj] * ar[jj];
      for (index_t jj = 0; jj < w; ++jj) dr[jj] = ar[jj] * (dr[jj] - dot);
    }
    // S = scale (Q K^T [+ rel]): dQ = scale dS K, dK += scale dS^T Q.
    ops::gemm(ops::Trans::no, ops::Trans::no, blk.rows, p.d_k, w, p.scale, da, w,
              p.k + p.at(blk.c0, b, h), p.ld(), T(0), dq + p.at(i0, b, h), p.ld());
    ops::gemm(ops::Trans::yes, ops::Trans::no, w, p.d_k, blk.rows, p.scale, da, w,
              p.q + p.at(i0, b, h), p.ld(), T(1), dk + p.at(blk.c0, b, h), p.ld());
    if (p.pos) {  // undo rel_shift: dR[ii, rows − 1 − ii + jj] = dS[ii, jj]
      const index_t wr = w + blk.rows - 1;
      const index_t rb = p.steps - 1 - (i0 + blk.rows - 1) + blk.c0;
      T* dr = scratch<T>(static_cast<std::size_t>(blk.rows * wr), 1);
      std::fill(dr, dr + blk.rows * wr, T(0));
      for (index_t ii = 0; ii < blk.rows; ++ii)
        std::copy(da + ii * w, da + (ii + 1) * w, dr + ii * wr + (blk.rows - 1 - ii));
      ops::gemm(ops::Trans::no, ops::Trans::no, blk.rows, p.d_k, wr, p.scale, dr, wr,
                p.pos + rb * p.d_model() + h * p.d_k, p.d_model(), T(0), dq_pos + p.at(i0, b, h),
                p.ld());
      ops::gemm(ops::Trans::yes, ops::Trans::no, wr, p.d_k, blk.rows, p.scale, dr, wr,
                p.q_pos + p.at(i0, b, h), p.ld(), T(1), dpos + rb * p.d_model() + h * p.d_k,
                p.d_model());
    }
  }
}

/// Runs f(task) for every (b, h) task, task = b·heads + h: in parallel when the score work is
/// large enough to pay for a thread team (tiny problems, e.g. streaming chunks, stay on the
/// calling thread). Tasks are independent, so either way gives identical results.
inline constexpr double kParallelWork = 1 << 16;  // multiply-adds in the score products
template <class T, class F>
void for_each_task(const Problem<T>& p, F&& f) {
  double work = 0;
  for (index_t b = 0; b < p.batch; ++b)
    work += static_cast<double>(p.lengths[b]) * static_cast<double>(p.lengths[b]) *
            static_cast<double>(p.d_model());
  const index_t tasks = p.batch * p.heads;
  if (work < kParallelWork) {
    for (index_t t = 0; t < tasks; ++t) f(t);
  } else {
    parallel_for(tasks, f);
  }
}

/// Scaled dot-product attention over heads for both attention layers: the forward, the
/// training cache (projections, probabilities, dropout seeds) and the backward.
template <class T>
class AttentionCore {
 public:
  struct Gradients {
    Tensor<T> dq, dk, dv;  // [T, B, D]
    Tensor<T> dq_pos;      // relative form: [T, B, D]
    Tensor<T> dpos;        // relative form: [2T − 1, D]
  };

  AttentionCore(index_t heads, index_t d_k, double dropout, std::uint64_t seed)
      : heads_(heads), d_k_(d_k), dropout_(dropout), rng_(seed) {}

  /// ctx [T, B, D] (zero on padded frames). q_pos/pos: empty views unless relative.
  Tensor<T> forward(TensorView<const T> q, TensorView<const T> k, TensorView<const T> v,
                    TensorView<const T> q_pos, TensorView<const T> pos,
                    const std::vector<std::int32_t>& lengths, const AttentionMask& mask) const {
    const auto p =
        problem(q.data(), k.data(), v.data(), q_pos.data(), pos.data(), q.shape(), lengths, mask);
    Tensor<T> ctx(q.shape());
    for_each_task(p, [&](index_t task) {
      forward_one(p, task / p.heads, task % p.heads, ctx.data(), static_cast<T*>(nullptr), 0);
    });
    return ctx;
  }

  /// As forward, keeping the inputs (moved in) and the probabilities for backward.
  Tensor<T> forward_train(Tensor<T> q, Tensor<T> k, Tensor<T> v, Tensor<T> q_pos, Tensor<T> pos,
                          std::vector<std::int32_t> lengths, const AttentionMask& mask) {
    q_ = std::move(q), k_ = std::move(k), v_ = std::move(v), q_pos_ = std::move(q_pos),
    pos_ = std::move(pos);
    lengths_ = std::move(lengths);
    mask_ = mask;
    const auto p = cached_problem();
    const index_t tasks = p.batch * p.heads;
    offsets_.assign(static_cast<std::size_t>(tasks) + 1, 0);
    for (index_t t = 0; t < tasks; ++t) {
      const index_t len = lengths_[t / p.heads];
      offsets_[t + 1] = offsets_[t] + len * len;
    }
    if (probs_.numel() != offsets_.back())
      probs_ = Tensor<T>(Shape{offsets_.back()}, uninitialized);
    seeds_.resize(static_cast<std::size_t>(tasks));
    for (auto& s : seeds_) s = dropout_ > 0 ? rng_.next_u64() : 0;  // drawn in task order
    Tensor<T> ctx(q_.shape());
    for_each_task(p, [&](index_t task) {
      forward_one(p, task / p.heads, task % p.heads, ctx.data(), probs_.data() + offsets_[task],
                  seeds_[task]);
    });
    cached_ = true;
    return ctx;
  }

  Gradients backward(const T* dctx) const {
    const auto p = cached_problem();
    Gradients g;
    g.dq = Tensor<T>(q_.shape());
    g.dk = Tensor<T>(q_.shape());
    g.dv = Tensor<T>(q_.shape());
    Tensor<T> dpos_items;  // [B, 2T − 1, D]: one partial per item, summed in item order below
    if (p.pos) {
      g.dq_pos = Tensor<T>(q_.shape());
      dpos_items = Tensor<T>(Shape{p.batch, pos_.dim(0), p.d_model()});
    }
    for_each_task(p, [&](index_t task) {
      const index_t b = task / p.heads, h = task % p.heads;
      backward_one(p, b, h, probs_.data() + offsets_[task], seeds_[task], dctx, g.dq.data(),
                   g.dk.data(), g.dv.data(), p.pos ? g.dq_pos.data() : nullptr,
                   p.pos ? dpos_items[b].data() : nullptr);
    });
    if (p.pos) {
      g.dpos = Tensor<T>(pos_.shape());
      for (index_t b = 0; b < p.batch; ++b) g.dpos.flat() += dpos_items[b].flat();
    }
    return g;
  }

  bool cached() const noexcept { return cached_; }
  const std::vector<std::int32_t>& lengths() const noexcept { return lengths_; }
  const Shape& input_shape() const noexcept { return q_.shape(); }
  void clear_cache() {
    q_ = k_ = v_ = q_pos_ = pos_ = probs_ = Tensor<T>();
    cached_ = false;
  }
  Rng& rng() noexcept { return rng_; }
  /// The attention weights A of the last forward_train for item b, head h: [L, L], L = lengths[b].
  TensorView<const T> probabilities(index_t b, index_t h) const {
    if (!cached_ || b < 0 || b >= static_cast<index_t>(lengths_.size()) || h < 0 || h >= heads_)
      throw ValueError("attention.7",
                       detail::str("attention_weights(", b, ", ", h,
                                   "): no cached forward_train "
                                   "for this item and head (call forward_train first)"));
    const index_t len = lengths_[b];
    return TensorView<const T>(probs_.data() + offsets_[b * heads_ + h], Shape{len, len});
  }

 private:
  Problem<T> problem(const T* q, const T* k, const T* v, const T* q_pos, const T* pos,
                     const Shape& s, const std::vector<std::int32_t>& lengths,
                     const AttentionMask& mask) const {
    Problem<T> p{q,       k,
                 v,       q_pos,
                 pos,     s[0],
                 s[1],    heads_,
                 d_k_,    lengths.data(),
                 mask,    static_cast<T>(1.0 / std::sqrt(static_cast<double>(d_k_))),
                 dropout_};
    return p;
  }
  Problem<T> cached_problem() const {
    return problem(q_.data(), k_.data(), v_.data(), q_pos_.numel() ? q_pos_.data() : nullptr,
                   pos_.numel() ? pos_.data() : nullptr, q_.shape(), lengths_, mask_);
  }

  index_t heads_, d_k_;
  double dropout_;
  Rng rng_;
  Tensor<T> q_, k_, v_, q_pos_, pos_, probs_;
  std::vector<std::int32_t> lengths_;
  std::vector<index_t> offsets_;
  std::vector<std::uint64_t> seeds_;
  AttentionMask mask_;
  bool cached_ = false;
};

/// y [N, out] = x [N, in] W^T + b for `out` consecutive rows of a weight starting at `w` (b may
/// be null): one GEMM, the bias broadcast into y first.
template <class T>
void affine(const T* x, index_t n, index_t in, const T* w, const T* b, index_t out, T* y) {
  if (b)
    for (index_t r = 0; r < n; ++r) std::copy(b, b + out, y + r * out);
  ops::gemm(ops::Trans::no, ops::Trans::yes, n, out, in, T(1), x, in, w, in, b ? T(1) : T(0), y,
            out);
}

/// Backward of affine: dW += dy^T x, db += Σ_rows dy (when db), dx += dy W.
template <class T>
void affine_backward(const T* dy, const T* x, index_t n, index_t in, index_t out, const T* w, T* dw,
                     T* db, T* dx) {
  ops::gemm(ops::Trans::yes, ops::Trans::no, out, in, n, T(1), dy, out, x, in, T(1), dw, in);
  if (db)
    ops::column_sums(TensorView<const T>(dy, Shape{n, out}), TensorView<T>(db, Shape{out}), true);
  ops::gemm(ops::Trans::no, ops::Trans::no, n, in, out, T(1), dy, out, w, in, T(1), dx, in);
}

/// What both attention layers share: the core, the output projection ("out_proj" or
/// "linear_out"), the optional projection norms and the padding rule on the output.
template <class T>
class AttentionLayerBase {
 protected:
  enum Slot { kQ = 0, kK = 1, kV = 2, kOut = 3 };

  AttentionLayerBase(index_t d_model, index_t heads, Rng& rng, const MultiHeadAttentionOptions& o,
                     const char* layer, const char* out_name)
      : d_model_(d_model),
        heads_(heads),
        options_((check_options(d_model, heads, o, layer), o)),
        layer_(layer),
        out_name_(out_name),
        out_(d_model, d_model, rng, o.bias),
        core_(heads, d_model / heads, o.dropout, 0) {
    if (o.projection_norm == ProjectionNorm::batch_norm)
      for (auto& n : norms_) n.emplace(d_model, o.norm);
  }

  /// Call after the derived class drew its parameters, so that adding dropout does not change
  /// the initial weights.
  void seed_dropout(Rng& rng) { core_.rng() = Rng(rng.next_u64()); }

  struct Prepared {
    std::vector<std::int32_t> lengths;
  };

  Prepared prepare(TensorView<const T> x, TensorView<const std::int32_t> lengths,
                   const AttentionMask& mask) const {
    check_input(x.shape(), d_model_, layer_);
    check_mask(mask, layer_);
    return {checked_lengths(lengths, x.dim(0), x.dim(1), layer_)};
  }

  Tensor<T> norm(Slot s, Tensor<T> y, const std::vector<std::int32_t>& lengths, bool train) {
    auto& n = norms_[s];
    if (!n) return y;
    return train ? n->forward_train(y.view(), as_view(lengths))
                 : n->forward(y.view(), as_view(lengths));
  }
  Tensor<T> norm(Slot s, Tensor<T> y, const std::vector<std::int32_t>& lengths) const {
    const auto& n = norms_[s];
    return n ? n->forward(y.view(), as_view(lengths)) : y;
  }
  Tensor<T> norm_backward(Slot s, Tensor<T> dy) {
    auto& n = norms_[s];
    return n ? n->backward(dy.view()) : dy;
  }

  /// y = norm_out(out(ctx)), zero on padded frames.
  Tensor<T> output(const Tensor<T>& ctx, const std::vector<std::int32_t>& lengths) const {
    auto y = norm(kOut, out_.forward(ctx), lengths);
    zero_padded(y.data(), y.dim(0), y.dim(1), d_model_, lengths);
    return y;
  }
  Tensor<T> output_train(const Tensor<T>& ctx, const std::vector<std::int32_t>& lengths) {
    auto y = norm(kOut, out_.forward_train(ctx), lengths, true);
    zero_padded(y.data(), y.dim(0), y.dim(1), d_model_, lengths);
    return y;
  }

  /// dctx from dy (padded frames of dy are ignored: their outputs are constant 0).
  Tensor<T> output_backward(TensorView<const T> dy) {
    if (!core_.cached())
      throw ValueError("attention.7", detail::str(layer_,
                                                  "::backward: no cached forward; call "
                                                  "forward_train first"));
    if (dy.shape() != core_.input_shape())
      throw ShapeError(
          "attention.8",
          detail::str(layer_, "::backward: argument dy: expected shape ", core_.input_shape().str(),
                      " (the forward output), got ", dy.shape().str()));
    Tensor<T> g(dy);
    zero_padded(g.data(), g.dim(0), g.dim(1), d_model_, core_.lengths());
    return out_.backward(norm_backward(kOut, std::move(g)));
  }

  template <class F>
  void visit_output_parameters(F&& f, std::string_view prefix) {
    visit_parameters(out_, f, join_name(prefix, out_name_));
  }
  template <class F>
  void visit_norm_parameters(F&& f, std::string_view prefix) {
    for (int s = 0; s < 4; ++s)
      if (norms_[s]) visit_parameters(*norms_[s], f, join_name(prefix, kNormNames[s]));
  }
  template <class F>
  void visit_norm_buffers(F&& f, std::string_view prefix) {
    for (int s = 0; s < 4; ++s)
      if (norms_[s]) visit_buffers(*norms_[s], f, join_name(prefix, kNormNames[s]));
  }
  static constexpr const char* kNormNames[4] = {"norm_q", "norm_k", "norm_v", "norm_out"};

 public:
  index_t d_model() const noexcept { return d_model_; }
  index_t heads() const noexcept { return heads_; }
  index_t d_k() const noexcept { return d_model_ / heads_; }
  const MultiHeadAttentionOptions& options() const noexcept { return options_; }
  /// The generator of the attention-dropout masks (reseed with `dropout_rng() = Rng(seed)`).
  Rng& dropout_rng() noexcept { return core_.rng(); }
  /// Attention weights of the last forward_train for item b, head h: [L, L] with L = lengths[b]
  /// (before dropout; exactly zero on masked keys).
  TensorView<const T> attention_weights(index_t b, index_t h) const {
    return core_.probabilities(b, h);
  }
  /// The output projection ("out_proj" / "linear_out").
  Linear<T>& output_projection() noexcept { return out_; }
  /// norm_q, norm_k, norm_v, norm_out (SequenceBatchNorm) when projection_norm == batch_norm.
  SequenceBatchNorm<T>* projection_norm(int slot) noexcept {
    return norms_[slot] ? &*norms_[slot] : nullptr;
  }
  /// Deletes the four projection norms (projection_norm becomes none; state_dict loses
  /// "norm_q.*" ... "norm_out.*"). For transform::fold_batch_norms, after it folded them into
  /// the projections.
  void remove_projection_norms() {
    for (auto& n : norms_) n.reset();
    options_.projection_norm = ProjectionNorm::none;
  }
  void clear_cache() {
    core_.clear_cache();
    out_.clear_cache();
  }

 protected:
  index_t d_model_, heads_;
  MultiHeadAttentionOptions options_;
  const char* layer_;
  const char* out_name_;
  Linear<T> out_;
  AttentionCore<T> core_;
  std::optional<SequenceBatchNorm<T>> norms_[4];
};

}  // namespace attention
}  // namespace detail

/// Multi-head self-attention with torch.nn.MultiheadAttention's parameters and state_dict names:
/// "in_proj_weight" [3D, D] (rows: W_q, W_k, W_v), "in_proj_bias" [3D], "out_proj.weight"
/// [D, D], "out_proj.bias" [D] (biases absent with bias = false), plus "norm_q.*", "norm_k.*",
/// "norm_v.*", "norm_out.*" with projection_norm = batch_norm. Init as PyTorch: xavier_uniform
/// in_proj_weight, zero biases, default Linear init for out_proj.weight.
template <class T>
class MultiHeadAttention : public detail::attention::AttentionLayerBase<T> {
  static_assert(std::is_floating_point_v<T>, "MultiHeadAttention<T>: T must be float or double");
  using Base = detail::attention::AttentionLayerBase<T>;

 public:
  MultiHeadAttention(index_t d_model, index_t heads, Rng& rng,
                     MultiHeadAttentionOptions options = {})
      : Base(d_model, heads, rng, options, "MultiHeadAttention", "out_proj"),
        in_proj_weight_(Shape{3 * d_model, d_model}) {
    init::xavier_uniform(in_proj_weight_, rng);
    if (options.bias) {
      in_proj_bias_ = Parameter<T>(Shape{3 * d_model});
      init::zeros(this->out_.bias());
    }
    this->seed_dropout(rng);
  }

  /// Inference: y [T, B, D] for x [T, B, D]; lengths [B] (empty: all frames valid).
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {},
                    AttentionMask mask = {}) const {
    const auto lens = this->prepare(x, lengths, mask).lengths;
    Tensor<T> q = this->norm(Base::kQ, project(x, 0), lens),
              k = this->norm(Base::kK, project(x, 1), lens),
              v = this->norm(Base::kV, project(x, 2), lens);
    const auto ctx = this->core_.forward(q, k, v, {}, {}, lens, mask);
    return this->output(ctx, lens);
  }

  /// Training: as forward (batch statistics in the norms, dropout on the weights), with caches.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {},
                          AttentionMask mask = {}) {
    auto lens = this->prepare(x, lengths, mask).lengths;
    x_ = Tensor<T>(x);
    Tensor<T> q = this->norm(Base::kQ, project(x, 0), lens, true),
              k = this->norm(Base::kK, project(x, 1), lens, true),
              v = this->norm(Base::kV, project(x, 2), lens, true);
    const auto ctx =
        this->core_.forward_train(std::move(q), std::move(k), std::move(v), {}, {}, lens, mask);
    return this->output_train(ctx, lens);
  }

  /// dL/dx for dL/dy; adds to every parameter gradient.
  Tensor<T> backward(TensorView<const T> dy) {
    const auto dctx = this->output_backward(dy);
    auto g = this->core_.backward(dctx.data());
    Tensor<T>* grads[3] = {&g.dq, &g.dk, &g.dv};
    Tensor<T> dx(x_.shape());
    const index_t n = x_.numel() / this->d_model_, d = this->d_model_;
    for (int which = 0; which < 3; ++which) {
      const auto dp =
          this->norm_backward(static_cast<typename Base::Slot>(which), std::move(*grads[which]));
      detail::attention::affine_backward(
          dp.data(), x_.data(), n, d, d, in_proj_weight_.value.data() + which * d * d,
          in_proj_weight_.grad.data() + which * d * d,
          this->options_.bias ? in_proj_bias_.grad.data() + which * d : nullptr, dx.data());
    }
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "in_proj_weight"), in_proj_weight_);
    if (this->options_.bias) f(join_name(prefix, "in_proj_bias"), in_proj_bias_);
    this->visit_output_parameters(f, prefix);
    this->visit_norm_parameters(f, prefix);
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    this->visit_norm_buffers(f, prefix);
  }

  Parameter<T>& in_proj_weight() noexcept { return in_proj_weight_; }
  Parameter<T>& in_proj_bias() noexcept { return in_proj_bias_; }

 private:
  // Rows [which·D, (which + 1)·D) of in_proj (q, k or v) applied to x.
  Tensor<T> project(TensorView<const T> x, int which) const {
    const index_t d = this->d_model_;
    Tensor<T> y(x.shape(), uninitialized);
    detail::attention::affine(
        x.data(), x.numel() / d, d, in_proj_weight_.value.data() + which * d * d,
        this->options_.bias ? in_proj_bias_.value.data() + which * d : nullptr, d, y.data());
    return y;
  }

  Parameter<T> in_proj_weight_, in_proj_bias_;
  Tensor<T> x_;
};

/// Relative-position multi-head self-attention (Transformer-XL, Dai et al. 2019 sec. 3.3, as in
/// Conformer and ESPnet's RelPositionMultiHeadedAttention with rel_pos_type "latest"). Names:
/// "linear_q.*", "linear_k.*", "linear_v.*", "linear_out.*" (weight [D, D], bias [D]),
/// "linear_pos.weight" [D, D] (no bias), "pos_bias_u", "pos_bias_v" [heads, d_k], and the norms
/// as MultiHeadAttention. pos_emb [2T − 1, D] comes from RelPositionalEncoding: row r is the
/// embedding of the relative distance T − 1 − r. Init as ESPnet: default Linear init,
/// xavier_uniform pos_bias_u / pos_bias_v.
template <class T>
class RelPositionMultiHeadAttention : public detail::attention::AttentionLayerBase<T> {
  static_assert(std::is_floating_point_v<T>,
                "RelPositionMultiHeadAttention<T>: T must be float or double");
  using Base = detail::attention::AttentionLayerBase<T>;

 public:
  RelPositionMultiHeadAttention(index_t d_model, index_t heads, Rng& rng,
                                MultiHeadAttentionOptions options = {})
      : Base(d_model, heads, rng, options, "RelPositionMultiHeadAttention", "linear_out"),
        pos_weight_(Shape{d_model, d_model}),
        pos_bias_u_(Shape{heads, d_model / heads}),
        pos_bias_v_(Shape{heads, d_model / heads}) {
    for (auto& p : proj_) {
      p.weight = Parameter<T>(Shape{d_model, d_model});
      if (options.bias) p.bias = Parameter<T>(Shape{d_model});
      init::torch_default(p.weight, options.bias ? &p.bias : nullptr, rng);
    }
    init::torch_default(pos_weight_, static_cast<Parameter<T>*>(nullptr), rng);
    init::xavier_uniform(pos_bias_u_, rng);
    init::xavier_uniform(pos_bias_v_, rng);
    this->seed_dropout(rng);
  }

  /// Inference: y [T, B, D] for x [T, B, D] and pos_emb [2T − 1, D].
  Tensor<T> forward(TensorView<const T> x, TensorView<const T> pos_emb,
                    TensorView<const std::int32_t> lengths = {}, AttentionMask mask = {}) const {
    const auto lens = this->prepare(x, lengths, mask).lengths;
    check_pos(x.shape(), pos_emb.shape());
    const Tensor<T> q = this->norm(Base::kQ, project(x, 0), lens);
    const Tensor<T> k = this->norm(Base::kK, project(x, 1), lens),
                    v = this->norm(Base::kV, project(x, 2), lens);
    const auto ctx = this->core_.forward(with_bias(q, pos_bias_u_), k, v, with_bias(q, pos_bias_v_),
                                         positions(pos_emb), lens, mask);
    return this->output(ctx, lens);
  }

  Tensor<T> forward_train(TensorView<const T> x, TensorView<const T> pos_emb,
                          TensorView<const std::int32_t> lengths = {}, AttentionMask mask = {}) {
    auto lens = this->prepare(x, lengths, mask).lengths;
    check_pos(x.shape(), pos_emb.shape());
    x_ = Tensor<T>(x);
    pos_emb_ = Tensor<T>(pos_emb);
    const Tensor<T> q = this->norm(Base::kQ, project(x, 0), lens, true);
    Tensor<T> k = this->norm(Base::kK, project(x, 1), lens, true),
              v = this->norm(Base::kV, project(x, 2), lens, true);
    const auto ctx =
        this->core_.forward_train(with_bias(q, pos_bias_u_), std::move(k), std::move(v),
                                  with_bias(q, pos_bias_v_), positions(pos_emb), lens, mask);
    return this->output_train(ctx, lens);
  }

  /// dL/dx for dL/dy; adds to every parameter gradient (pos_emb is a fixed table: no gradient).
  Tensor<T> backward(TensorView<const T> dy) {
    const auto dctx = this->output_backward(dy);
    auto g = this->core_.backward(dctx.data());
    const index_t n = x_.numel() / this->d_model_, d = this->d_model_;
    // q enters as q + u and q + v: dq = dq_u + dq_v, du = Σ dq_u, dv = Σ dq_v (over frames).
    ops::column_sums(g.dq.reshape(Shape{n, d}), pos_bias_u_.grad.reshape(Shape{d}), true);
    ops::column_sums(g.dq_pos.reshape(Shape{n, d}), pos_bias_v_.grad.reshape(Shape{d}), true);
    g.dq.flat() += g.dq_pos.flat();
    // P = pos_emb W_pos^T: dW_pos += dP^T pos_emb.
    ops::gemm(ops::Trans::yes, ops::Trans::no, T(1), g.dpos.view(), pos_emb_.view(), T(1),
              pos_weight_.grad.view());
    Tensor<T>* grads[3] = {&g.dq, &g.dk, &g.dv};
    Tensor<T> dx(x_.shape());
    for (int which = 0; which < 3; ++which) {
      const auto dp =
          this->norm_backward(static_cast<typename Base::Slot>(which), std::move(*grads[which]));
      auto& p = proj_[which];
      detail::attention::affine_backward(
          dp.data(), x_.data(), n, d, d, p.weight.value.data(), p.weight.grad.data(),
          this->options_.bias ? p.bias.grad.data() : nullptr, dx.data());
    }
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "pos_bias_u"), pos_bias_u_);
    f(join_name(prefix, "pos_bias_v"), pos_bias_v_);
    static const char* const names[] = {"linear_q", "linear_k", "linear_v"};
    for (int i = 0; i < 3; ++i) {
      const std::string base = join_name(prefix, names[i]);
      f(join_name(base, "weight"), proj_[i].weight);
      if (this->options_.bias) f(join_name(base, "bias"), proj_[i].bias);
    }
    this->visit_output_parameters(f, prefix);
    f(join_name(join_name(prefix, "linear_pos"), "weight"), pos_weight_);
    this->visit_norm_parameters(f, prefix);
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    this->visit_norm_buffers(f, prefix);
  }

  Parameter<T>& pos_bias_u() noexcept { return pos_bias_u_; }
  Parameter<T>& pos_bias_v() noexcept { return pos_bias_v_; }
  Parameter<T>& linear_pos_weight() noexcept { return pos_weight_; }
  /// linear_q (0), linear_k (1), linear_v (2): weight [D, D] and bias [D] (empty without bias).
  Parameter<T>& projection_weight(int which) { return proj_[checked_slot(which)].weight; }
  Parameter<T>& projection_bias(int which) { return proj_[checked_slot(which)].bias; }
  /// Gives a layer built with bias = false zero biases on linear_q/k/v and linear_out (outputs
  /// unchanged; state_dict gains their "bias"), so BN folding has a b' to write.
  void enable_bias() {
    if (this->options_.bias) return;
    for (auto& p : proj_) p.bias = Parameter<T>(Shape{this->d_model_});
    this->out_.enable_bias();
    this->options_.bias = true;
  }

 private:
  struct Projection {
    Parameter<T> weight, bias;
  };

  static std::size_t checked_slot(int which) {
    if (which < 0 || which > 2)
      throw ValueError("attention.9", detail::str("RelPositionMultiHeadAttention: projection index must "
                                                  "be 0 (q), 1 (k) or 2 (v), got ", which));
    return static_cast<std::size_t>(which);
  }

  void check_pos(const Shape& x, const Shape& pos) const {
    const index_t rows = 2 * x[0] - 1;
    if (pos.rank() != 2 || pos[0] != std::max<index_t>(rows, 0) || pos[1] != this->d_model_)
      throw ShapeError(
          "attention.6",
          detail::str(this->layer_, ": argument pos_emb: expected shape [",
                      std::max<index_t>(rows, 0), ", ", this->d_model_,
                      "] (2T - 1 relative positions for T = ", x[0], "), got ", pos.str()));
  }

  Tensor<T> project(TensorView<const T> x, int which) const {
    const index_t d = this->d_model_;
    Tensor<T> y(x.shape(), uninitialized);
    const auto& p = proj_[which];
    detail::attention::affine(x.data(), x.numel() / d, d, p.weight.value.data(),
                              this->options_.bias ? p.bias.value.data() : nullptr, d, y.data());
    return y;
  }

  // q + bias per head: bias [heads, d_k] is one D-vector added to every frame.
  static Tensor<T> with_bias(const Tensor<T>& q, const Parameter<T>& bias) {
    Tensor<T> out(q);
    out.matrix().rowwise() += bias.value.flat().transpose();
    return out;
  }

  // linear_pos(pos_emb) [2T − 1, D], no bias.
  Tensor<T> positions(TensorView<const T> pos_emb) const {
    Tensor<T> p(pos_emb.shape(), uninitialized);
    detail::attention::affine(pos_emb.data(), pos_emb.dim(0), this->d_model_,
                              pos_weight_.value.data(), static_cast<const T*>(nullptr),
                              this->d_model_, p.data());
    return p;
  }

  Projection proj_[3];
  Parameter<T> pos_weight_, pos_bias_u_, pos_bias_v_;
  Tensor<T> x_, pos_emb_;
};

}  // namespace asrkit
