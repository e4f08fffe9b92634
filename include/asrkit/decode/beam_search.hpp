// asrkit/decode/beam_search.hpp - CTC prefix beam search with an n-gram LM, a lexicon, hotwords,
// timestamps and a streaming interface.
//
//   asrkit::DecoderOptions o;
//   o.beam_size = 100;  o.word_boundary = tokens.id("|");  o.lm_weight = 0.5;  o.word_bonus = 1.0;
//   auto lm = std::make_shared<const asrkit::NgramLm>(asrkit::read_arpa("lm.arpa"));
//   asrkit::CtcBeamDecoder decoder(tokens, o, lm, &lexicon, {{"asrkit", 4.0}});
//   auto nbest = decoder.decode(log_probs.view());          // [T, V]: best first
//   nbest[0].words[0].text;  nbest[0].score;  nbest[0].acoustic;  nbest[0].lm;
//
//   auto stream = decoder.begin();                           // the same result, chunk by chunk
//   stream.step(chunk1.view());  stream.partial();  stream.step(chunk2.view());
//   auto final = stream.end();
//
// Prefix beam search (Graves 2012, sec. 7.5; Hannun et al. 2014): every hypothesis is a label
// prefix with two probabilities, of the paths that spell it and end in a blank (p_b) or in its
// last label (p_nb), so different alignments of one prefix merge exactly. Per frame and label k:
//   blank:           p_b(l)    += y(blank) (p_b(l) + p_nb(l))
//   k = last(l):     p_nb(l)   += y(k) p_nb(l)          (a repeat collapses)
//                    p_nb(l+k) += y(k) p_b(l)           (a repeat needs a blank between)
//   otherwise:       p_nb(l+k) += y(k) (p_b(l) + p_nb(l))
// Hypotheses are ranked by Deep Speech 2's objective (Amodei et al. 2016, eq. 12):
//   Q(l) = ln p_ctc(l) + alpha ln p_lm(words of l) + beta |words of l|  (+ hotword boosts)
// Everything but ln p_ctc depends on the prefix alone, so it is computed once per prefix, when
// the prefix is first reached, and merging stays exact. Scores that are only provisional until
// a word completes (the LM look-ahead of a partial word, a hotword's partial boost) are part of
// the prefix too, and are replaced by the real score when the word completes or is taken back
// when it does not. With an unbounded beam and no pruning, no LM and no hotwords, exp(Q) of each
// prefix is its exact total CTC probability (tested against enumeration and against ctc_loss).
//
// Deep Speech 2's deployment pruning (../shared/SPECS.md sec. 3.10): per frame, extend only by
// the fewest labels whose cumulative probability reaches `token_cumulative_prob`, at most
// `token_limit` of them, none below `token_log_prob_floor`.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/decode/emissions.hpp>
#include <asrkit/decode/greedy.hpp>
#include <asrkit/decode/lexicon.hpp>
#include <asrkit/decode/ngram.hpp>
#include <asrkit/decode/token_trie.hpp>
#include <asrkit/decode/tokens.hpp>

namespace asrkit {

/// What the language model scores: whole words (when a word boundary completes one) or tokens.
enum class LmUnit { word, token };

struct DecoderOptions {
  int blank = 0;
  int word_boundary = -1;  ///< token that separates words ("|", "<space>"); -1: none
  index_t beam_size = 16;
  index_t nbest = 1;  ///< hypotheses returned (<= beam_size)
  double beam_threshold = std::numeric_limits<double>::infinity();  ///< drop Q < best - this
  double token_cumulative_prob = 1.0;  ///< DS2 pruning: the fewest labels reaching this mass
  index_t token_limit = -1;            ///< at most this many labels per frame (-1: all)
  double token_log_prob_floor = -std::numeric_limits<double>::infinity();
  double lm_weight = 0.5;  ///< alpha (DS2 eq. 12), multiplies ln p_lm
  double word_bonus = 0;   ///< beta, added per word
  LmUnit lm_unit = LmUnit::word;
  bool lm_end_of_sentence = true;  ///< score </s> after the last word
  bool lm_lookahead = true;  ///< partial words score their best completion's unigram (flashlight's smearing)
  bool lexicon_constrained = true;  ///< with a lexicon, output only its words (false: others allowed)
  double unknown_word_penalty = 0;  ///< added per word outside the lexicon or scored as the LM's <unk>
};

/// A word or phrase whose score is raised by `boost` (natural log) when the decoder outputs it.
/// The boost is given token by token while a hypothesis spells the phrase (so the search keeps
/// it), and taken back if the hypothesis turns away before the phrase and its word end complete.
struct Hotword {
  std::string phrase;  ///< words separated by spaces
  double boost = 0;
};

class CtcBeamDecoder {
 public:
  class Stream;

  /// `tokens` spell the V labels. `lm` (may be null) scores words or tokens (options.lm_unit);
  /// `lexicon` (may be null) limits the output to its words. The decoder copies what it needs
  /// from `lexicon`, shares `lm`, and is immutable: one decoder serves any number of threads.
  CtcBeamDecoder(TokenSet tokens, const DecoderOptions& options = {}, std::shared_ptr<const NgramLm> lm = nullptr,
                 const Lexicon* lexicon = nullptr, const std::vector<Hotword>& hotwords = {})
      : tokens_(std::move(tokens)), o_(options), lm_(std::move(lm)) {
    const index_t vocab = static_cast<index_t>(tokens_.size());
    if (vocab < 1) throw ValueError("decode.5", "CtcBeamDecoder: the vocabulary is empty");
    if (o_.beam_size < 1 || o_.nbest < 1 || !(o_.beam_threshold > 0) || !(o_.token_cumulative_prob > 0) ||
        o_.token_cumulative_prob > 1 || o_.token_limit == 0 || std::isnan(o_.token_log_prob_floor))
      throw ValueError("decode.3", detail::str("beam options need beam_size >= 1, nbest >= 1, beam_threshold > 0, "
                                               "token_cumulative_prob in (0, 1] and token_limit != 0; got ",
                                               o_.beam_size, ", ", o_.nbest, ", ", o_.beam_threshold, ", ",
                                               o_.token_cumulative_prob, ", ", o_.token_limit));
    if (o_.blank < 0 || o_.blank >= vocab)
      throw ValueError("decode.1", detail::str("blank must be in [0, ", vocab, "), got ", o_.blank));
    if (o_.word_boundary >= vocab || o_.word_boundary == o_.blank || o_.word_boundary < -1)
      throw ValueError("decode.7", detail::str("word_boundary must be -1 or a token in [0, ", vocab,
                                               ") other than the blank, got ", o_.word_boundary));
    if (!std::isfinite(o_.lm_weight) || !std::isfinite(o_.word_bonus) || std::isnan(o_.unknown_word_penalty) ||
        o_.unknown_word_penalty > 0)
      throw ValueError("decode.7", detail::str("lm_weight and word_bonus must be finite and unknown_word_penalty "
                                               "<= 0; got ", o_.lm_weight, ", ", o_.word_bonus, ", ",
                                               o_.unknown_word_penalty));
    if (lm_ && o_.lm_unit == LmUnit::word && o_.word_boundary < 0)
      throw ValueError("decode.7", "a word-level LM needs options.word_boundary (the token that ends a word)");
    if (lexicon != nullptr && o_.word_boundary < 0)
      throw ValueError("decode.7", "a lexicon needs options.word_boundary (the token that ends a word)");
    compile_lexicon(lexicon);
    compile_hotwords(hotwords);
    if (lm_ && o_.lm_unit == LmUnit::token) {
      token_lm_.resize(tokens_.size());
      for (std::size_t k = 0; k < tokens_.size(); ++k)
        token_lm_[k] = lm_->word_id(tokens_.spelling(static_cast<std::int32_t>(k)));
    }
    // The most a token other than the word boundary can raise Q - ln p_ctc: LM terms only fall
    // within a word (a look-ahead never grows deeper in the trie), except when a soft lexicon
    // leaves the trie for <unk>'s look-ahead; hotwords add at most their largest step.
    for (double h : hot_step_) max_gain_ = std::max(max_gain_, h);
    for (double h : hot_complete_) max_gain_ = std::max(max_gain_, h);
    if (!lookahead_.empty() && !hard_lexicon_)
      max_gain_ += o_.lm_weight * std::max(0.0, unk_lookahead_ - *std::min_element(lookahead_.begin(), lookahead_.end()));
  }

  const TokenSet& tokens() const noexcept { return tokens_; }
  const DecoderOptions& options() const noexcept { return o_; }

  inline Stream begin() const;

  /// The n best hypotheses (best first) of one utterance: [T, V] log-probabilities, or item
  /// `item` of time-major [T, B, V] with `frames` valid frames (-1: all). Empty when pruning or
  /// the lexicon leaves no hypothesis.
  template <class V>
  std::vector<Hypothesis> decode(TensorView<V> log_probs, index_t item = 0, index_t frames = -1) const;

  /// Every item of time-major [T, B, V] log-probabilities, item b with lengths[b] frames, on
  /// asrkit's threads (set_num_threads). Results do not depend on the thread count.
  template <class V>
  std::vector<std::vector<Hypothesis>> decode_batch(TensorView<V> log_probs,
                                                    const std::vector<index_t>& lengths) const {
    detail::check_batch(log_probs, lengths.size(), "decode_batch");
    std::vector<std::vector<Hypothesis>> out(lengths.size());
    parallel_for(static_cast<index_t>(lengths.size()), [&](index_t b) {
      out[static_cast<std::size_t>(b)] = decode(log_probs, b, lengths[static_cast<std::size_t>(b)]);
    });
    return out;
  }

 private:
  friend class Stream;
  static constexpr double kNone = -std::numeric_limits<double>::infinity();

  // Everything about a prefix except its acoustic probability: a node of the prefix trie.
  struct Prefix {
    LmState lm_state;
    double lm = 0;            // ln p_lm of the completed words (or tokens)
    double penalty = 0;       // unknown-word penalties
    double hot_done = 0;      // boosts of completed hotwords
    double hot_partial = 0;   // boost of the hotword being spelled (provisional)
    double lookahead = 0;     // ln p_lm look-ahead of the partial word (provisional)
    double bonus = 0;         // Q - ln p_ctc
    std::int32_t words = 0;
    std::int32_t word_node = TokenTrie::root;  // lexicon trie position; none: outside the lexicon
    std::int32_t hot_node = TokenTrie::root;
    bool word_start = true;  // no partial word
    bool dead = false;       // the lexicon forbids this prefix
  };

  void set_bonus(Prefix& p, bool final) const {
    p.bonus = o_.lm_weight * (p.lm + (final ? 0.0 : p.lookahead)) + o_.word_bonus * p.words + p.penalty +
              p.hot_done + (final ? 0.0 : p.hot_partial);
  }

  // Bound on what completing p's word can add besides hotwords: the word bonus, and the
  // look-ahead given back (the word's own ln p_lm <= 0 replaces it).
  double boundary_gain(const Prefix& p) const {
    if (p.word_start) return 0;
    if (o_.lm_weight < 0) return std::numeric_limits<double>::infinity();
    return std::max(0.0, o_.word_bonus) - o_.lm_weight * std::min(0.0, p.lookahead);
  }

  double lm_score(LmState& state, WordId w) const {
    return log10_to_ln(static_cast<double>(lm_->score(state, w, &state)));
  }

  // Completes the partial word of `p` (a word boundary or the end of the utterance).
  void complete_word(Prefix& p) const {
    if (p.word_start) return;
    ++p.words;
    p.lookahead = 0;
    p.word_start = true;
    if (!has_lexicon_) return;
    const bool known = p.word_node != TokenTrie::none && !word_ends_[static_cast<std::size_t>(p.word_node)].empty();
    if (!known && hard_lexicon_) {
      p.dead = true;
      return;
    }
    if (!known) p.penalty += o_.unknown_word_penalty;
    if (lm_ && o_.lm_unit == LmUnit::word) {
      if (!known) {
        p.lm += lm_score(p.lm_state, lm_->unk_id());
      } else {  // homophones: the likeliest of the words spelled this way
        const auto& ids = word_ends_[static_cast<std::size_t>(p.word_node)];
        LmState best_state;
        double best = kNone;
        for (WordId w : ids) {
          LmState s = p.lm_state;
          const double lp = lm_score(s, w);
          if (lp > best) best = lp, best_state = s;
        }
        if (known && ids.size() == 1 && ids[0] == lm_->unk_id()) p.penalty += o_.unknown_word_penalty;
        p.lm += best;
        p.lm_state = best_state;
      }
    }
    p.word_node = TokenTrie::root;
  }

  // Advances the hotword match of `c` (a copy of its parent) by token k.
  void advance_hotword(Prefix& c, std::int32_t k, bool parent_word_start) const {
    if (hot_.size() <= 1) return;
    std::int32_t node = c.hot_node;
    if (node != TokenTrie::root) {
      node = hot_.child(node, k);
      if (node == TokenTrie::none) {  // turned away: take the partial boost back
        c.hot_partial = 0;
        node = TokenTrie::root;
      }
    }
    if (node == TokenTrie::root && (parent_word_start || o_.word_boundary < 0)) {
      node = hot_.child(TokenTrie::root, k);
      if (node == TokenTrie::none) node = TokenTrie::root;
    }
    if (node != TokenTrie::root) {
      const auto n = static_cast<std::size_t>(node);
      c.hot_partial += hot_step_[n];
      if (hot_complete_[n] != 0) {  // a phrase ends here: its boost becomes final
        c.hot_done += hot_complete_[n];
        c.hot_partial = 0;
        if (!hot_has_children_[n]) node = TokenTrie::root;
      }
    }
    c.hot_node = node;
  }

  // What the search needs per beam to bound its extensions, kept next to the links.
  struct Reach {
    double boundary_gain;   // bound on bonus(l + boundary) - bonus(l) besides hotwords
    std::uint64_t allowed;  // tokens < 64 a hard lexicon allows next (all ones: no mask)
  };
  Reach reach(const Prefix& p) const { return {boundary_gain(p), allowed_tokens(p)}; }

  // alpha times the change of the LM look-ahead from `parent` to parent + k (k not a word
  // boundary); 0 where it is not known cheaply (it is then covered by max_gain_).
  double lookahead_change(const Prefix& parent, std::int32_t k) const {
    if (lookahead_.empty() || !o_.lm_lookahead || o_.lm_weight < 0 || parent.word_node == TokenTrie::none) return 0;
    const std::int32_t n = lexicon_.child(parent.word_node, k);
    return n == TokenTrie::none ? 0.0 : o_.lm_weight * (lookahead_[static_cast<std::size_t>(n)] - parent.lookahead);
  }

  // True when a hard lexicon has no word continuing `parent` by token k (a cheap test before
  // extend copies the state; word ends are checked by complete_word).
  // The tokens (below 64) a hard lexicon allows after `parent`, as bits; all ones when no mask
  // applies (no hard lexicon, or V > 64: forbids() then asks the trie).
  std::uint64_t allowed_tokens(const Prefix& parent) const {
    if (!hard_lexicon_ || lexicon_mask_.empty()) return ~std::uint64_t{0};
    std::uint64_t bits = parent.word_node == TokenTrie::none ? 0 : lexicon_mask_[static_cast<std::size_t>(parent.word_node)];
    if (o_.word_boundary >= 0) bits |= std::uint64_t{1} << o_.word_boundary;
    return bits;
  }

  bool forbids(const Prefix& parent, std::int32_t k) const {
    if (!hard_lexicon_ || k == o_.word_boundary) return false;
    if (parent.word_node == TokenTrie::none) return true;
    if (!lexicon_mask_.empty()) return !((lexicon_mask_[static_cast<std::size_t>(parent.word_node)] >> k) & 1u);
    return lexicon_.child(parent.word_node, k) == TokenTrie::none;
  }

  // The state of prefix `parent` + k.
  Prefix extend(const Prefix& parent, std::int32_t k) const {
    const bool boundary = k == o_.word_boundary;
    Prefix c = parent;
    if (boundary) {
      complete_word(c);
    } else {
      c.word_start = false;
      if (has_lexicon_) {
        if (c.word_node != TokenTrie::none) c.word_node = lexicon_.child(c.word_node, k);
        if (c.word_node == TokenTrie::none && hard_lexicon_) c.dead = true;
        if (lm_ && o_.lm_unit == LmUnit::word && o_.lm_lookahead)
          c.lookahead = c.word_node == TokenTrie::none ? unk_lookahead_ : lookahead_[static_cast<std::size_t>(c.word_node)];
      }
    }
    if (lm_ && o_.lm_unit == LmUnit::token) c.lm += lm_score(c.lm_state, token_lm_[static_cast<std::size_t>(k)]);
    advance_hotword(c, k, parent.word_start);
    set_bonus(c, false);
    return c;
  }

  // The prefix as a finished utterance: last word completed, hotwords at a word end, </s>.
  Prefix finish(const Prefix& p) const {
    Prefix f = p;
    complete_word(f);
    if (o_.word_boundary >= 0 && f.hot_node != TokenTrie::root) {
      const std::int32_t n = hot_.child(f.hot_node, o_.word_boundary);
      if (n != TokenTrie::none) f.hot_done += hot_complete_[static_cast<std::size_t>(n)];
    }
    if (lm_ && o_.lm_end_of_sentence && !f.dead)
      f.lm += log10_to_ln(static_cast<double>(lm_->end_sentence(f.lm_state)));
    set_bonus(f, true);
    return f;
  }

  Prefix root_prefix() const {
    Prefix r;
    if (lm_) r.lm_state = lm_->begin_sentence();
    set_bonus(r, false);
    return r;
  }

  std::vector<std::int32_t> resolve(const std::string& what, const std::vector<std::string>& spelling) const {
    std::vector<std::int32_t> ids;
    for (const std::string& s : spelling) {
      const std::int32_t k = tokens_.id(s);
      if (k < 0)
        throw ValueError("decode.6", detail::str(what, ": token \"", s, "\" is not in the vocabulary"));
      ids.push_back(k);
    }
    if (!ids.empty() && ids.back() == o_.word_boundary) ids.pop_back();  // "c a t |"
    if (ids.empty() || std::find(ids.begin(), ids.end(), o_.word_boundary) != ids.end() ||
        std::find(ids.begin(), ids.end(), o_.blank) != ids.end())
      throw ValueError("decode.6", detail::str(what, ": a spelling must be non-empty and contain neither the ",
                                               "blank nor a word boundary inside"));
    return ids;
  }

  void compile_lexicon(const Lexicon* lexicon) {
    Lexicon spelled;
    if (lexicon == nullptr && lm_ && o_.lm_unit == LmUnit::word) {  // lexicon-free: LM words, soft
      spelled = Lexicon::spelled(*lm_, tokens_);
      lexicon = &spelled;
      hard_lexicon_ = false;
    } else {
      hard_lexicon_ = lexicon != nullptr && o_.lexicon_constrained;
    }
    if (lexicon == nullptr) return;
    has_lexicon_ = true;
    for (const auto& e : lexicon->entries()) {
      const std::int32_t node = lexicon_.insert(resolve("lexicon word \"" + e.word + "\"", e.spelling));
      word_ends_.resize(static_cast<std::size_t>(lexicon_.size()));
      word_ends_[static_cast<std::size_t>(node)].push_back(lm_ ? lm_->word_id(e.word) : WordId{0});
    }
    word_ends_.resize(static_cast<std::size_t>(lexicon_.size()));
    if (tokens_.size() <= 64) {  // small vocabularies: each node's next tokens as a bit mask
      lexicon_mask_.assign(word_ends_.size(), 0);
      lexicon_.for_each_bottom_up([&](std::int32_t n, const auto& children) {
        for (const auto& [token, child] : children) lexicon_mask_[static_cast<std::size_t>(n)] |= std::uint64_t{1} << token;
      });
    }
    if (!(lm_ && o_.lm_unit == LmUnit::word)) return;
    // Look-ahead: the best unigram ln p of the words at or below each node.
    lookahead_.assign(word_ends_.size(), kNone);
    const LmState none = lm_->null_context();
    lexicon_.for_each_bottom_up([&](std::int32_t n, const auto& children) {
      double best = kNone;
      for (WordId w : word_ends_[static_cast<std::size_t>(n)])
        best = std::max(best, log10_to_ln(static_cast<double>(lm_->score(none, w, nullptr))));
      for (const auto& [token, child] : children) best = std::max(best, lookahead_[static_cast<std::size_t>(child)]);
      lookahead_[static_cast<std::size_t>(n)] = best;
    });
    unk_lookahead_ = log10_to_ln(static_cast<double>(lm_->score(none, lm_->unk_id(), nullptr)));
  }

  void compile_hotwords(const std::vector<Hotword>& hotwords) {
    std::vector<std::vector<std::int32_t>> spelled;
    for (const Hotword& h : hotwords) {
      if (!std::isfinite(h.boost))
        throw ValueError("decode.8", detail::str("hotword \"", h.phrase, "\": boost must be finite, got ", h.boost));
      std::vector<std::int32_t> ids;
      for (std::string_view w : detail::split_fields(h.phrase)) {
        const auto word = tokens_.spell(w);
        if (!word)
          throw ValueError("decode.8", detail::str("hotword \"", h.phrase, "\": the vocabulary cannot spell \"",
                                                   std::string(w), "\""));
        if (!ids.empty() && o_.word_boundary >= 0) ids.push_back(o_.word_boundary);
        ids.insert(ids.end(), word->begin(), word->end());
      }
      if (ids.empty()) throw ValueError("decode.8", "hotword: the phrase is empty");
      if (o_.word_boundary >= 0) ids.push_back(o_.word_boundary);  // complete only at a word end
      const std::int32_t node = hot_.insert(ids);
      spelled.push_back(std::move(ids));
      hot_complete_.resize(static_cast<std::size_t>(hot_.size()), 0.0);
      hot_complete_[static_cast<std::size_t>(node)] = h.boost;
    }
    hot_complete_.resize(static_cast<std::size_t>(hot_.size()), 0.0);
    hot_step_.assign(hot_complete_.size(), 0.0);
    hot_has_children_.assign(hot_complete_.size(), false);
    for (std::size_t i = 0; i < spelled.size(); ++i) {  // partial boost: boost / length per token
      const double step = hotwords[i].boost / static_cast<double>(spelled[i].size());
      std::int32_t node = TokenTrie::root;
      for (std::int32_t k : spelled[i]) {
        hot_has_children_[static_cast<std::size_t>(node)] = true;
        node = hot_.child(node, k);
        auto& s = hot_step_[static_cast<std::size_t>(node)];
        s = std::fabs(step) > std::fabs(s) ? step : s;
      }
    }
  }

  TokenSet tokens_;
  DecoderOptions o_;
  std::shared_ptr<const NgramLm> lm_;
  std::vector<WordId> token_lm_;
  TokenTrie lexicon_;
  std::vector<std::vector<WordId>> word_ends_;  // per lexicon node: the LM ids of words ending there
  std::vector<std::uint64_t> lexicon_mask_;     // per lexicon node: tokens that continue a word (V <= 64)
  std::vector<double> lookahead_;
  double unk_lookahead_ = 0;
  bool has_lexicon_ = false, hard_lexicon_ = false;
  TokenTrie hot_;
  std::vector<double> hot_step_, hot_complete_;
  std::vector<bool> hot_has_children_;
  double max_gain_ = 0;  // bound on bonus(l + k) - bonus(l) for k != word boundary
};

/// One utterance being decoded: step() through its frames in chunks of any size, partial() for
/// the current best guesses, end() for the final n-best (exactly what decode() gives on the
/// concatenated frames). Holds beam_size prefixes and their timestamps; memory grows with
/// beam x prefix length, not with frames.
class CtcBeamDecoder::Stream {
 public:
  explicit Stream(const CtcBeamDecoder& decoder) : d_(&decoder) {
    prefixes_.push_back(d_->root_prefix());
    links_.push_back({-1, -1, -1, 0, -1});
    bonus_.push_back(prefixes_.back().bonus);
    reach_.push_back(d_->reach(prefixes_.back()));
    beams_.push_back({0, 0.0, kNone, -1, 0, 0.0, 0, false, 0.0});
  }

  /// Decodes [n, V] (or [n, B, V], item 0) more frames. ValueError "decode.9" after end().
  template <class V>
  void step(TensorView<V> chunk) {
    const auto rows = detail::decode_rows(chunk, DecodeInput{d_->o_.blank, 0, -1});
    run(rows);
  }

  index_t frames() const noexcept { return frame_; }
  /// Prefixes and timing records held (memory; bounded by a multiple of beam x prefix length).
  std::size_t retained() const noexcept { return prefixes_.size() + stamps_.size(); }

  /// The n best prefixes so far (best first), scored as they stand: partial words carry their
  /// look-ahead and partial hotword boosts, no end of sentence.
  std::vector<Hypothesis> partial() const {
    std::vector<Hypothesis> out;
    for (const Beam& b : beams_) {
      if (static_cast<index_t>(out.size()) >= d_->o_.nbest) break;
      out.push_back(hypothesis(b, prefixes_[static_cast<std::size_t>(b.node)], false));
    }
    return out;
  }

  /// The final n-best: every prefix finished (its last word completed and scored, </s>), re-ranked.
  std::vector<Hypothesis> end() {
    if (ended_) throw ValueError("decode.9", "CtcBeamDecoder::Stream::end: the stream has already ended");
    ended_ = true;
    std::vector<std::pair<double, std::size_t>> ranked;
    std::vector<Prefix> finished;
    for (std::size_t i = 0; i < beams_.size(); ++i) {
      finished.push_back(d_->finish(prefixes_[static_cast<std::size_t>(beams_[i].node)]));
      if (!finished.back().dead) ranked.emplace_back(beams_[i].acoustic() + finished.back().bonus, i);
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<Hypothesis> out;
    for (const auto& [score, i] : ranked) {
      if (static_cast<index_t>(out.size()) >= d_->o_.nbest) break;
      out.push_back(hypothesis(beams_[i], finished[i], true));
    }
    return out;
  }

 private:
  friend class CtcBeamDecoder;

  // The timing of one token on the likeliest route into a prefix: immutable once made, shared
  // by the prefixes that extend it (a persistent list, newest token first).
  struct Stamp {
    index_t start;     // first frame of the token
    index_t prev_end;  // one past the last frame of the token before it
    index_t prev;      // stamp of the token before (-1: none)
  };
  struct Beam {
    index_t node;
    double pb, pnb;
    index_t stamp;     // timing of the last token (-1: empty prefix)
    index_t last_end;  // one past the last frame of the last token so far
    double route;      // log-probability of the route the timing follows
    index_t prev_end;  // pending (a new last token, stamped only if the candidate is kept):
    bool pending;      //   its stamp is {this frame, prev_end, stamp}
    double total;      // log_add(pb, pnb), set when the candidate becomes a beam
    double acoustic() const { return detail::log_add(pb, pnb); }
  };

  template <class Rows>
  void run(const Rows& rows) {
    if (ended_) throw ValueError("decode.9", "CtcBeamDecoder::Stream::step: the stream has already ended");
    const DecoderOptions& o = d_->o_;
    const index_t vocab = static_cast<index_t>(d_->tokens_.size());
    if (rows.vocab != vocab)
      throw ValueError("decode.4", detail::str("log_probs have V = ", rows.vocab, " labels but the decoder's ",
                                               "vocabulary has ", vocab, " tokens"));
    if (child_of_.empty()) child_of_.assign(static_cast<std::size_t>(vocab), -1);
    if (visited_.empty()) visited_.assign(static_cast<std::size_t>(vocab), 0);
    order_.resize(static_cast<std::size_t>(vocab));
    prune_ = o.token_cumulative_prob < 1 || o.token_limit > 0 || o.token_log_prob_floor > kNone;
    const bool prune = prune_;
    for (index_t t = 0; t < rows.frames; ++t, ++frame_) {
      const auto* y = rows.row(t);
      const index_t count = prune ? pruned_labels(y, vocab) : all_labels(vocab);
      next_.clear();
      set_floor(y, count);
      for (const Beam& b : beams_) expand(b, y, count);
      select();
      if (beams_.empty()) break;  // every label pruned away, or the lexicon allows nothing
      collect_garbage();
    }
  }

  // The order labels are tried in: most probable first, ties to the lower label.
  template <class Y>
  static auto label_order(const Y* y) {
    return [y](std::int32_t a, std::int32_t b) { return y[a] > y[b] || (y[a] == y[b] && a < b); };
  }

  // Puts the m most probable labels, sorted, at the front of order_ (list_rest() adds the others).
  // Ties: the lower label first. Cheaper than nth_element over the row when m is much smaller
  // than V (label_at asks for m <= V / 4): the labels are dealt into B classes (label mod B), and
  // the m-th largest of the B class maxima is a bar that m different labels reach, so every one
  // of the m most probable labels reaches it too. The class maxima are an element-wise max over
  // the row's B-wide slices (vectorised); only labels at or above the bar (about m) are ranked.
  template <class Y>
  void front_labels(const Y* y, index_t vocab, index_t m) {
    const auto more_probable = label_order(y);
    const auto v = static_cast<std::int32_t>(vocab);
    const auto keep = static_cast<std::int32_t>(std::min(m, vocab));
    const std::int32_t classes = std::max<std::int32_t>(128, 2 * keep);
    top_.clear();
    if (keep > 0 && v >= 2 * classes) {
      auto& maxima = class_max_<Y>();
      if (classes != classes_) {  // the frame's second request (for more labels) reuses them
        maxima.assign(static_cast<std::size_t>(classes), -std::numeric_limits<Y>::infinity());
        Y* ASRKIT_RESTRICT c = maxima.data();
        std::int32_t r = 0;
        for (; r + classes <= v; r += classes)
          for (std::int32_t j = 0; j < classes; ++j) c[j] = y[r + j] > c[j] ? y[r + j] : c[j];
        for (std::int32_t j = 0; r + j < v; ++j) c[j] = y[r + j] > c[j] ? y[r + j] : c[j];
        classes_ = classes;
      }
      const Y* c = maxima.data();
      const Y bar = detail::kth_largest(c, classes, keep);
      for (std::int32_t j = 0; j < classes; ++j)  // only classes whose maximum reaches the bar
        if (c[j] >= bar)
          for (std::int32_t i = j; i < v; i += classes)
            if (y[i] >= bar) top_.push_back(i);
    } else {
      top_.resize(static_cast<std::size_t>(v));
      std::iota(top_.begin(), top_.end(), std::int32_t{0});
    }
    if (static_cast<std::int32_t>(top_.size()) > keep) {
      std::nth_element(top_.begin(), top_.begin() + keep, top_.end(), more_probable);
      top_.resize(static_cast<std::size_t>(keep));
    }
    std::sort(top_.begin(), top_.end(), more_probable);
    std::copy(top_.begin(), top_.end(), order_.begin());
    sorted_ = static_cast<index_t>(top_.size());
    rest_listed_ = false;
  }

  // Lists the labels not ranked yet, in label order, after order_[0, sorted_).
  void list_rest() {
    const auto ranked = order_.begin() + sorted_;
    in_top_.resize(order_.size(), 0);  // all 0 between calls: no per-frame fill
    for (auto it = order_.begin(); it != ranked; ++it) in_top_[static_cast<std::size_t>(*it)] = 1;
    std::size_t next = static_cast<std::size_t>(sorted_);
    for (std::int32_t j = 0; j < static_cast<std::int32_t>(order_.size()); ++j)
      if (!in_top_[static_cast<std::size_t>(j)]) order_[next++] = j;
    for (auto it = order_.begin(); it != ranked; ++it) in_top_[static_cast<std::size_t>(*it)] = 0;
    rest_listed_ = true;
  }

  // Sorts a small row (V <= 64) into order_ by counting ranks (detail::best_first): a comparison
  // sort of 29 labels mispredicts most of its branches.
  template <class Y>
  void rank_all(const Y* y, index_t vocab) {
    const auto v = static_cast<std::int32_t>(vocab);
    detail::best_first(y, static_cast<const std::int32_t*>(nullptr), v, v, order_.data());
    sorted_ = vocab;
    rest_listed_ = true;
  }

  // A new frame: nothing of its row ranked, no class maxima.
  void forget_ranking() {
    sorted_ = -1;
    classes_ = 0;
  }

  // Every label; label_at() orders them as far as the search asks (maybe not at all: inside a
  // lexicon word the search tries only the few tokens that can follow).
  index_t all_labels(index_t vocab) {
    forget_ranking();
    count_ = vocab;
    return vocab;
  }

  // The i-th most probable label of the frame (of all V; the search asks only for i < count_).
  // Most beams stop after a few labels, so order_ is ranked lazily, in prefixes that double (or
  // reach `hint` at once, when the caller knows it will want that many).
  template <class Y>
  std::int32_t label_at(index_t i, const Y* y, index_t hint = 0) {
    const auto vocab = static_cast<index_t>(order_.size());
    if (sorted_ < 0) {  // the frame's first request: the few best in one pass (V = 5000), or all
      if (vocab > 64) {
        front_labels(y, vocab, 8);
      } else {
        rank_all(y, vocab);
        return order_[static_cast<std::size_t>(i)];
      }
    }
    if (i >= sorted_) {
      const index_t n = std::min(vocab, std::max({sorted_ * 2, i + 4, hint}));
      if (!rest_listed_) {
        // While the wanted prefix is a small part of the row, pick it afresh (a pass over the row
        // beats nth_element over it); past that, list the other labels once and sort lazily.
        if (4 * n <= vocab) {
          front_labels(y, vocab, n);
          return order_[static_cast<std::size_t>(i)];
        }
        list_rest();
      }
      const auto more_probable = label_order(y);
      const auto first = order_.begin() + sorted_;
      if (n < vocab) std::nth_element(first, order_.begin() + n, order_.end(), more_probable);
      std::sort(first, order_.begin() + n, more_probable);
      sorted_ = n;
    }
    return order_[static_cast<std::size_t>(i)];
  }

  // DS2 pruning: the labels to try this frame are the first `count` of label_at's order, most
  // probable first: the fewest reaching token_cumulative_prob, at most token_limit, none below
  // the floor. Ranked only as far as that (a peaky frame stops after a label or two).
  template <class Y>
  index_t pruned_labels(const Y* y, index_t vocab) {
    const DecoderOptions& o = d_->o_;
    const index_t limit = o.token_limit > 0 ? std::min(o.token_limit, vocab) : vocab;
    forget_ranking();
    index_t count = 0;
    double mass = 0;
    for (; count < limit; ++count) {
      // A frame that needs more than its first few labels likely needs up to the limit.
      const double lp = static_cast<double>(y[label_at(count, y, std::min<index_t>(limit, 64))]);
      if (mass >= o.token_cumulative_prob || lp < o.token_log_prob_floor) break;
      mass += std::exp(lp);
    }
    return count;
  }

  // A score no new prefix below which can be kept: every beam is a candidate again with at least
  // the probability of its own blank and repeat paths, so when the beam is full the weakest of
  // those is a lower bound of the beam_size-th best candidate (and the strongest, of the best).
  // A prefix that is not a beam now gets this frame's probability from its parent alone, so its
  // score is known before it is added; below the floor it cannot survive selection: skip it.
  template <class Y>
  void set_floor(const Y* y, index_t count) {
    const DecoderOptions& o = d_->o_;
    floor_ = kNone;
    heap_.clear();
    count_ = count;
    tried_.assign(order_.size(), count == static_cast<index_t>(order_.size()));
    if (count < static_cast<index_t>(order_.size()))
      for (index_t i = 0; i < count; ++i) tried_[static_cast<std::size_t>(order_[static_cast<std::size_t>(i)])] = 1;
    const bool full = static_cast<index_t>(beams_.size()) == o.beam_size;
    if (!full && !std::isfinite(o.beam_threshold)) return;
    double weakest = std::numeric_limits<double>::infinity(), strongest = kNone;
    for (const Beam& b : beams_) {
      const std::int32_t last = links_[static_cast<std::size_t>(b.node)].token;
      // max, not log_add: a lower bound is all the floor needs.
      double stay = tried(o.blank) ? static_cast<double>(y[o.blank]) + b.total : kNone;
      if (last >= 0 && tried(last)) stay = std::max(stay, static_cast<double>(y[last]) + b.pnb);
      stay += bonus_[static_cast<std::size_t>(b.node)];
      weakest = std::min(weakest, stay);
      strongest = std::max(strongest, stay);
    }
    if (full) floor_ = weakest;
    if (std::isfinite(o.beam_threshold)) floor_ = std::max(floor_, strongest - o.beam_threshold);
  }

  // A candidate's score only grows as paths merge into it, so the beam_size-th best of the
  // scores candidates had when they were made is a lower bound of the final beam_size-th best.
  void raise_floor(double score) {
    const auto k = static_cast<std::size_t>(d_->o_.beam_size);
    if (heap_.size() < k) {
      heap_.push_back(score);
      std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    } else if (score > heap_.front()) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
      heap_.back() = score;
      std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    }
    if (heap_.size() == k) floor_ = std::max(floor_, heap_.front());
  }

  // C++17 has no <bit>: the compilers' single instructions where known (a loop over the bits
  // mispredicts its exit on every call), a loop elsewhere.
  static int popcount(std::uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_popcountll(x);
#else
    int n = 0;
    for (; x != 0; x &= x - 1) ++n;
    return n;
#endif
  }
  static int lowest_bit(std::uint64_t x) {  // x != 0
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    for (; (x & 1u) == 0; x >>= 1) ++n;
    return n;
#endif
  }

  bool tried(std::int32_t k) const { return tried_[static_cast<std::size_t>(k)] != 0; }

  bool is_beam(index_t node) const { return node >= 0 && links_[static_cast<std::size_t>(node)].beam_frame == frame_; }

  // Extends beam b by this frame's labels. Labels come most probable first, so once one cannot
  // reach the floor neither can the rest (their children's bonus is bounded by max_gain_) and
  // the loop stops; the word boundary, whose bonus can rise more, is bounded on its own, and a
  // skipped child that is itself a beam still gets its probability (it is a candidate anyway).
  template <class Y>
  void expand(const Beam& b, const Y* y, index_t count) {
    const int blank = d_->o_.blank, boundary = d_->o_.word_boundary;
    const double total = b.total;
    const std::int32_t last = links_[static_cast<std::size_t>(b.node)].token;
    for (std::int32_t c = links_[static_cast<std::size_t>(b.node)].first_child; c >= 0;
         c = links_[static_cast<std::size_t>(c)].next_sibling)
      child_of_[static_cast<std::size_t>(links_[static_cast<std::size_t>(c)].token)] = c;
    if (tried(blank)) {
      const double p = static_cast<double>(y[blank]) + total;
      add(b.node, true, p, b.stamp, b.last_end, false);
    }
    if (last >= 0 && tried(last)) {
      const double hold = static_cast<double>(y[last]) + b.pnb;
      add(b.node, false, hold, b.stamp, frame_ + 1, false);
    }
    auto extend_by = [&](std::int32_t k) {
      const double p = static_cast<double>(y[k]) + (k == last ? b.pb : total);
      if (p == kNone) return;
      const index_t c = child(b.node, k, p);
      if (c >= 0) add(c, false, p, b.stamp, b.last_end, true);
    };
    const double reach = total + bonus_[static_cast<std::size_t>(b.node)] + d_->max_gain_;
    const Reach r = reach_[static_cast<std::size_t>(b.node)];  // a copy: child() may grow reach_
    const std::uint64_t allowed = r.allowed;
    ++expansion_;
    std::uint64_t few = allowed;  // inside a lexicon word only a few tokens can follow:
    if (blank < 64) few &= ~(std::uint64_t{1} << blank);  // try just those, in token order
    if (boundary >= 0 && boundary < 64) few &= ~(std::uint64_t{1} << boundary);
    if (~allowed != 0 && popcount(few) <= 8) {
      for (; few != 0; few &= few - 1) {
        const auto k = static_cast<std::int32_t>(lowest_bit(few));
        if (!tried(k) || static_cast<double>(y[k]) + reach < floor_) continue;
        visited_[static_cast<std::size_t>(k)] = expansion_;
        extend_by(k);
      }
    } else {
      for (index_t i = 0; i < count; ++i) {
        const std::int32_t k = label_at(i, y);
        visited_[static_cast<std::size_t>(k)] = expansion_;
        if (k == blank || k == boundary) continue;
        if (static_cast<double>(y[k]) + reach < floor_) {
          visited_[static_cast<std::size_t>(k)] = 0;
          break;
        }
        if (k < 64 && !((allowed >> k) & 1u)) continue;
        extend_by(k);
      }
    }
    if (boundary >= 0 && tried(boundary) &&
        (static_cast<double>(y[boundary]) + reach + r.boundary_gain >=
             floor_ ||
         is_beam(child_of_[static_cast<std::size_t>(boundary)])))
      extend_by(boundary);
    for (std::int32_t c = links_[static_cast<std::size_t>(b.node)].first_child; c >= 0;
         c = links_[static_cast<std::size_t>(c)].next_sibling) {
      const std::int32_t k = links_[static_cast<std::size_t>(c)].token;
      child_of_[static_cast<std::size_t>(k)] = -1;
      if (k != boundary && visited_[static_cast<std::size_t>(k)] != expansion_ && tried(k) && is_beam(c)) {
        const double p = static_cast<double>(y[k]) + (k == last ? b.pb : total);
        if (p != kNone) add(c, false, p, b.stamp, b.last_end, true);
      }
    }
  }

  // The prefix node + k if a probability p from its parent can keep it in the beam, else -1
  // (also when the lexicon forbids it). A new prefix is scored before it is stored, so the trie
  // only grows by candidates.
  index_t child(index_t node, std::int32_t k, double p) {
    index_t& slot = child_of_[static_cast<std::size_t>(k)];
    if (slot >= 0) {
      const double bonus = bonus_[static_cast<std::size_t>(slot)];
      return bonus != kNone && (p + bonus >= floor_ || is_beam(slot)) ? slot : -1;
    }
    const Prefix& parent = prefixes_[static_cast<std::size_t>(node)];
    if (d_->forbids(parent, k)) return -1;
    if (k != d_->o_.word_boundary &&  // most children fail the floor: bound them before copying state
        p + bonus_[static_cast<std::size_t>(node)] + d_->max_gain_ + d_->lookahead_change(parent, k) < floor_)
      return -1;
    Prefix c = d_->extend(parent, k);
    if (c.dead || p + c.bonus < floor_) return -1;
    slot = static_cast<index_t>(prefixes_.size());
    bonus_.push_back(c.bonus);
    reach_.push_back(d_->reach(c));
    prefixes_.push_back(std::move(c));
    links_.push_back({k, -1, links_[static_cast<std::size_t>(node)].first_child, -1, node});
    links_[static_cast<std::size_t>(node)].first_child = static_cast<std::int32_t>(slot);
    return slot;
  }

  // Adds the probability p of one route (paths ending in a blank when blank_end, else in the
  // prefix's last label) to a candidate of the next frame. The timing follows the likeliest
  // route: when p beats the candidate's best so far, its timing is taken; a new token
  // (new_token) starts at this frame, after the extended beam's (stamp, last_end); its stamp is
  // made in select() if the candidate is kept.
  void add(index_t node, bool blank_end, double p, index_t stamp, index_t last_end, bool new_token) {
    if (static_cast<std::size_t>(node) >= slot_.size()) slot_.resize(prefixes_.size(), -1);
    index_t& s = slot_[static_cast<std::size_t>(node)];
    Beam* cand;
    if (s < 0) {
      s = static_cast<index_t>(next_.size());
      cand = &next_.emplace_back();  // fields set one by one: no temporary to copy
      cand->node = node;
      cand->pb = blank_end ? p : kNone;
      cand->pnb = blank_end ? kNone : p;
      cand->stamp = -1;
      cand->last_end = 0;
      cand->route = kNone;
      cand->prev_end = 0;
      cand->pending = false;
      cand->total = kNone;
      raise_floor(p + bonus_[static_cast<std::size_t>(node)]);
    } else {
      cand = &next_[static_cast<std::size_t>(s)];
      double& sum = blank_end ? cand->pb : cand->pnb;
      sum = detail::log_add(sum, p);
    }
    if (p > cand->route) {
      cand->route = p;
      cand->stamp = stamp;
      cand->pending = new_token;
      if (new_token) {
        cand->prev_end = last_end;
        cand->last_end = frame_ + 1;
      } else {
        cand->last_end = last_end;
      }
    }
  }

  // Keeps the best beam_size candidates (ties: the older prefix), within the threshold.
  void select() {
    const DecoderOptions& o = d_->o_;
    score_.clear();
    node_.clear();
    index_.clear();
    for (std::size_t i = 0; i < next_.size(); ++i) {
      const Beam& c = next_[i];
      slot_[static_cast<std::size_t>(c.node)] = -1;
      const double total = c.acoustic();
      next_[i].total = total;
      const double score = total + bonus_[static_cast<std::size_t>(c.node)];
      // A prefix only -inf log-probabilities lead to is impossible: it never becomes a beam (its
      // timing was never recorded, since no route into it beats -inf).
      if (score == -std::numeric_limits<double>::infinity()) continue;
      // Below the floor (set_floor, raise_floor: at least beam_size candidates scored that much
      // when added, and scores only grow as paths merge) a candidate cannot be kept: rank fewer.
      if (score < floor_) continue;
      score_.push_back(score);
      node_.push_back(c.node);
      index_.push_back(static_cast<index_t>(i));
    }
    // best_[r]: the candidate ranked r (best score first, ties: the older prefix), r < keep.
    const auto n = static_cast<std::int32_t>(score_.size());
    auto keep = static_cast<std::size_t>(std::min<index_t>(o.beam_size, n));
    best_.resize(static_cast<std::size_t>(n));
    detail::best_first(score_.data(), node_.data(), n, static_cast<std::int32_t>(keep), best_.data());
    if (keep > 0 && std::isfinite(o.beam_threshold)) {
      const double cut = score_[static_cast<std::size_t>(best_.front())] - o.beam_threshold;
      while (keep > 1 && score_[static_cast<std::size_t>(best_[keep - 1])] < cut) --keep;
    }
    beams_.clear();
    for (std::size_t i = 0; i < keep; ++i) {
      beams_.push_back(next_[static_cast<std::size_t>(index_[static_cast<std::size_t>(best_[i])])]);
      Beam& b = beams_.back();
      if (b.pending) {
        stamps_.push_back({frame_, b.prev_end, b.stamp});
        b.stamp = static_cast<index_t>(stamps_.size() - 1);
        b.pending = false;
      }
      links_[static_cast<std::size_t>(beams_.back().node)].beam_frame = static_cast<std::int32_t>(frame_ + 1);
    }
  }

  // Drops the prefixes and stamps no beam can reach any more, keeping the order of the rest (so
  // ties break the same way) once they outnumber the live ones; memory stays O(beam x length).
  void collect_garbage() {
    if (prefixes_.size() + stamps_.size() < std::max<std::size_t>(1 << 12, 4 * live_)) return;
    std::vector<index_t>& remap = remap_;
    remap.assign(prefixes_.size(), -1);
    for (const Beam& b : beams_)
      for (index_t n = b.node; n >= 0 && remap[static_cast<std::size_t>(n)] < 0;
           n = links_[static_cast<std::size_t>(n)].parent)
        remap[static_cast<std::size_t>(n)] = 0;
    index_t kept = 0;
    for (std::size_t n = 0; n < prefixes_.size(); ++n)
      if (remap[n] == 0) {
        remap[n] = kept;
        Links l = links_[n];
        l.parent = l.parent < 0 ? -1 : remap[static_cast<std::size_t>(l.parent)];
        l.first_child = l.next_sibling = -1;
        const auto to = static_cast<std::size_t>(kept++);
        links_[to] = l;
        bonus_[to] = bonus_[n];
        reach_[to] = reach_[n];
        prefixes_[to] = std::move(prefixes_[n]);
      }
    prefixes_.resize(static_cast<std::size_t>(kept));
    links_.resize(static_cast<std::size_t>(kept));
    bonus_.resize(static_cast<std::size_t>(kept));
    reach_.resize(static_cast<std::size_t>(kept));
    for (index_t n = kept - 1; n > 0; --n) {  // relink children (order within a list is immaterial)
      Links& l = links_[static_cast<std::size_t>(n)];
      l.next_sibling = links_[static_cast<std::size_t>(l.parent)].first_child;
      links_[static_cast<std::size_t>(l.parent)].first_child = static_cast<std::int32_t>(n);
    }
    std::vector<index_t>& stamp_map = stamp_map_;
    stamp_map.assign(stamps_.size(), -1);
    for (const Beam& b : beams_)
      for (index_t s = b.stamp; s >= 0 && stamp_map[static_cast<std::size_t>(s)] < 0;
           s = stamps_[static_cast<std::size_t>(s)].prev)
        stamp_map[static_cast<std::size_t>(s)] = 0;
    index_t kept_stamps = 0;
    for (std::size_t s = 0; s < stamps_.size(); ++s)
      if (stamp_map[s] == 0) {
        stamp_map[s] = kept_stamps;
        Stamp st = stamps_[s];
        st.prev = st.prev < 0 ? -1 : stamp_map[static_cast<std::size_t>(st.prev)];
        stamps_[static_cast<std::size_t>(kept_stamps++)] = st;
      }
    stamps_.resize(static_cast<std::size_t>(kept_stamps));
    for (Beam& b : beams_) {
      b.node = remap[static_cast<std::size_t>(b.node)];
      b.stamp = b.stamp < 0 ? -1 : stamp_map[static_cast<std::size_t>(b.stamp)];
    }
    slot_.assign(prefixes_.size(), -1);
    live_ = prefixes_.size() + stamps_.size();
  }

  Hypothesis hypothesis(const Beam& b, const Prefix& scored, bool final) const {
    Hypothesis h;
    h.acoustic = b.acoustic();
    h.score = h.acoustic + scored.bonus;
    h.lm = scored.lm;
    h.boost = scored.hot_done + (final ? 0.0 : scored.hot_partial);
    h.word_count = scored.words;
    for (index_t n = b.node; n > 0; n = links_[static_cast<std::size_t>(n)].parent)
      h.tokens.push_back(links_[static_cast<std::size_t>(n)].token);
    std::reverse(h.tokens.begin(), h.tokens.end());
    h.start_frames.resize(h.tokens.size());
    h.end_frames.resize(h.tokens.size());
    index_t end = b.last_end, s = b.stamp;
    for (std::size_t i = h.tokens.size(); i-- > 0; s = stamps_[static_cast<std::size_t>(s)].prev) {
      h.start_frames[i] = stamps_[static_cast<std::size_t>(s)].start;
      h.end_frames[i] = end;
      end = stamps_[static_cast<std::size_t>(s)].prev_end;
    }
    const int boundary = d_->o_.word_boundary;
    if (boundary < 0) return h;
    WordSpan w;
    for (std::size_t i = 0; i <= h.tokens.size(); ++i) {
      if (i == h.tokens.size() || h.tokens[i] == boundary) {
        if (!w.text.empty()) h.words.push_back(std::move(w));
        w = WordSpan{};
        continue;
      }
      if (w.text.empty()) w.start = h.start_frames[i];
      w.text += d_->tokens_.spelling(h.tokens[i]);
      w.end = h.end_frames[i];
    }
    return h;
  }

  const CtcBeamDecoder* d_;
  // The prefix trie, node 0 the empty prefix: its links and each prefix's score terms, apart
  // (the search walks links and bonuses; the LM and lexicon state is read only to extend).
  struct Links {
    std::int32_t token, first_child, next_sibling, beam_frame;  // beam_frame: last frame it was a beam into
    index_t parent;
  };
  std::vector<Links> links_;
  std::vector<double> bonus_;     // Q - ln p_ctc; -inf: the lexicon forbids the prefix
  std::vector<Reach> reach_;      // what extending the prefix may reach (read per beam and frame)
  std::vector<Prefix> prefixes_;
  std::vector<Stamp> stamps_;
  std::vector<Beam> beams_, next_;
  std::vector<double> score_;      // select(): the candidates that can be kept, their scores,
  std::vector<index_t> node_;      //   prefixes, indices in next_,
  std::vector<index_t> index_;
  std::vector<std::int32_t> best_;  //   and their ranking
  std::vector<index_t> slot_;      // prefix -> index in next_ (-1: none)
  std::vector<index_t> child_of_;  // token -> child of the beam being expanded (-1: none yet)
  std::vector<std::int32_t> order_;
  std::vector<char> tried_;       // label -> tried this frame (DS2 pruning)
  std::vector<std::int32_t> top_;  // front_labels scratch
  std::int32_t classes_ = 0;         // front_labels: how many class maxima this frame has (0: none yet)
  std::vector<float> class_max_f_;  // front_labels: the class maxima (float or double rows)
  std::vector<double> class_max_d_;
  template <class Y>
  std::vector<Y>& class_max_() {
    if constexpr (std::is_same_v<Y, float>) return class_max_f_;
    else return class_max_d_;
  }
  std::vector<char> in_top_;
  std::vector<std::uint64_t> visited_;  // label -> last expansion whose label loop reached it
  std::uint64_t expansion_ = 0;
  index_t count_ = 0, sorted_ = 0;
  bool rest_listed_ = true;  // order_[sorted_, V) holds the labels not yet ranked
  double floor_ = kNone;
  std::vector<double> heap_;            // min-heap of the best candidate scores at creation
  std::vector<index_t> remap_, stamp_map_;  // garbage collection scratch
  bool prune_ = false;
  std::size_t live_ = 0;
  index_t frame_ = 0;
  bool ended_ = false;
};

inline CtcBeamDecoder::Stream CtcBeamDecoder::begin() const { return Stream(*this); }

template <class V>
std::vector<Hypothesis> CtcBeamDecoder::decode(TensorView<V> log_probs, index_t item, index_t frames) const {
  const auto rows = detail::decode_rows(log_probs, DecodeInput{o_.blank, item, frames});
  Stream s(*this);
  s.run(rows);
  return s.end();
}

/// Prefix beam search without LM, lexicon or hotwords, over labels named "0", "1", ...: the
/// n best label sequences of one utterance (see CtcBeamDecoder::decode).
template <class V>
std::vector<Hypothesis> ctc_prefix_beam_search(TensorView<V> log_probs, const DecoderOptions& options = {},
                                               index_t item = 0, index_t frames = -1) {
  if (log_probs.rank() != 2 && log_probs.rank() != 3)
    throw ShapeError("decode.1", "log_probs must be [T, V] or [T, B, V], got shape " + log_probs.shape().str());
  std::vector<std::string> names;
  for (index_t k = 0; k < log_probs.dim(-1); ++k) names.push_back(std::to_string(k));
  if (names.empty()) throw ValueError("decode.5", "log_probs have no labels (V = 0)");
  return CtcBeamDecoder(TokenSet(std::move(names)), options).decode(log_probs, item, frames);
}

}  // namespace asrkit
