// asrkit/decode/beam_search.hpp - CTC decoding: greedy (best path) and prefix beam search.
//
//   auto best = asrkit::ctc_greedy(log_probs.view());                   // [T, V] log-probs
//   asrkit::BeamOptions o;  o.beam_size = 64;
//   auto nbest = asrkit::ctc_prefix_beam_search(log_probs.view(), o);   // best first
//   nbest[0].tokens; nbest[0].start_frames; nbest[0].log_prob;
//
// Prefix beam search (Graves 2012, sec. 7.5; Hannun et al. 2014): every hypothesis is a label
// prefix with two probabilities, of the paths that spell it and end in a blank (p_b) or in its
// last label (p_nb), so different alignments of one prefix merge exactly. Per frame and label k:
//   blank:           p_b(l)    += y(blank) (p_b(l) + p_nb(l))
//   k = last(l):     p_nb(l)   += y(k) p_nb(l)          (a repeat collapses)
//                    p_nb(l+k) += y(k) p_b(l)           (a repeat needs a blank between)
//   otherwise:       p_nb(l+k) += y(k) (p_b(l) + p_nb(l))
// With an unbounded beam and no pruning, p_b + p_nb of a prefix after the last frame is its
// exact total CTC probability (tested against enumeration and against ctc_loss).
// Deep Speech 2's deployment pruning (Amodei et al. 2016, sec. 3.10 of ../shared/SPECS.md):
// per frame, extend only by the fewest labels whose cumulative probability reaches
// `token_cumulative_prob`, at most `token_limit` of them, none below `token_log_prob_floor`.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {

struct DecodeInput {
  int blank = 0;
  index_t item = 0;     ///< batch item, when log_probs is [T, B, V]
  index_t frames = -1;  ///< frames of that item (-1: all T)
};

struct Hypothesis {
  std::vector<std::int32_t> tokens;
  std::vector<index_t> start_frames;  ///< frame of each token's most probable first emission
  double log_prob = 0;                ///< natural log of the prefix probability (p_b + p_nb)
};

namespace detail {

// The [frames, V] rows of one item of [T, V] or [T, B, V] log-probabilities, validated.
template <class V>
struct DecodeRows {
  const std::remove_const_t<V>* data;
  index_t frames, vocab, stride;
  double at(index_t t, index_t k) const { return static_cast<double>(data[t * stride + k]); }
};

template <class V>
DecodeRows<V> decode_rows(TensorView<V> lp, const DecodeInput& in) {
  if (lp.rank() != 2 && lp.rank() != 3)
    throw ShapeError("decode.1", "log_probs must be [T, V] or [T, B, V], got shape " + lp.shape().str());
  const index_t batch = lp.rank() == 3 ? lp.dim(1) : 1, vocab = lp.dim(-1);
  const index_t frames = in.frames < 0 ? lp.dim(0) : in.frames;
  if (in.item < 0 || in.item >= batch || frames > lp.dim(0))
    throw ValueError("decode.1", detail::str("item ", in.item, " / frames ", frames, " out of range for shape ",
                                             lp.shape().str()));
  if (vocab < 1 || in.blank < 0 || in.blank >= vocab)
    throw ValueError("decode.1", detail::str("blank must be in [0, ", vocab, "), got ", in.blank));
  DecodeRows<V> rows{lp.data() + in.item * vocab, frames, vocab, batch * vocab};
  for (index_t t = 0; t < frames; ++t)
    for (index_t k = 0; k < vocab; ++k) {
      const double v = rows.at(t, k);
      if (std::isnan(v) || v == std::numeric_limits<double>::infinity())
        throw ValueError("decode.2", detail::str("log_probs at frame ", t, " label ", k, " is ", v,
                                                 "; expected a log-probability"));
    }
  return rows;
}

inline double log_add(double a, double b) {
  if (a == -std::numeric_limits<double>::infinity()) return b;
  if (b == -std::numeric_limits<double>::infinity()) return a;
  const double m = std::max(a, b);
  return m + std::log1p(std::exp(-std::fabs(a - b)));
}

}  // namespace detail

/// Best path: the most probable label per frame, repeats merged, blanks dropped.
template <class V>
Hypothesis ctc_greedy(TensorView<V> log_probs, const DecodeInput& in = {}) {
  const auto rows = detail::decode_rows(log_probs, in);
  Hypothesis h;
  index_t prev = -1;
  for (index_t t = 0; t < rows.frames; ++t) {
    index_t best = 0;
    for (index_t k = 1; k < rows.vocab; ++k)
      if (rows.at(t, k) > rows.at(t, best)) best = k;
    h.log_prob += rows.at(t, best);  // the best path's log-probability (not the prefix's)
    if (best != prev && best != in.blank) {
      h.tokens.push_back(static_cast<std::int32_t>(best));
      h.start_frames.push_back(t);
    }
    prev = best;
  }
  return h;
}

struct BeamOptions {
  DecodeInput input;
  index_t beam_size = 16;
  index_t nbest = 1;  ///< hypotheses returned (<= beam_size)
  double beam_threshold = std::numeric_limits<double>::infinity();  ///< drop log p < best - this
  double token_cumulative_prob = 1.0;  ///< DS2 pruning: the fewest labels reaching this mass
  index_t token_limit = -1;            ///< at most this many labels per frame (-1: all)
  double token_log_prob_floor = -std::numeric_limits<double>::infinity();
};

/// The n best label sequences (best first) by CTC prefix beam search over log-probabilities.
/// Empty when pruning leaves no label to extend by (e.g. a floor above every log-probability).
template <class V>
std::vector<Hypothesis> ctc_prefix_beam_search(TensorView<V> log_probs, const BeamOptions& o = {}) {
  const auto rows = detail::decode_rows(log_probs, o.input);
  if (o.beam_size < 1 || o.nbest < 1 || !(o.beam_threshold > 0) || !(o.token_cumulative_prob > 0) ||
      o.token_cumulative_prob > 1 || o.token_limit == 0)
    throw ValueError("decode.3", detail::str("beam options need beam_size >= 1, nbest >= 1, beam_threshold > 0, "
                                             "token_cumulative_prob in (0, 1] and token_limit != 0; got ",
                                             o.beam_size, ", ", o.nbest, ", ", o.beam_threshold, ", ",
                                             o.token_cumulative_prob, ", ", o.token_limit));
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  const int blank = o.input.blank;
  // Prefixes live in a trie: node 0 is the empty prefix; a node knows its parent and label,
  // and the frame of the most probable extension into it so far, which is its label's start
  // time. Paths that merge into a prefix keep summing their probabilities; the timestamp
  // follows the likeliest of them, not the first to arrive.
  struct Node {
    index_t parent;
    std::int32_t token;
    index_t frame;
    double best;  // log-probability of that extension
    std::vector<std::pair<std::int32_t, index_t>> children;
  };
  std::vector<Node> trie{{-1, -1, -1, 0.0, {}}};
  auto child = [&](index_t node, std::int32_t token, index_t frame, double logp) {
    index_t id = -1;
    for (const auto& [tok, c] : trie[static_cast<std::size_t>(node)].children)
      if (tok == token) id = c;
    if (id < 0) {
      trie.push_back({node, token, frame, logp, {}});
      id = static_cast<index_t>(trie.size() - 1);
      trie[static_cast<std::size_t>(node)].children.emplace_back(token, id);
    } else if (logp > trie[static_cast<std::size_t>(id)].best) {
      trie[static_cast<std::size_t>(id)].best = logp;
      trie[static_cast<std::size_t>(id)].frame = frame;
    }
    return id;
  };
  struct Beam {
    index_t node;
    double pb, pnb;
    double total() const { return detail::log_add(pb, pnb); }
  };
  std::vector<Beam> beams{{0, 0.0, kNone}}, next;
  std::unordered_map<index_t, std::size_t> slot;  // node -> index in `next`
  std::vector<index_t> order(static_cast<std::size_t>(rows.vocab));
  auto add = [&](index_t node, double pb, double pnb) {
    auto [it, fresh] = slot.emplace(node, next.size());
    if (fresh) {
      next.push_back({node, pb, pnb});
    } else {
      Beam& b = next[it->second];
      b.pb = detail::log_add(b.pb, pb);
      b.pnb = detail::log_add(b.pnb, pnb);
    }
  };
  for (index_t t = 0; t < rows.frames; ++t) {
    // Labels to try this frame (DS2 pruning), most probable first.
    std::iota(order.begin(), order.end(), index_t{0});
    std::sort(order.begin(), order.end(), [&](index_t a, index_t b) {
      return rows.at(t, a) > rows.at(t, b) || (rows.at(t, a) == rows.at(t, b) && a < b);
    });
    index_t count = 0;
    double mass = 0;
    for (index_t k : order) {
      if (mass >= o.token_cumulative_prob || (o.token_limit > 0 && count >= o.token_limit) ||
          rows.at(t, k) < o.token_log_prob_floor)
        break;
      mass += std::exp(rows.at(t, k));
      ++count;
    }
    next.clear();
    slot.clear();
    for (const Beam& b : beams) {
      const double total = b.total();
      const std::int32_t last = trie[static_cast<std::size_t>(b.node)].token;
      for (index_t c = 0; c < count; ++c) {
        const auto k = static_cast<std::int32_t>(order[static_cast<std::size_t>(c)]);
        const double y = rows.at(t, k);
        if (k == blank) {
          add(b.node, y + total, kNone);
        } else if (k == last) {
          add(b.node, kNone, y + b.pnb);
          if (b.pb != kNone) add(child(b.node, k, t, y + b.pb), kNone, y + b.pb);
        } else {
          add(child(b.node, k, t, y + total), kNone, y + total);
        }
      }
    }
    // Keep the best beam_size (ties by trie node: deterministic), within the threshold.
    std::sort(next.begin(), next.end(), [](const Beam& a, const Beam& b) {
      const double ta = a.total(), tb = b.total();
      return ta > tb || (ta == tb && a.node < b.node);
    });
    if (static_cast<index_t>(next.size()) > o.beam_size) next.resize(static_cast<std::size_t>(o.beam_size));
    if (!next.empty() && std::isfinite(o.beam_threshold)) {
      const double cut = next.front().total() - o.beam_threshold;
      while (next.size() > 1 && next.back().total() < cut) next.pop_back();
    }
    std::swap(beams, next);
    if (beams.empty()) break;  // every label pruned away (a floor above all of them)
  }
  std::vector<Hypothesis> out;
  for (const Beam& b : beams) {
    if (static_cast<index_t>(out.size()) >= o.nbest) break;
    Hypothesis h;
    h.log_prob = b.total();
    for (index_t n = b.node; n > 0; n = trie[static_cast<std::size_t>(n)].parent) {
      h.tokens.push_back(trie[static_cast<std::size_t>(n)].token);
      h.start_frames.push_back(trie[static_cast<std::size_t>(n)].frame);
    }
    std::reverse(h.tokens.begin(), h.tokens.end());
    std::reverse(h.start_frames.begin(), h.start_frames.end());
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace asrkit
