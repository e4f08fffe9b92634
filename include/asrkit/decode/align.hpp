// asrkit/decode/align.hpp - CTC forced alignment (Viterbi), segmentation of long utterances at
// runs of blanks, and the Deep Speech 2 data-filtering features.
//
//   auto a = asrkit::ctc_forced_align(log_probs.view(), asrkit::as_view(labels), {/*blank*/ 0});
//   a.frame_labels;          // per frame: the label emitted there, or the blank
//   a.tokens[i].start;       // first frame of token i; .end is one past its last frame
//   auto cuts = asrkit::segment_alignment(a, {/*blank*/ 0, /*min_blank_frames*/ 30, /*space*/ 27});
//
// The alignment is the single most probable CTC path that collapses to the labels: the lattice of
// ctc.hpp with max in place of log-sum-exp (Graves et al. 2006, sec. 3.2), then a backtrace.
// Segmentation follows Deep Speech 2 (Amodei et al. 2016, sec. 5.1): cut wherever at least N
// consecutive frames are blank, optionally only where the run also holds a space token.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/decode/emissions.hpp>

namespace asrkit {

/// Which rows to align: blank, batch item, frames (the decoders' DecodeInput).
using AlignOptions = DecodeInput;

struct TokenSpan {
  std::int32_t label;
  index_t start;  ///< first frame
  index_t end;    ///< one past the last frame
};

struct CtcAlignment {
  std::vector<std::int32_t> frame_labels;  ///< [frames]: label or blank
  std::vector<TokenSpan> tokens;           ///< one per target label, in order
  double log_prob = 0;                     ///< log-probability of the best path
};

/// The most probable path of `log_probs` ([T, V] or [T, B, V], log-probabilities) that
/// collapses to `labels`. Ties go to the path that stays in its state longest (deterministic).
/// Throws ValueError asrkit.align.2 when no path exists (frames < labels + repeats).
template <class T>  // T: float or double, const or not
CtcAlignment ctc_forced_align(TensorView<T> log_probs, TensorView<const std::int32_t> labels,
                              const AlignOptions& opt = {}) {
  using Scalar = std::remove_const_t<T>;
  if (log_probs.rank() != 2 && log_probs.rank() != 3)
    throw ShapeError("align.1", "log_probs must be [T, V] or [T, B, V], got shape " +
                                    log_probs.shape().str());
  const index_t batch = log_probs.rank() == 3 ? log_probs.dim(1) : 1;
  const index_t vocab = log_probs.dim(-1);
  const index_t frames = opt.frames < 0 ? log_probs.dim(0) : opt.frames;
  if (opt.item < 0 || opt.item >= batch)
    throw ValueError("align.1", detail::str("item ", opt.item, " is out of range [0, ", batch, ")"));
  if (frames > log_probs.dim(0))
    throw ValueError("align.1", detail::str("frames ", frames, " exceeds T = ", log_probs.dim(0)));
  if (opt.blank < 0 || opt.blank >= vocab)
    throw ValueError("align.1", detail::str("blank must be in [0, ", vocab, "), got ", opt.blank));
  if (labels.rank() != 1) throw ShapeError("align.1", "labels must be rank 1, got " + labels.shape().str());
  const index_t L = labels.dim(0), S = 2 * L + 1;
  const std::int32_t* lab = labels.data();
  index_t needed = L;
  for (index_t i = 0; i < L; ++i) {
    if (lab[i] < 0 || lab[i] >= vocab || lab[i] == opt.blank)
      throw ValueError("align.1", detail::str("label ", lab[i], " at position ", i,
                                              " must be in [0, ", vocab, ") and not the blank"));
    needed += i > 0 && lab[i] == lab[i - 1];
  }
  if (frames < needed)
    throw ValueError("align.2", detail::str(L, " labels with ", needed - L, " repeats need at least ",
                                            needed, " frames, got ", frames));
  auto label = [&](index_t s) { return (s & 1) ? lab[s >> 1] : opt.blank; };
  auto emit = [&](index_t t, index_t s) {
    const Scalar v = log_probs.data()[(t * batch + opt.item) * vocab + label(s)];
    if (std::isnan(v) || v == std::numeric_limits<Scalar>::infinity())
      throw ValueError("align.3", detail::str("log_probs at frame ", t, " label ", label(s),
                                              " is ", v, "; expected a log-probability"));
    return static_cast<double>(v);
  };

  CtcAlignment out;
  out.tokens.resize(static_cast<std::size_t>(L));
  if (frames == 0) return out;  // L == 0 here
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  // delta_t(s): best log-probability of a prefix ending in state s at frame t; step[t][s] in
  // {0, 1, 2}: how many states the best predecessor lies behind.
  std::vector<double> prev(static_cast<std::size_t>(S), kNone), cur(static_cast<std::size_t>(S));
  std::vector<std::uint8_t> step(static_cast<std::size_t>(frames * S), 0);
  prev[0] = emit(0, 0);
  if (S > 1) prev[1] = emit(0, 1);
  for (index_t t = 1; t < frames; ++t) {
    for (index_t s = 0; s < S; ++s) {
      double best = prev[static_cast<std::size_t>(s)];
      std::uint8_t from = 0;
      if (s >= 1 && prev[static_cast<std::size_t>(s - 1)] > best) {
        best = prev[static_cast<std::size_t>(s - 1)];
        from = 1;
      }
      if (s >= 2 && (s & 1) && label(s) != label(s - 2) && prev[static_cast<std::size_t>(s - 2)] > best) {
        best = prev[static_cast<std::size_t>(s - 2)];
        from = 2;
      }
      cur[static_cast<std::size_t>(s)] = best == kNone ? kNone : best + emit(t, s);
      step[static_cast<std::size_t>(t * S + s)] = from;
    }
    std::swap(prev, cur);
  }
  index_t s = S - 1;
  if (S > 1 && prev[static_cast<std::size_t>(S - 2)] > prev[static_cast<std::size_t>(S - 1)]) s = S - 2;
  out.log_prob = prev[static_cast<std::size_t>(s)];
  if (out.log_prob == kNone)
    throw ValueError("align.2", "every path that spells the labels has probability zero");
  out.frame_labels.resize(static_cast<std::size_t>(frames));
  for (index_t t = frames - 1; t >= 0; --t) {
    out.frame_labels[static_cast<std::size_t>(t)] = label(s);
    if (s & 1) {
      TokenSpan& tok = out.tokens[static_cast<std::size_t>(s >> 1)];
      if (tok.end == 0) tok = {label(s), t, t + 1};
      tok.start = t;
    }
    s -= step[static_cast<std::size_t>(t * S + s)];
  }
  return out;
}

struct SegmentOptions {
  int blank = 0;
  index_t min_blank_frames = 30;  ///< a cut needs at least this many consecutive silent frames
  int space = -1;                 ///< >= 0: the run may hold this token and must hold one
};

struct Segment {
  index_t start_frame, end_frame;  ///< [start, end)
  index_t first_token, end_token;  ///< tokens [first, end) of the alignment
};

/// Splits an aligned utterance at the middle of every run of >= min_blank_frames blank frames
/// (with `space` >= 0: runs of blank or space frames holding at least one space; that space
/// token goes to the segment on its left). Segments cover all frames, in order.
inline std::vector<Segment> segment_alignment(const CtcAlignment& a, const SegmentOptions& opt) {
  if (opt.min_blank_frames < 1)
    throw ValueError("align.4", detail::str("min_blank_frames must be >= 1, got ", opt.min_blank_frames));
  const index_t frames = static_cast<index_t>(a.frame_labels.size());
  auto silent = [&](index_t t) {
    const std::int32_t k = a.frame_labels[static_cast<std::size_t>(t)];
    return k == opt.blank || (opt.space >= 0 && k == opt.space);
  };
  std::vector<index_t> cuts;
  for (index_t t = 0; t < frames;) {
    if (!silent(t)) {
      ++t;
      continue;
    }
    index_t end = t;
    bool has_space = false;
    while (end < frames && silent(end)) has_space |= a.frame_labels[static_cast<std::size_t>(end++)] == opt.space;
    const index_t blanks = end - t;
    // Runs touching the utterance's edges are leading/trailing silence, not a boundary.
    if (t > 0 && end < frames && blanks >= opt.min_blank_frames && (opt.space < 0 || has_space))
      cuts.push_back(t + blanks / 2);
    t = end;
  }
  std::vector<Segment> out;
  index_t start = 0, token = 0;
  const index_t ntok = static_cast<index_t>(a.tokens.size());
  cuts.push_back(frames);
  for (index_t cut : cuts) {
    index_t end_token = token;
    while (end_token < ntok && a.tokens[static_cast<std::size_t>(end_token)].start < cut) ++end_token;
    out.push_back({start, cut, token, end_token});
    start = cut;
    token = end_token;
  }
  return out;
}

/// Deep Speech 2's features for filtering bad (audio, transcript) pairs (sec. 5.1): a pair whose
/// CTC cost is high for its length is likely mis-transcribed.
struct CtcUtteranceStats {
  double cost;              ///< raw CTC cost (negative log-likelihood)
  double cost_per_frame;    ///< cost / input frames
  double cost_per_token;    ///< cost / target tokens
  double frames_per_token;  ///< input frames / target tokens
};

inline CtcUtteranceStats ctc_utterance_stats(double cost, index_t frames, index_t tokens) {
  if (frames < 1 || tokens < 1)
    throw ValueError("align.5", detail::str("utterance stats need frames >= 1 and tokens >= 1, got ",
                                            frames, " frames and ", tokens, " tokens"));
  const double f = static_cast<double>(frames), n = static_cast<double>(tokens);
  return {cost, cost / f, cost / n, f / n};
}

}  // namespace asrkit
