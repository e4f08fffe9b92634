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

/// Lattice row geometry. The 2L+1 states are kept as two rows: the L+1 blank states and the
/// L label states (their recursions differ: a blank state has two predecessors, a label state
/// up to three). SIMD lanes per 64-byte line: 16 float, 8 double. Each row is rounded up to
/// whole packets, so every vectorised step runs without a scalar tail (whose libm exp/log, and
/// their slow underflow path, once cost more than the packets), and has one line of padding in
/// front (alpha reads j-1) and behind (beta reads j+1).
template <class T>
struct CtcRows {
  static constexpr index_t lanes = static_cast<index_t>(64 / sizeof(T));
  index_t blanks, labels;  // states per row: L + 1 and L
  index_t nb, nl;          // rounded up to whole packets
  index_t rb, rl;          // strides: one line of padding on each side
  explicit CtcRows(index_t label_len)
      : blanks(label_len + 1), labels(label_len),
        nb(round(blanks)), nl(round(std::max<index_t>(labels, 1))),
        rb(nb + 2 * lanes), rl(nl + 2 * lanes) {}
  static index_t round(index_t n) { return (n + lanes - 1) / lanes * lanes; }
};

/// The states of frame t that lie on some complete path: reachable from the start (state
/// <= 2t + 1) and able to reach the end in the frames left (state >= 2L - 1 - 2(T - 1 - t)),
/// rounded out to whole packets. Outside it alpha or beta is log 0 for every path that counts,
/// so asrkit neither computes nor reads it there (and writes log 0).
template <class T>
struct CtcBand {
  index_t b0, b1, l0, l1;  // packet-aligned [begin, end) of the blank and the label row
  CtcBand(const CtcRows<T>& r, index_t frames, index_t t) {
    const index_t left = frames - 1 - t, L = r.labels, P = r.lanes;
    b0 = std::max<index_t>(0, L - left) / P * P;
    b1 = std::min(r.nb, CtcRows<T>::round(std::min(L, t) + 1));
    l0 = L > 0 ? std::max<index_t>(0, L - 1 - left) / P * P : 0;
    l1 = L > 0 ? std::min(r.nl, CtcRows<T>::round(std::min(L - 1, t) + 1)) : 0;
  }
};

/// Elements of T one batch item needs: label emissions and alpha (T rows each), blank alpha
/// (T rows), two beta rows of each kind, gamma, skip mask and state labels; per-frame blank
/// emission and log-normaliser (T each); an exp scratch row of V.
template <class T>
std::size_t ctc_item_elems(std::size_t frames, std::size_t label_len, std::size_t vocab) {
  const CtcRows<T> r(static_cast<index_t>(label_len));
  const auto f = static_cast<index_t>(frames);
  const index_t elems = f * (2 * r.rl + r.rb) + 2 * r.rb + 5 * r.rl + 2 * CtcRows<T>::round(f) +
                        CtcRows<T>::round(static_cast<index_t>(vocab));
  return static_cast<std::size_t>(elems);
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

namespace detail {
/// ctc_workspace_size without the argument checks (for callers that have validated).
template <class T>
std::size_t ctc_workspace_bytes(const CtcProblem<T, Cpu>& p) {
  const index_t batch = p.acts.dim(1);
  std::size_t elems = 0;
  for (index_t b = 0; b < batch; ++b)
    elems += detail::ctc_item_elems<T>(static_cast<std::size_t>(p.input_lengths.data()[b]),
                                       static_cast<std::size_t>(p.target_lengths.data()[b]),
                                       static_cast<std::size_t>(p.acts.dim(2)));
  // + item offsets, label offsets (B + 1 each), the per-item losses (B), alignment slack.
  return elems * sizeof(T) + static_cast<std::size_t>(batch + 1) * 2 * sizeof(index_t) +
         static_cast<std::size_t>(batch) * sizeof(T) + 128;
}
}  // namespace detail

/// Scratch bytes ctc_loss needs for this problem (depends on the lengths, not only on maxima).
template <class T>
std::size_t ctc_workspace_size(const CtcProblem<T, Cpu>& p, const CtcOptions& opt) {
  ctc_validate(p, opt);
  return detail::ctc_workspace_bytes(p);
}

namespace detail {

/// exp(x[k] - shift) * scale for k < n, into the 64-byte aligned `out` (n rounded up to whole
/// packets; the padding gets exp(-inf) = 0). Copying the row first keeps Eigen on aligned
/// whole packets: user rows (V = 29 floats) are neither aligned nor packet multiples.
template <class T>
void ctc_exp_row(const T* x, index_t n, T shift, T scale, T* out) {
  const index_t padded = CtcRows<T>::round(n);
  std::copy_n(x, n, out);
  std::fill(out + n, out + padded, -std::numeric_limits<T>::infinity());
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Aligned64> a(out, padded);
  a = (a - shift).exp() * scale;
}

/// log sum_k exp(x[k]) over a row (the log-softmax normaliser), with `scratch` as in ctc_exp_row.
template <class T>
T ctc_log_sum_exp_row(const T* x, index_t n, T* scratch) {
  const T m = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(x, n).maxCoeff();
  ctc_exp_row(x, n, m, T(1), scratch);
  const index_t padded = CtcRows<T>::round(n);
  return m + std::log(Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Aligned64>(scratch, padded).sum());
}

/// The lattice arithmetic on Eigen's packets (16 floats / 8 doubles with AVX-512, fewer with
/// AVX or SSE; the row padding is a multiple of every packet size). Rows are a few packets
/// long, so explicit packet loops beat building expression trees per row, and let the beta
/// step add the emissions on the fly.
template <class T>
struct CtcSimd {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr index_t size = Eigen::internal::unpacket_traits<Packet>::size;

  static Packet load(const T* p) { return Eigen::internal::ploadu<Packet>(p); }
  static Packet set(T v) { return Eigen::internal::pset1<Packet>(v); }
  static Packet add(Packet a, Packet b) { return Eigen::internal::padd(a, b); }
  static Packet exp(Packet a) { return Eigen::internal::pexp(a); }

  /// log(exp(a) + exp(b)): one exp, one log.
  static Packet lse2(Packet a, Packet b) {
    using namespace Eigen::internal;
    const Packet hi = pmax(a, b);
    return padd(hi, plog(padd(set(T(1)), pexp(psub(pmin(a, b), hi)))));
  }
  /// log(exp(a) + exp(b) + exp(c)): sorted with min/max, the largest term is exp(0) = 1, so
  /// two exps and one log.
  static Packet lse3(Packet a, Packet b, Packet c) {
    using namespace Eigen::internal;
    const Packet hi_ab = pmax(a, b), lo_ab = pmin(a, b);
    const Packet hi = pmax(hi_ab, c), lo = pmin(lo_ab, c), mid = pmax(lo_ab, pmin(hi_ab, c));
    return padd(hi, plog(padd(padd(set(T(1)), pexp(psub(mid, hi))), pexp(psub(lo, hi)))));
  }
  /// out[i] = f(i) for packets i in [0, n), n a multiple of `size`.
  template <class F>
  static void for_each(T* out, index_t n, F f) {
    for (index_t i = 0; i < n; i += size) Eigen::internal::pstoreu(out + i, f(i));
  }
  /// sum of f(i) over packets i in [0, n), in a fixed order.
  template <class F>
  static T sum(index_t n, F f) {
    Packet acc = set(T(0));
    for (index_t i = 0; i < n; i += size) acc = add(acc, f(i));
    return Eigen::internal::predux(acc);
  }
};

/// Loss (and, when grad != nullptr, gradient rows) of one batch item; the workspace `ws` holds
/// ctc_item_elems<T>(frames, labels.length, vocab) elements, 64-byte aligned.
///
/// Lattice (Graves et al. 2006, eq. 6-10), blank state i = state 2i, label state j = state 2j+1:
///   aB_t(i) = eB_t    + lse(aB_{t-1}(i), aL_{t-1}(i-1))
///   aL_t(j) = eL_t(j) + lse(aL_{t-1}(j), aB_{t-1}(j), aL_{t-1}(j-1) + skip(j))
/// skip(j) = 0 when label j differs from label j-1, else log 0. Beta excludes frame t's
/// emission, so the state posterior is gamma_t = exp(alpha_t + beta_t - log p):
///   bB_{t-1}(i) = lse(uB(i), uL(i)),  bL_{t-1}(j) = lse(uL(j), uB(j+1), uL(j+1) + skip(j+1))
/// with u = beta_t + e_t (added on the fly).
template <class T>
T ctc_item(const T* acts, index_t batch, index_t vocab, index_t b, index_t frames,
           CtcLabels labels, const CtcOptions& opt, T* ws, T* grad, T grad_scale) {
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  using Map = Eigen::Map<Array, Eigen::Aligned64>;
  using V = CtcSimd<T>;
  using Packet = typename V::Packet;
  constexpr T kZero = ctc_log_zero<T>();
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const CtcRows<T> r(labels.length);
  const index_t L = labels.length, P = r.lanes, NB = r.nb, NL = r.nl, RB = r.rb, RL = r.rl;

  // Regions, each row's first state P elements after a 64-byte boundary.
  T* eL = ws + P;                     // eL[t * RL + j]: log-prob of label j at frame t
  T* aL = eL + frames * RL;           // aL[t * RL + j]
  T* aB = aL + frames * RL;           // aB[t * RB + i]
  T* bB = aB + frames * RB;           // beta rows: current and previous, blank and label
  T* bB_prev = bB + RB;
  T* bL = bB_prev + RB;
  T* bL_prev = bL + RL;
  T* gamma = bL_prev + RL;
  T* skip = gamma + RL;               // skip[j] for j in [-1, NL + 1)
  auto* label_of = reinterpret_cast<std::int32_t*>(skip + RL);  // NL labels (blank past L)
  T* eB = skip + 2 * RL - P;          // eB[t]: log-prob of the blank at frame t
  T* norm = eB + CtcRows<T>::round(frames);  // per-frame log-normaliser (logits input) or 0
  T* exp_row = norm + CtcRows<T>::round(frames);
  ASRKIT_ASSERT(exp_row + CtcRows<T>::round(vocab) <=
                ws + ctc_item_elems<T>(static_cast<std::size_t>(frames),
                                       static_cast<std::size_t>(L), static_cast<std::size_t>(vocab)));

  const bool feasible = frames >= ctc_needed_frames(labels);
  const bool want_grad = grad != nullptr;
  const bool softmax_term = opt.input == CtcInput::logits || opt.gradient == CtcGradient::logits;
  auto zero_grad_rows = [&]() {
    if (want_grad)
      for (index_t t = 0; t < frames; ++t) std::fill_n(grad + (t * batch + b) * vocab, vocab, T(0));
  };
  if (!feasible) {
    zero_grad_rows();
    return opt.zero_infinity ? T(0) : kInf;
  }
  if (frames == 0) return T(0);  // L == 0 here: the empty path has probability 1

  for (index_t j = 0; j < NL; ++j) label_of[j] = j < L ? labels.data[j] : opt.blank;
  std::fill(skip - 1, skip + NL + 1, kZero);
  for (index_t j = 1; j < L; ++j)
    if (labels.data[j] != labels.data[j - 1]) skip[j] = T(0);

  // Emissions, with the fused log-softmax for logits: a gather of the labels, one vectorised
  // validity check (NaN and +inf fail `< inf`; -inf is probability zero and becomes kZero).
  for (index_t t = 0; t < frames; ++t) {
    const T* x = acts + (t * batch + b) * vocab;
    const T lse = opt.input == CtcInput::logits ? ctc_log_sum_exp_row(x, vocab, exp_row) : T(0);
    norm[t] = lse;
    eB[t] = x[opt.blank] - lse;
    T* et = eL + t * RL;
    for (index_t j = 0; j < NL; ++j) et[j] = x[label_of[j]];
    Map ev(et, NL);
    ev -= lse;
    if (!(ev < kInf).all() || !(eB[t] < kInf) || !(std::abs(lse) < kInf))
      throw ValueError("ctc.7", detail::str("acts of batch item ", b, " at frame ", t,
                                            " contain NaN or +inf log-probabilities (or NaN/inf logits)"));
    ev = ev.max(kZero);
    eB[t] = std::max(eB[t], kZero);
    std::fill(et + L, et + NL + P, kZero);
  }

  // Forward, one vectorised expression per row and frame. States past L (junk, finite) only
  // flow to higher states, never back into the lattice.
  std::fill_n(aB - P, RB, kZero);
  std::fill_n(aL - P, RL, kZero);
  aB[0] = eB[0];
  if (L > 0) aL[0] = eL[0];
  for (index_t t = 1; t < frames; ++t) {
    const T* pB = aB + (t - 1) * RB;
    const T* pL = aL + (t - 1) * RL;
    T* cB = aB + t * RB;
    T* cL = aL + t * RL;
    const CtcBand<T> band(r, frames, t);
    const index_t nb = band.b1 - band.b0, nl = band.l1 - band.l0, j = band.l0, i = band.b0;
    std::fill(cB - 1, cB + i, kZero);
    std::fill(cB + band.b1, cB + NB, kZero);
    std::fill(cL - 1, cL + j, kZero);
    std::fill(cL + band.l1, cL + NL, kZero);
    const Packet e_blank = V::set(eB[t]);
    V::for_each(cB + i, nb, [&](index_t k) {
      return V::add(e_blank, V::lse2(V::load(pB + i + k), V::load(pL + i + k - 1)));
    });
    const T* et = eL + t * RL + j;
    V::for_each(cL + j, nl, [&](index_t k) {
      const index_t s = j + k;
      return V::add(V::load(et + k), V::lse3(V::load(pL + s), V::load(pB + s),
                                             V::add(V::load(pL + s - 1), V::load(skip + s))));
    });
  }
  const T* lastB = aB + (frames - 1) * RB;
  const T* lastL = aL + (frames - 1) * RL;
  const T m = L > 0 ? std::max(lastB[L], lastL[L - 1]) : lastB[0];
  if (m <= kZero / 2) {  // no path survives (e.g. probability-zero labels on every path)
    zero_grad_rows();
    return opt.zero_infinity ? T(0) : kInf;
  }
  const T log_p = L > 0 ? m + std::log(std::exp(lastB[L] - m) + std::exp(lastL[L - 1] - m)) : m;
  const T loss = -log_p;
  if (!want_grad) return loss;

  // Backward. Junk past the valid states is reset to kZero after every step, because beta
  // reads higher states.
  std::fill_n(bB, NB + P, kZero);
  std::fill_n(bL, NL + P, kZero);
  bB[L] = 0;
  if (L > 0) bL[L - 1] = 0;
  for (index_t t = frames - 1; t >= 0; --t) {
    T* g = grad + (t * batch + b) * vocab;
    if (softmax_term) {
      ctc_exp_row(acts + (t * batch + b) * vocab, vocab, norm[t], grad_scale, exp_row);
      std::copy_n(exp_row, vocab, g);
    } else {
      std::fill_n(g, vocab, T(0));
    }
    const CtcBand<T> band(r, frames, t);
    const index_t nb = band.b1 - band.b0, nl = band.l1 - band.l0;
    const T* at = aB + t * RB;
    const Packet shift = V::set(loss);
    const T blank_sum = V::sum(nb, [&](index_t k) {
      const index_t i = band.b0 + k;
      return V::exp(V::add(V::add(V::load(at + i), V::load(bB + i)), shift));
    });
    g[opt.blank] -= grad_scale * blank_sum;
    const T* alt = aL + t * RL;
    V::for_each(gamma + band.l0, nl, [&](index_t k) {
      const index_t j = band.l0 + k;
      return V::exp(V::add(V::add(V::load(alt + j), V::load(bL + j)), shift));
    });
    for (index_t j = band.l0, end = std::min(band.l1, L); j < end; ++j)
      g[labels.data[j]] -= grad_scale * gamma[j];
    if (t == 0) break;
    // beta_{t-1} on frame t-1's band, u = beta_t + e_t added on the fly (beta_t and e_t are
    // log 0 past the last state, so the reads one state up stay exact).
    const CtcBand<T> prev(r, frames, t - 1);
    const index_t pb = prev.b1 - prev.b0, pl = prev.l1 - prev.l0;
    std::fill(bB_prev, bB_prev + NB + P, kZero);
    std::fill(bL_prev, bL_prev + NL + P, kZero);
    const Packet e_blank = V::set(eB[t]);
    const T* et = eL + t * RL;
    V::for_each(bB_prev + prev.b0, pb, [&](index_t k) {
      const index_t i = prev.b0 + k;
      return V::lse2(V::add(V::load(bB + i), e_blank), V::add(V::load(bL + i), V::load(et + i)));
    });
    V::for_each(bL_prev + prev.l0, pl, [&](index_t k) {
      const index_t j = prev.l0 + k;
      return V::lse3(V::add(V::load(bL + j), V::load(et + j)), V::add(V::load(bB + j + 1), e_blank),
                     V::add(V::add(V::load(bL + j + 1), V::load(et + j + 1)), V::load(skip + j + 1)));
    });
    std::fill(bB_prev + L + 1, bB_prev + NB + P, kZero);
    std::fill(bL_prev + L, bL_prev + NL + P, kZero);
    std::swap(bB, bB_prev);
    std::swap(bL, bL_prev);
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
  const std::size_t needed = detail::ctc_workspace_bytes(p);
  std::unique_ptr<unsigned char[]> owned;
  if (workspace == nullptr) {
    owned.reset(new unsigned char[needed]);
    workspace = owned.get();
  } else if (workspace_bytes < needed) {
    throw ValueError("ctc.8", detail::str("workspace holds ", workspace_bytes,
                                          " bytes, ctc_workspace_size() asks for ", needed));
  }
  // Layout: [B+1 item offsets][B+1 label offsets][B losses][per-item regions, 64-byte aligned].
  auto* offsets = static_cast<index_t*>(workspace);
  index_t* label_offsets = offsets + batch + 1;
  auto base = reinterpret_cast<std::uintptr_t>(label_offsets + batch + 1);
  T* item_losses = reinterpret_cast<T*>((base + alignof(T) - 1) / alignof(T) * alignof(T));
  base = reinterpret_cast<std::uintptr_t>(item_losses + batch);
  T* items = reinterpret_cast<T*>((base + 63) / 64 * 64);
  detail::ctc_label_offsets(p.target_lengths, label_offsets);
  offsets[0] = 0;
  for (index_t b = 0; b < batch; ++b) {
    offsets[b + 1] = offsets[b] + static_cast<index_t>(detail::ctc_item_elems<T>(
        static_cast<std::size_t>(p.input_lengths.data()[b]),
        static_cast<std::size_t>(p.target_lengths.data()[b]), static_cast<std::size_t>(vocab)));
  }
  parallel_for(batch, [&](index_t b) {
    const index_t frames = p.input_lengths.data()[b];
    const index_t lb = p.target_lengths.data()[b];
    const T scale = static_cast<T>(detail::ctc_item_scale(opt, lb, batch));
    T* g = want_grad ? grad.data() : nullptr;
    item_losses[b] = detail::ctc_item(p.acts.data(), batch, vocab, b, frames,
                                      detail::ctc_labels_of(p, b, label_offsets), opt,
                                      items + offsets[b], g, scale);
    if (want_grad)  // padding frames past the input length
      for (index_t t = frames; t < p.acts.dim(0); ++t)
        std::fill_n(g + (t * batch + b) * vocab, vocab, T(0));
  });
  if (losses.data() != nullptr) std::copy_n(item_losses, batch, losses.data());
  return detail::ctc_reduce(item_losses, opt, p.target_lengths);
}

}  // namespace asrkit
