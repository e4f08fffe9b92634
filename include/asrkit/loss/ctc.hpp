// asrkit/loss/ctc.hpp - Connectionist Temporal Classification loss, forward and backward in log
// space (Graves et al. 2006), batched with variable lengths.
//
//   asrkit::CtcProblem<float> p{acts, targets, input_lengths, target_lengths};  // [T, B, V] ...
//   asrkit::CtcOptions opt;                  // blank 0, log-probs input, mean reduction
//   asrkit::Tensor<float> grad(acts.shape());
//   float loss = asrkit::ctc_loss(p, opt, grad.view());
//
// Gradient convention (the PyTorch#52241 confusion, stated once):
//   CtcGradient::input   the derivative with respect to exactly what you passed:
//                        logits input    -> d loss / d logits    = softmax(x) - gamma
//                        log-probs input -> d loss / d log_probs = -gamma (the true partial)
//   CtcGradient::logits  always softmax - gamma, the gradient with respect to the logits that
//                        produced normalized log-probs. This is what torch.nn.functional.ctc_loss
//                        returns for its log_probs argument.
// where gamma[t, k] = sum over lattice states s labelled k of alpha_t(s) beta_t(s) / p(l | x)
// (Graves et al. 2006, eq. 14-16), scaled by the reduction and `grad_scale`.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {

enum class CtcInput { log_probs, logits };
enum class CtcGradient { input, logits };
enum class Reduction { none, sum, mean };

struct CtcOptions {
  int blank = 0;                              ///< blank index, any of [0, V)
  CtcInput input = CtcInput::log_probs;       ///< logits: softmax is fused inside (like warp-ctc)
  Reduction reduction = Reduction::mean;      ///< mean: each loss / max(target length, 1), then
                                              ///< averaged over the batch (PyTorch's semantics)
  bool zero_infinity = false;                 ///< infeasible items: loss 0 instead of +inf
  CtcGradient gradient = CtcGradient::input;  ///< see the header comment
  double grad_scale = 1.0;                    ///< incoming gradient of the reduced loss
};

/// Inputs of one batched CTC call. Targets are either concatenated (rank 1, sum of target
/// lengths) or padded (rank 2, [B, S_max]); lengths are rank-1 [B]. All views are host memory.
template <class T, class Device = Cpu>
struct CtcProblem {
  TensorView<const T, Device> acts;           ///< [T, B, V] logits or log-probs, time-major
  TensorView<const std::int32_t> targets;     ///< [sum L] or [B, S_max], labels in [0, V) \ blank
  TensorView<const std::int32_t> input_lengths;   ///< [B], each in [0, T]
  TensorView<const std::int32_t> target_lengths;  ///< [B]
};

namespace detail {

// Log of zero inside the recursions: a finite stand-in for -inf, so that max-shifted
// log-sum-exp never computes -inf - (-inf) = NaN and stays vectorisable without branches.
// Real log-probabilities are many orders of magnitude above it.
template <class T>
constexpr T ctc_log_zero() {
  return T(-1e30);
}

// Scratch regions are padded to 64 bytes so every row starts aligned.
inline std::size_t ctc_round_up(std::size_t n, std::size_t elems_per_line) {
  return (n + elems_per_line - 1) / elems_per_line * elems_per_line;
}

/// Row length of the (2L+1)-state lattice: S states plus two padding slots on each side,
/// rounded up to a cache line.
template <class T>
std::size_t ctc_row(std::size_t label_len) {
  return ctc_round_up(2 * label_len + 1 + 4, 64 / sizeof(T));
}

/// Elements of T one batch item needs: emissions e and alpha (T rows each), two beta rows,
/// u, gamma and the skip mask (one row each), per-frame log-normalisers (T).
template <class T>
std::size_t ctc_item_elems(std::size_t frames, std::size_t label_len) {
  const std::size_t row = ctc_row<T>(label_len);
  return frames * row * 2 + 5 * row + ctc_round_up(frames, 64 / sizeof(T));
}

/// Labels of item b (concatenated or padded targets) and its length; validated beforehand.
struct CtcLabels {
  const std::int32_t* data;
  index_t length;
};

template <class T, class Device>
CtcLabels ctc_labels_of(const CtcProblem<T, Device>& p, index_t b, const index_t* offsets) {
  const index_t len = p.target_lengths.data()[b];
  if (p.targets.rank() == 2) return {p.targets.data() + b * p.targets.dim(1), len};
  return {p.targets.data() + offsets[b], len};
}

/// Frames every path needs: one per label plus one blank between equal neighbours.
inline index_t ctc_needed_frames(CtcLabels labels) {
  index_t needed = labels.length;
  for (index_t i = 1; i < labels.length; ++i) needed += labels.data[i] == labels.data[i - 1];
  return needed;
}

/// Gradient scale of one item: the incoming gradient through the reduction.
inline double ctc_item_scale(const CtcOptions& opt, index_t label_len, index_t batch) {
  if (opt.reduction != Reduction::mean) return opt.grad_scale;
  return opt.grad_scale / (static_cast<double>(std::max<index_t>(label_len, 1)) * static_cast<double>(batch));
}

/// The reduced loss, summed in a fixed order (deterministic). Reduction::none returns the sum.
template <class T>
T ctc_reduce(const T* losses, const CtcOptions& opt, TensorView<const std::int32_t> target_lengths) {
  const index_t batch = target_lengths.numel();
  double total = 0;
  for (index_t b = 0; b < batch; ++b)
    total += static_cast<double>(losses[b]) /
             (opt.reduction == Reduction::mean ? std::max<std::int32_t>(target_lengths.data()[b], 1) : 1);
  if (opt.reduction == Reduction::mean && batch > 0) total /= static_cast<double>(batch);
  return static_cast<T>(total);
}

/// Prefix offsets of each item's labels in concatenated form (padded targets ignore them).
inline void ctc_label_offsets(TensorView<const std::int32_t> target_lengths, index_t* offsets) {
  offsets[0] = 0;
  for (index_t b = 0; b < target_lengths.numel(); ++b) offsets[b + 1] = offsets[b] + target_lengths.data()[b];
}

}  // namespace detail

/// Checks every argument and throws an asrkit::Error naming the culprit; returns B.
template <class T, class Device>
index_t ctc_validate(const CtcProblem<T, Device>& p, const CtcOptions& opt) {
  if (p.acts.rank() != 3)
    throw ShapeError("ctc.1", detail::str("acts must have rank 3 [T, B, V], got shape ",
                                          p.acts.shape().str()));
  const index_t max_t = p.acts.dim(0), batch = p.acts.dim(1), vocab = p.acts.dim(2);
  if (vocab < 1) throw ShapeError("ctc.1", "acts must have V >= 1, got shape " + p.acts.shape().str());
  if (opt.blank < 0 || opt.blank >= vocab)
    throw ValueError("ctc.6", detail::str("blank must be in [0, ", vocab, "), got ", opt.blank));
  if (!std::isfinite(opt.grad_scale))
    throw ValueError("ctc.9", detail::str("grad_scale must be finite, got ", opt.grad_scale));
  for (const auto* lengths : {&p.input_lengths, &p.target_lengths})
    if (lengths->rank() != 1 || lengths->dim(0) != batch)
      throw ShapeError("ctc.2", detail::str(lengths == &p.input_lengths ? "input_lengths"
                                                                        : "target_lengths",
                                            " must have shape [", batch, "] (B), got ",
                                            lengths->shape().str()));
  if (p.targets.rank() != 1 && p.targets.rank() != 2)
    throw ShapeError("ctc.4", "targets must be concatenated [sum L] or padded [B, S], got shape " +
                                  p.targets.shape().str());
  if (p.targets.rank() == 2 && p.targets.dim(0) != batch)
    throw ShapeError("ctc.4", detail::str("padded targets must have shape [", batch,
                                          ", S], got ", p.targets.shape().str()));
  index_t total = 0;
  for (index_t b = 0; b < batch; ++b) {
    const index_t tb = p.input_lengths.data()[b], lb = p.target_lengths.data()[b];
    if (tb < 0 || tb > max_t)
      throw ValueError("ctc.3", detail::str("input length ", tb, " of batch item ", b,
                                            " must be in [0, ", max_t, "] (T)"));
    if (lb < 0 || (p.targets.rank() == 2 && lb > p.targets.dim(1)))
      throw ValueError("ctc.4", detail::str("target length ", lb, " of batch item ", b,
                                            " must be in [0, ", p.targets.rank() == 2 ?
                                            p.targets.dim(1) : std::numeric_limits<int>::max(), "]"));
    total += lb;
  }
  if (p.targets.rank() == 1 && total != p.targets.dim(0))
    throw ShapeError("ctc.4", detail::str("concatenated targets must hold the sum of target "
                                          "lengths, ", total, " labels, got ", p.targets.dim(0)));
  for (index_t b = 0, offset = 0; b < batch; ++b) {
    const index_t lb = p.target_lengths.data()[b];
    const std::int32_t* labels = p.targets.rank() == 2 ? p.targets.data() + b * p.targets.dim(1)
                                                        : p.targets.data() + offset;
    offset += lb;
    for (index_t i = 0; i < lb; ++i) {
      if (labels[i] < 0 || labels[i] >= vocab)
        throw ValueError("ctc.5", detail::str("target label ", labels[i], " at position ", i,
                                              " of batch item ", b, " is out of range [0, ",
                                              vocab, ")"));
      if (labels[i] == opt.blank)
        throw ValueError("ctc.5", detail::str("target label ", labels[i], " at position ", i,
                                              " of batch item ", b, " is the blank index"));
    }
  }
  return batch;
}

/// Scratch bytes ctc_loss needs for this problem (depends on the lengths, not only on maxima).
template <class T, class Device>
std::size_t ctc_workspace_size(const CtcProblem<T, Device>& p, const CtcOptions& opt) {
  const index_t batch = ctc_validate(p, opt);
  std::size_t elems = 0;
  for (index_t b = 0; b < batch; ++b)
    elems += detail::ctc_item_elems<T>(static_cast<std::size_t>(p.input_lengths.data()[b]),
                                       static_cast<std::size_t>(p.target_lengths.data()[b]));
  return elems * sizeof(T) + static_cast<std::size_t>(batch + 1) * 2 * sizeof(index_t) + 64;
}

namespace detail {

/// Loss (and, when grad != nullptr, gradient rows) of one batch item; the workspace `ws` holds
/// ctc_item_elems<T>(frames, labels.length) elements, 64-byte aligned.
template <class T>
T ctc_item(const T* acts, index_t batch, index_t vocab, index_t b, index_t frames,
           CtcLabels labels, const CtcOptions& opt, T* ws, T* grad, T grad_scale) {
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  using Map = Eigen::Map<Array>;
  using CMap = Eigen::Map<const Array>;
  constexpr T kZero = ctc_log_zero<T>();
  const index_t L = labels.length, S = 2 * L + 1;
  const index_t row = static_cast<index_t>(ctc_row<T>(static_cast<std::size_t>(L)));
  const int blank = opt.blank;
  auto label = [&](index_t s) { return (s & 1) ? labels.data[s >> 1] : blank; };

  T* e = ws;                       // e[t * row + s]: log-prob of state s's label at frame t
  T* alpha = e + frames * row;     // alpha[t * row + 2 + s], two kZero pads in front
  T* beta = alpha + frames * row;  // two rows, beta[s], two kZero pads behind
  T* beta_prev = beta + row;
  T* u = beta_prev + row;          // u[s] = beta_t(s) + e_t(s), two kZero pads behind
  T* gamma = u + row;
  T* skip = gamma + row;           // skip[2 + s]: 0 if s-2 -> s is allowed, else kZero (+2 pads)
  T* norm = skip + row;            // per-frame log-normaliser (logits input) or 0

  const bool feasible = frames >= ctc_needed_frames(labels);
  const bool want_grad = grad != nullptr;
  const bool softmax_term = opt.input == CtcInput::logits || opt.gradient == CtcGradient::logits;

  auto zero_grad_rows = [&](index_t from) {
    if (want_grad)
      for (index_t t = from; t < frames; ++t) std::fill_n(grad + (t * batch + b) * vocab, vocab, T(0));
  };
  if (!feasible) {
    zero_grad_rows(0);
    return opt.zero_infinity ? T(0) : std::numeric_limits<T>::infinity();
  }
  if (frames == 0) return T(0);  // L == 0 here: the empty path has probability 1

  // Emissions, with the fused log-softmax for logits (one vectorised pass over V per frame).
  for (index_t t = 0; t < frames; ++t) {
    const T* x = acts + (t * batch + b) * vocab;
    T lse = 0;
    if (opt.input == CtcInput::logits) {
      CMap xs(x, vocab);
      const T m = xs.maxCoeff();
      lse = m + std::log((xs - m).exp().sum());
    }
    norm[t] = lse;
    if (!(std::abs(lse) < std::numeric_limits<T>::infinity()))
      throw ValueError("ctc.7", detail::str("acts of batch item ", b, " at frame ", t,
                                            " contain NaN or infinite logits"));
    T* et = e + t * row;
    for (index_t s = 0; s < S; ++s) {
      const T v = x[label(s)] - lse;
      if (std::isnan(v) || v == std::numeric_limits<T>::infinity())
        throw ValueError("ctc.7", detail::str("acts of batch item ", b, " at frame ", t,
                                              " contain ", v, " for label ", label(s)));
      et[s] = std::max(v, kZero);  // -inf (probability 0) -> kZero
    }
    et[S] = et[S + 1] = kZero;
  }
  skip[0] = skip[1] = skip[S + 2] = skip[S + 3] = kZero;
  for (index_t s = 0; s < S; ++s)
    skip[2 + s] = (s >= 2 && (s & 1) && label(s) != label(s - 2)) ? T(0) : kZero;

  // Forward: alpha_t(s) = e_t(s) + lse(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2) + skip)
  // (Graves et al. 2006, eq. 6), as one vectorised expression per frame.
  std::fill_n(alpha, row, kZero);
  alpha[2] = e[0];
  if (S > 1) alpha[3] = e[1];
  CMap skip_s(skip + 2, S);
  for (index_t t = 1; t < frames; ++t) {
    const T* prev = alpha + (t - 1) * row;
    T* cur = alpha + t * row;
    cur[0] = cur[1] = kZero;
    CMap a0(prev + 2, S), a1(prev + 1, S), a2(prev, S), et(e + t * row, S);
    const auto a2s = a2 + skip_s;
    const auto m = a0.max(a1).max(a2s);
    Map(cur + 2, S) = et + m + ((a0 - m).exp() + (a1 - m).exp() + (a2s - m).exp()).log();
  }
  const T* last = alpha + (frames - 1) * row + 2;
  const T m = S > 1 ? std::max(last[S - 1], last[S - 2]) : last[0];
  const T log_p = S > 1 ? m + std::log(std::exp(last[S - 1] - m) + std::exp(last[S - 2] - m)) : last[0];
  if (log_p <= kZero / 2) {  // no path survives (e.g. probability-zero labels on every path)
    zero_grad_rows(0);
    return opt.zero_infinity ? T(0) : std::numeric_limits<T>::infinity();
  }
  const T loss = -log_p;
  if (!want_grad) return loss;

  // Backward with beta_t(s) = log p(frames t+1.. | state s at t), which excludes frame t's
  // emission, so gamma_t(s) = exp(alpha_t(s) + beta_t(s) - log p) needs no division.
  Map(beta, row).setConstant(kZero);
  beta[S - 1] = 0;
  if (S > 1) beta[S - 2] = 0;
  for (index_t t = frames - 1; t >= 0; --t) {
    T* g = grad + (t * batch + b) * vocab;
    const T* et = e + t * row;
    // gamma for this frame, then the gradient row.
    Map(gamma, S) = (CMap(alpha + t * row + 2, S) + CMap(beta, S) + loss).exp();
    if (softmax_term)
      Map(g, vocab) = (CMap(acts + (t * batch + b) * vocab, vocab) - norm[t]).exp() * grad_scale;
    else
      std::fill_n(g, vocab, T(0));
    T blank_sum = 0;
    for (index_t s = 0; s < S; s += 2) blank_sum += gamma[s];
    g[blank] -= grad_scale * blank_sum;
    for (index_t s = 1; s < S; s += 2) g[labels.data[s >> 1]] -= grad_scale * gamma[s];
    if (t == 0) break;
    // beta_{t-1}(s) = lse(u(s), u(s+1), u(s+2) + skip(s+2)), u = beta_t + e_t (eq. 10 shifted).
    Map(u, S) = CMap(beta, S) + CMap(et, S);
    u[S] = u[S + 1] = kZero;
    CMap u0(u, S), u1(u + 1, S), u2(u + 2, S), sk2(skip + 4, S);
    const auto u2s = u2 + sk2;
    const auto mu = u0.max(u1).max(u2s);
    Map(beta_prev, S) = mu + ((u0 - mu).exp() + (u1 - mu).exp() + (u2s - mu).exp()).log();
    std::swap(beta, beta_prev);
  }
  return loss;
}

}  // namespace detail

/// Computes the CTC loss of a batch and, when `grad` is not empty ([T, B, V]), its gradient
/// (see the convention above; frames past an item's input length get zero gradient).
/// `losses`, when not empty ([B]), receives each item's unreduced loss (negative log-likelihood).
/// `workspace` may be null (asrkit allocates once per call) or hold ctc_workspace_size() bytes.
/// Returns the reduced loss (for Reduction::none, the sum). Deterministic for any thread count.
template <class T>
T ctc_loss(const CtcProblem<T, Cpu>& p, const CtcOptions& opt, TensorView<T> grad = {},
           TensorView<T> losses = {}, void* workspace = nullptr, std::size_t workspace_bytes = 0) {
  static_assert(std::is_floating_point_v<T>, "ctc_loss: T must be float or double");
  const index_t batch = ctc_validate(p, opt);
  const index_t vocab = p.acts.dim(2);
  const bool want_grad = grad.data() != nullptr;
  if (want_grad) check_shape(grad.shape(), p.acts.shape(), "ctc_loss grad");
  if (losses.data() != nullptr) check_shape(losses.shape(), Shape{batch}, "ctc_loss losses");
  const std::size_t needed = ctc_workspace_size(p, opt);
  std::unique_ptr<unsigned char[]> owned;
  if (workspace == nullptr) {
    owned.reset(new unsigned char[needed]);
    workspace = owned.get();
  } else if (workspace_bytes < needed) {
    throw ValueError("ctc.8", detail::str("workspace holds ", workspace_bytes,
                                          " bytes, ctc_workspace_size() asks for ", needed));
  }
  // Layout: [B+1 item offsets][B losses as index_t slots][per-item regions, 64-byte aligned].
  auto* offsets = static_cast<index_t*>(workspace);
  index_t* label_offsets = offsets + batch + 1;
  auto base = reinterpret_cast<std::uintptr_t>(label_offsets + batch + 1);
  T* items = reinterpret_cast<T*>((base + 63) / 64 * 64);
  detail::ctc_label_offsets(p.target_lengths, label_offsets);
  offsets[0] = 0;
  for (index_t b = 0; b < batch; ++b) {
    offsets[b + 1] = offsets[b] + static_cast<index_t>(detail::ctc_item_elems<T>(
        static_cast<std::size_t>(p.input_lengths.data()[b]),
        static_cast<std::size_t>(p.target_lengths.data()[b])));
  }
  Tensor<T> item_losses({batch});
  parallel_for(batch, [&](index_t b) {
    const index_t frames = p.input_lengths.data()[b];
    const index_t lb = p.target_lengths.data()[b];
    const T scale = static_cast<T>(detail::ctc_item_scale(opt, lb, batch));
    T* g = want_grad ? grad.data() : nullptr;
    item_losses(b) = detail::ctc_item(p.acts.data(), batch, vocab, b, frames,
                                      detail::ctc_labels_of(p, b, label_offsets), opt,
                                      items + offsets[b], g, scale);
    if (want_grad)  // padding frames past the input length
      for (index_t t = frames; t < p.acts.dim(0); ++t)
        std::fill_n(g + (t * batch + b) * vocab, vocab, T(0));
  });
  if (losses.data() != nullptr) losses.flat() = item_losses.flat();
  return detail::ctc_reduce(item_losses.data(), opt, p.target_lengths);
}

}  // namespace asrkit
