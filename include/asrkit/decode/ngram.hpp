// asrkit/decode/ngram.hpp - a back-off n-gram language model for decoding, built from ARPA.
//
//   asrkit::NgramLm lm(asrkit::read_arpa("lm.arpa"));
//   asrkit::LmState s = lm.begin_sentence(), next;
//   float lp = lm.score(s, lm.word_id("cat"), &next);   // log10 p(cat | <s>)
//   lp += lm.end_sentence(next);                        // log10 p(</s> | ... cat)
//   double total = lm.score_sentence({"the", "cat"});   // log10, <s> and </s> included
//   double nats = asrkit::log10_to_ln(total);
//
// All scores are log10, as in the ARPA file (log10_to_ln converts). Scoring follows the usual
// back-off recursion: p(w | h) is the n-gram's own probability when (h, w) is listed, else
// backoff(h) + p(w | h minus its oldest word), with backoff 0 for an unlisted h.
//
// An LmState is the context: at most order-1 word ids, newest first, in a fixed array. After each
// word it is cut to the longest suffix of the history that can still matter (a prefix of some
// longer n-gram, or a history with a non-zero back-off), as KenLM does, so that equal futures
// give equal states and hypotheses can be merged by state. The cut changes no score.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/io/arpa.hpp>

namespace asrkit {

using WordId = std::uint32_t;

/// Highest order NgramLm supports (the state holds order - 1 word ids).
inline constexpr int kMaxLmOrder = 8;

/// ln(x) = log10(x) * ln(10).
inline constexpr double kLn10 = 2.302585092994045684;
inline double log10_to_ln(double log10_value) noexcept { return log10_value * kLn10; }
inline double ln_to_log10(double ln_value) noexcept { return ln_value / kLn10; }

/// A language-model context: words[0..length) are the last word ids, newest first. Slots past
/// `length` are always 0, so states compare and hash as plain bytes.
struct LmState {
  std::array<WordId, kMaxLmOrder - 1> words{};
  std::uint8_t length = 0;

  friend bool operator==(const LmState& a, const LmState& b) noexcept {
    return a.length == b.length && a.words == b.words;
  }
  friend bool operator!=(const LmState& a, const LmState& b) noexcept { return !(a == b); }
  std::size_t hash() const noexcept { return detail::IdTupleTable::hash(words.data(), length); }
};

/// Hash functor for unordered containers of states (std::hash<LmState> works too).
struct LmStateHash {
  std::size_t operator()(const LmState& s) const noexcept { return s.hash(); }
};

struct NgramLmOptions {
  /// log10 probability of a word that is not in the vocabulary when the model has no <unk>
  /// (KenLM's convention is -100). With <unk> in the model, unknown words score as <unk>.
  float unknown_log10_prob = -100.f;
};

class NgramLm {
 public:
  /// Builds the model from a parsed ARPA file. ValueError "ngram.1" if its order is not 1..8,
  /// "ngram.3" if options.unknown_log10_prob is NaN or positive.
  explicit NgramLm(const ArpaModel& model, const NgramLmOptions& options = {})
      : NgramLm(ArpaModel(model), options) {}
  explicit NgramLm(ArpaModel&& model, const NgramLmOptions& options = {}) : options_(options) {
    if (model.order() < 1 || model.order() > kMaxLmOrder)
      throw ValueError("ngram.1", detail::str("NgramLm: the model's order must be 1..", kMaxLmOrder,
                                              ", got ", model.order()));
    if (std::isnan(options.unknown_log10_prob) || options.unknown_log10_prob > 0.f)
      throw ValueError("ngram.3", detail::str("NgramLm: unknown_log10_prob must be a log10 "
                                              "probability (<= 0), got ",
                                              options.unknown_log10_prob));
    order_ = model.order();
    words_ = std::move(model.words);
    vocab_.reserve(words_.size());
    for (std::size_t i = 0; i < words_.size(); ++i)
      vocab_.emplace(words_[i], static_cast<WordId>(i));
    levels_.resize(static_cast<std::size_t>(order_));
    for (int k = 0; k < order_; ++k) {
      ArpaOrder& o = model.orders[static_cast<std::size_t>(k)];
      Level& level = levels_[static_cast<std::size_t>(k)];
      level.table = std::move(o.table);
      level.entries.resize(level.table.size());
      for (std::size_t i = 0; i < level.entries.size(); ++i)
        level.entries[i] =
            Entry{o.log10_prob[i], o.log10_backoff[i], true, o.log10_backoff[i] != 0.f};
    }
    // Every prefix of an n-gram is a context worth keeping in a state. Files that omit a prefix
    // get a placeholder entry (no probability, back-off 0); going down from the top order makes
    // the placeholders' own prefixes exist too.
    for (int k = order_ - 1; k >= 1; --k) {
      Level& level = levels_[static_cast<std::size_t>(k)];
      Level& lower = levels_[static_cast<std::size_t>(k - 1)];
      const std::size_t count = level.table.size();
      for (std::size_t i = 0; i < count; ++i) {
        const auto [index, inserted] = lower.table.insert(level.table.tuple(i));
        if (inserted) lower.entries.push_back(Entry{0.f, 0.f, false, true});
        lower.entries[index].in_state = true;
      }
    }
    has_unk_ = lookup("<unk>", unk_);
    if (!has_unk_) unk_ = static_cast<WordId>(words_.size());
    has_bos_ = lookup("<s>", bos_);
    has_eos_ = lookup("</s>", eos_);
    if (!has_eos_) eos_ = unk_;
  }

  int order() const noexcept { return order_; }
  /// Number of words in the vocabulary (the 1-grams); ids are 0..vocab_size()-1.
  std::size_t vocab_size() const noexcept { return words_.size(); }
  /// Number of n-grams of order n (1..order()) listed in the file.
  std::size_t ngram_count(int n) const {
    if (n < 1 || n > order_) return 0;
    std::size_t c = 0;
    for (const Entry& e : levels_[static_cast<std::size_t>(n - 1)].entries) c += e.is_ngram;
    return c;
  }
  /// The id of `word`, or unk_id() when it is not in the vocabulary.
  WordId word_id(std::string_view word) const {
    WordId id = unk_;
    return lookup(word, id) ? id : unk_;
  }
  /// The spelling of a vocabulary id (ids from word_id; not unk_id() without <unk>).
  const std::string& word(WordId id) const { return words_.at(id); }
  /// True when the model lists <unk>; otherwise unk_id() == vocab_size() and unknown words
  /// score options.unknown_log10_prob and reset the state.
  bool has_unk() const noexcept { return has_unk_; }
  WordId unk_id() const noexcept { return unk_; }
  WordId bos_id() const noexcept { return has_bos_ ? bos_ : unk_; }
  WordId eos_id() const noexcept { return eos_; }

  /// The empty context (no history: unigram probabilities).
  LmState null_context() const noexcept { return LmState{}; }
  /// The context after <s> (the empty context when the model has no <s>).
  LmState begin_sentence() const noexcept {
    LmState s;
    if (has_bos_) {
      s.words[0] = bos_;
      s.length = 1;
      truncate(s);
    }
    return s;
  }

  /// log10 p(w | in). When `out` is not null it receives the context after w (it may be `&in`).
  /// ValueError "ngram.2" if w is neither a vocabulary id nor unk_id().
  float score(const LmState& in, WordId w, LmState* out) const {
    if (w >= words_.size()) {
      if (w == unk_ && !has_unk_) {
        if (out != nullptr) *out = LmState{};
        return options_.unknown_log10_prob;
      }
      throw ValueError("ngram.2", detail::str("NgramLm::score: word id ", w, " is outside the ",
                                              "vocabulary (", words_.size(), " words",
                                              has_unk_ ? "" : ", unk_id() = vocab_size()", ")"));
    }
    const std::size_t history =
        std::min<std::size_t>(in.length, static_cast<std::size_t>(order_ - 1));
    // key[0..history) = the context oldest first, key[history] = w: the n-gram of length j + 1
    // with j context words is key[history - j .. history].
    std::array<WordId, kMaxLmOrder> key{};
    for (std::size_t i = 0; i < history; ++i) key[history - 1 - i] = in.words[i];
    key[history] = w;
    // Longest listed n-gram ending in w; unigrams always are (w is in the vocabulary).
    float prob = levels_[0].entries[w].log10_prob;
    std::size_t matched = 0;
    for (std::size_t j = history; j >= 1; --j) {
      const Level& level = levels_[j];
      const std::uint32_t e = level.table.find(key.data() + (history - j));
      if (e != detail::IdTupleTable::npos && level.entries[e].is_ngram) {
        prob = level.entries[e].log10_prob;
        matched = j;
        break;
      }
    }
    // Back-off weights of the contexts longer than the match (0 where a context is unlisted).
    for (std::size_t j = matched + 1; j <= history; ++j) {
      const Level& level = levels_[j - 1];
      const std::uint32_t e = level.table.find(key.data() + (history - j));
      if (e != detail::IdTupleTable::npos) prob += level.entries[e].log10_backoff;
    }
    if (out != nullptr) {
      LmState next;
      const std::size_t keep =
          std::min<std::size_t>(history + 1, static_cast<std::size_t>(order_ - 1));
      next.words[0] = w;
      for (std::size_t i = 1; i < keep; ++i) next.words[i] = in.words[i - 1];
      next.length = static_cast<std::uint8_t>(keep);
      truncate(next);
      *out = next;
    }
    return prob;
  }

  /// log10 p(</s> | in) (options.unknown_log10_prob when the model has no </s> and no <unk>).
  float end_sentence(const LmState& in) const { return score(in, eos_, nullptr); }

  /// log10 probability of a sentence: <s> w1 .. wn </s> (each end optional). Words not in the
  /// vocabulary score as <unk> (or unknown_log10_prob). log10_to_ln converts to natural log.
  template <class Words>
  double score_sentence(const Words& words, bool bos = true, bool eos = true) const {
    LmState state = bos ? begin_sentence() : null_context();
    double total = 0.0;
    for (const auto& w : words) total += score(state, word_id(std::string_view(w)), &state);
    if (eos) total += end_sentence(state);
    return total;
  }
  double score_sentence(std::initializer_list<std::string_view> words, bool bos = true,
                        bool eos = true) const {
    return score_sentence<std::initializer_list<std::string_view>>(words, bos, eos);
  }

 private:
  struct Entry {
    float log10_prob;
    float log10_backoff;
    bool is_ngram;  ///< false: a placeholder for a prefix the file did not list
    bool in_state;  ///< a prefix of a longer n-gram, or a non-zero back-off
  };
  struct Level {
    detail::IdTupleTable table;
    std::vector<Entry> entries;  // parallel to table's indices
  };

  bool lookup(std::string_view word, WordId& id) const {
    // The map owns its keys (views into words_ would dangle when the model is copied); short
    // words fit std::string's inline buffer, so most look-ups do not allocate.
    const auto it = vocab_.find(std::string(word));
    if (it == vocab_.end()) return false;
    id = it->second;
    return true;
  }

  // Cuts s (newest first) to its longest prefix that is a context in the model.
  void truncate(LmState& s) const noexcept {
    std::array<WordId, kMaxLmOrder> key{};
    std::size_t keep = s.length;
    for (; keep >= 1; --keep) {
      for (std::size_t i = 0; i < keep; ++i) key[keep - 1 - i] = s.words[i];
      const Level& level = levels_[keep - 1];
      const std::uint32_t e = level.table.find(key.data());
      if (e != detail::IdTupleTable::npos && level.entries[e].in_state) break;
    }
    for (std::size_t i = keep; i < s.words.size(); ++i) s.words[i] = 0;
    s.length = static_cast<std::uint8_t>(keep);
  }

  NgramLmOptions options_;
  int order_ = 0;
  std::vector<std::string> words_;
  std::unordered_map<std::string, WordId> vocab_;
  std::vector<Level> levels_;  // levels_[k]: the (k+1)-grams and placeholder contexts
  WordId unk_ = 0, bos_ = 0, eos_ = 0;
  bool has_unk_ = false, has_bos_ = false, has_eos_ = false;
};

/// Reads an ARPA file and builds the model (errors as read_arpa and NgramLm).
inline NgramLm load_ngram_lm(const std::string& path, const NgramLmOptions& options = {}) {
  return NgramLm(read_arpa(path), options);
}

}  // namespace asrkit

namespace std {
template <>
struct hash<asrkit::LmState> {
  std::size_t operator()(const asrkit::LmState& s) const noexcept { return s.hash(); }
};
}  // namespace std
