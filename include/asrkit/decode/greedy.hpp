// asrkit/decode/greedy.hpp - best-path (greedy) CTC decoding.
//
//   auto best = asrkit::ctc_greedy(log_probs.view());     // [T, V] or [T, B, V] log-probs
//   best.tokens;  best.start_frames;  best.end_frames;  best.acoustic;
//   auto all = asrkit::ctc_greedy_batch(batch.view(), lengths);   // [T, B, V], one per item
//
// The most probable label per frame, repeats merged, blanks dropped (Graves et al. 2006, sec. 3.1,
// "best path decoding"). Each token spans the frames of its run in the best path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <asrkit/core/threading.hpp>
#include <asrkit/decode/emissions.hpp>

namespace asrkit {

/// A word of a decoded hypothesis and the frames it spans.
struct WordSpan {
  std::string text;
  index_t start = 0;  ///< first frame of its first token
  index_t end = 0;    ///< one past the last frame of its last token
};

/// One decoded label sequence. Scores are natural logs.
struct Hypothesis {
  std::vector<std::int32_t> tokens;
  std::vector<index_t> start_frames;  ///< per token: first frame
  std::vector<index_t> end_frames;    ///< per token: one past its last frame
  std::vector<WordSpan> words;        ///< filled by decoders that know the token spellings
  double score = 0;     ///< what the search ranks: acoustic + lm_weight*lm + word_bonus*words + boosts
  double acoustic = 0;  ///< log p_ctc of the tokens (beam search: all paths; greedy: the best path)
  double lm = 0;        ///< log p_lm of the words (or tokens), end of sentence included; 0 without LM
  double boost = 0;     ///< hotword boosts included in score
  index_t word_count = 0;
};

/// Best path: the most probable label per frame, repeats merged, blanks dropped.
template <class V>
Hypothesis ctc_greedy(TensorView<V> log_probs, const DecodeInput& in = {}) {
  const auto rows = detail::decode_rows(log_probs, in);
  Hypothesis h;
  index_t prev = -1;
  for (index_t t = 0; t < rows.frames; ++t) {
    const auto* r = rows.row(t);
    index_t best = 0;
    for (index_t k = 1; k < rows.vocab; ++k)
      if (r[k] > r[best]) best = k;
    h.acoustic += static_cast<double>(r[best]);
    if (best != prev && best != in.blank) {
      h.tokens.push_back(static_cast<std::int32_t>(best));
      h.start_frames.push_back(t);
      h.end_frames.push_back(t + 1);
    } else if (best == prev && best != in.blank) {
      h.end_frames.back() = t + 1;
    }
    prev = best;
  }
  h.score = h.acoustic;
  return h;
}

/// Best path of every item of time-major [T, B, V] log-probabilities, item b with lengths[b]
/// frames, on asrkit's threads.
template <class V>
std::vector<Hypothesis> ctc_greedy_batch(TensorView<V> log_probs, const std::vector<index_t>& lengths, int blank = 0) {
  detail::check_batch(log_probs, lengths.size(), "ctc_greedy_batch");
  std::vector<Hypothesis> out(lengths.size());
  parallel_for(static_cast<index_t>(lengths.size()), [&](index_t b) {
    out[static_cast<std::size_t>(b)] = ctc_greedy(log_probs, DecodeInput{blank, b, lengths[static_cast<std::size_t>(b)]});
  });
  return out;
}

}  // namespace asrkit
