// asrkit/decode/metrics.hpp - word and character error rates (WER, CER) the way NIST sclite
// counts them: an edit-distance alignment of reference and hypothesis, then substitutions,
// deletions and insertions over the reference length.
//
//   auto c = asrkit::word_errors("the cat sat", "the cat sat down");  // c.insertions == 1
//   c.error_rate();                                                   // 1 / 3
//   auto a = asrkit::align_tokens(ref_words, hyp_words);              // a.pairs, a.counts
//   asrkit::CorpusScore corpus;
//   corpus.add("utt1", ref, hyp);  corpus.wer();  corpus.cer();
//
// The alignment minimises a weighted edit distance. The default weights are sclite's (correct 0,
// insertion 3, deletion 3, substitution 4; sclite.htm, "Dynamic Programming string alignment"),
// so totals match sclite's, which for some pairs count one more error than the plain Levenshtein
// minimum ("a b c d e" vs "d e x y z": 3 D + 3 I rather than 5 S). EditWeights::levenshtein()
// gives unit costs. Ties are broken like sclite: walking back from the end, prefer the diagonal
// (correct or substitution), then an insertion, then a deletion.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>

namespace asrkit {

/// Error counts of one alignment, or summed over a corpus with +=.
struct EditCounts {
  index_t substitutions = 0;
  index_t deletions = 0;
  index_t insertions = 0;
  index_t correct = 0;
  index_t reference_length = 0;  ///< correct + substitutions + deletions

  index_t errors() const { return substitutions + deletions + insertions; }
  index_t hypothesis_length() const { return correct + substitutions + insertions; }

  /// errors / reference_length; 0 for an empty reference with no errors, +inf with errors.
  double error_rate() const {
    if (reference_length == 0) return errors() == 0 ? 0.0 : std::numeric_limits<double>::infinity();
    return static_cast<double>(errors()) / static_cast<double>(reference_length);
  }

  EditCounts& operator+=(const EditCounts& o) {
    substitutions += o.substitutions;
    deletions += o.deletions;
    insertions += o.insertions;
    correct += o.correct;
    reference_length += o.reference_length;
    return *this;
  }
  friend EditCounts operator+(EditCounts a, const EditCounts& b) { return a += b; }
  friend bool operator==(const EditCounts& a, const EditCounts& b) {
    return a.substitutions == b.substitutions && a.deletions == b.deletions &&
           a.insertions == b.insertions && a.correct == b.correct &&
           a.reference_length == b.reference_length;
  }
  friend bool operator!=(const EditCounts& a, const EditCounts& b) { return !(a == b); }
};

/// Integer costs of the edit operations (a correct pair costs 0). Integers keep ties exact.
struct EditWeights {
  std::int64_t substitution = 4;
  std::int64_t insertion = 3;
  std::int64_t deletion = 3;

  static EditWeights sclite() { return {4, 3, 3}; }
  static EditWeights levenshtein() { return {1, 1, 1}; }

  /// Weighted cost of `c` under these weights.
  std::int64_t cost(const EditCounts& c) const {
    return substitution * c.substitutions + insertion * c.insertions + deletion * c.deletions;
  }
};

enum class EditOp : std::uint8_t { correct, substitution, insertion, deletion };

/// One column of an alignment. The index of the missing side is -1 (and its token is Token{}).
template <class Token>
struct AlignedPair {
  EditOp op;
  index_t ref_index;
  index_t hyp_index;
  Token ref;
  Token hyp;
};

template <class Token>
struct EditAlignment {
  std::vector<AlignedPair<Token>> pairs;  ///< in order, covering every ref and hyp token once
  EditCounts counts;
  std::int64_t cost = 0;  ///< weighted cost of the alignment (its minimum under the weights)
};

namespace detail {

inline void check_weights(const EditWeights& w) {
  if (w.substitution < 1 || w.insertion < 1 || w.deletion < 1 ||
      w.substitution > (std::int64_t{1} << 40) || w.insertion > (std::int64_t{1} << 40) ||
      w.deletion > (std::int64_t{1} << 40))
    throw ValueError("metrics.2", detail::str("EditWeights: substitution, insertion and deletion "
                                              "must be in [1, 2^40], got ", w.substitution, ", ",
                                              w.insertion, ", ", w.deletion));
}

// Back-pointer of a DP cell; the order of the enumerators is the tie-break priority.
enum class EditStep : std::uint8_t { diagonal, insertion, deletion, none };

// Best step into cell (i, j) from the costs of its three predecessors (-1: not reachable).
// Priority on ties is diagonal, insertion, deletion: that is sclite's choice on every case we
// compared (tests/reference/metrics_parity.cpp).
inline std::pair<std::int64_t, EditStep> best_step(std::int64_t diag, std::int64_t ins,
                                                   std::int64_t del) {
  std::int64_t best = diag;
  EditStep step = EditStep::diagonal;
  if (ins < best) best = ins, step = EditStep::insertion;
  if (del < best) best = del, step = EditStep::deletion;
  return {best, step};
}

struct CountCell {
  std::int64_t cost = 0;
  EditCounts counts;
};

}  // namespace detail

/// Edit counts of the best alignment of `ref` and `hyp` (same tie-break as align_tokens, so the
/// counts are identical) in O(min(|ref|, |hyp|)) memory. Throws ValueError asrkit.metrics.2 for
/// weights < 1.
template <class Token>
EditCounts edit_counts(const std::vector<Token>& ref, const std::vector<Token>& hyp,
                       const EditWeights& weights = {}) {
  detail::check_weights(weights);
  const index_t n = static_cast<index_t>(ref.size()), m = static_cast<index_t>(hyp.size());
  // Cell (i, j) aligns ref[0, i) with hyp[0, j). Keep one line of cells along the shorter side;
  // the recurrence per cell is the same either way, so the tie-break is too.
  const bool lines_over_hyp = m <= n;
  const index_t len = lines_over_hyp ? m : n, outer = lines_over_hyp ? n : m;
  std::vector<detail::CountCell> prev(static_cast<std::size_t>(len + 1)), cur(prev.size());
  auto cell = [&](index_t i, index_t j, const detail::CountCell* diag, const detail::CountCell* ins,
                  const detail::CountCell* del) {
    detail::CountCell out;
    const bool same =
        diag && ref[static_cast<std::size_t>(i - 1)] == hyp[static_cast<std::size_t>(j - 1)];
    const std::int64_t inf = std::numeric_limits<std::int64_t>::max();
    const std::int64_t cd = diag ? diag->cost + (same ? 0 : weights.substitution) : inf;
    const std::int64_t ci = ins ? ins->cost + weights.insertion : inf;
    const std::int64_t cl = del ? del->cost + weights.deletion : inf;
    const auto [cost, step] = detail::best_step(cd, ci, cl);
    out.cost = cost;
    if (step == detail::EditStep::diagonal) {
      out.counts = diag->counts;
      ++(same ? out.counts.correct : out.counts.substitutions);
      ++out.counts.reference_length;
    } else if (step == detail::EditStep::insertion) {
      out.counts = ins->counts;
      ++out.counts.insertions;
    } else {
      out.counts = del->counts;
      ++out.counts.deletions;
      ++out.counts.reference_length;
    }
    return out;
  };
  for (index_t k = 0; k <= outer; ++k) {
    for (index_t l = 0; l <= len; ++l) {
      const index_t i = lines_over_hyp ? k : l, j = lines_over_hyp ? l : k;
      const auto L = static_cast<std::size_t>(l);
      if (i == 0 && j == 0) {
        cur[L] = {};
        continue;
      }
      // Predecessors: diagonal (i-1, j-1); insertion (i, j-1); deletion (i-1, j).
      const detail::CountCell* diag = (i > 0 && j > 0) ? &prev[L - 1] : nullptr;
      const detail::CountCell *ins = nullptr, *del = nullptr;
      if (lines_over_hyp) {
        if (j > 0) ins = &cur[L - 1];
        if (i > 0) del = &prev[L];
      } else {
        if (j > 0) ins = &prev[L];
        if (i > 0) del = &cur[L - 1];
      }
      cur[L] = cell(i, j, diag, ins, del);
    }
    std::swap(prev, cur);
  }
  return prev[static_cast<std::size_t>(len)].counts;
}

/// The best alignment of `ref` and `hyp` under `weights` (default: sclite's 4/3/3), ties broken
/// like sclite. O(|ref| |hyp|) bytes for the back-pointers. Token needs operator== and a default
/// constructor. Throws ValueError asrkit.metrics.2 for weights < 1.
template <class Token>
EditAlignment<Token> align_tokens(const std::vector<Token>& ref, const std::vector<Token>& hyp,
                                  const EditWeights& weights = {}) {
  detail::check_weights(weights);
  const auto n = ref.size(), m = hyp.size();
  std::vector<detail::EditStep> back((n + 1) * (m + 1), detail::EditStep::none);
  std::vector<std::int64_t> prev(m + 1), cur(m + 1);
  const std::int64_t inf = std::numeric_limits<std::int64_t>::max();
  for (std::size_t i = 0; i <= n; ++i) {
    for (std::size_t j = 0; j <= m; ++j) {
      if (i == 0 && j == 0) {
        cur[0] = 0;
        continue;
      }
      const std::int64_t cd =
          (i > 0 && j > 0) ? prev[j - 1] + (ref[i - 1] == hyp[j - 1] ? 0 : weights.substitution)
                           : inf;
      const std::int64_t ci = j > 0 ? cur[j - 1] + weights.insertion : inf;
      const std::int64_t cl = i > 0 ? prev[j] + weights.deletion : inf;
      const auto [cost, step] = detail::best_step(cd, ci, cl);
      cur[j] = cost;
      back[i * (m + 1) + j] = step;
    }
    std::swap(prev, cur);
  }
  EditAlignment<Token> out;
  out.cost = prev[m];
  std::size_t i = n, j = m;
  while (i > 0 || j > 0) {
    const auto step = back[i * (m + 1) + j];
    if (step == detail::EditStep::diagonal) {
      --i, --j;
      const bool same = ref[i] == hyp[j];
      out.pairs.push_back({same ? EditOp::correct : EditOp::substitution, static_cast<index_t>(i),
                           static_cast<index_t>(j), ref[i], hyp[j]});
      ++(same ? out.counts.correct : out.counts.substitutions);
      ++out.counts.reference_length;
    } else if (step == detail::EditStep::insertion) {
      --j;
      out.pairs.push_back({EditOp::insertion, -1, static_cast<index_t>(j), Token{}, hyp[j]});
      ++out.counts.insertions;
    } else {
      --i;
      out.pairs.push_back({EditOp::deletion, static_cast<index_t>(i), -1, ref[i], Token{}});
      ++out.counts.deletions;
      ++out.counts.reference_length;
    }
  }
  std::reverse(out.pairs.begin(), out.pairs.end());
  return out;
}

/// How text becomes tokens before scoring. Whitespace means the ASCII whitespace characters.
struct TextNormalization {
  bool lowercase = false;          ///< ASCII A-Z only (no Unicode case tables)
  bool strip_punctuation = false;  ///< ASCII punctuation, except an apostrophe inside a word
  /// true: runs of whitespace separate words (leading/trailing ignored). false: every whitespace
  /// character is a separator, so runs give empty words (and kept spaces each count for CER).
  bool collapse_whitespace = true;
  bool keep_spaces = false;  ///< characters(): keep the spaces between words as " " tokens
};

namespace detail {

inline bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline bool is_ascii_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_ascii_punct(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

// Applies lowercase / strip_punctuation to one word (bytes >= 0x80 are left alone, so UTF-8
// sequences pass through intact).
inline std::string normalize_word(const std::string& w, const TextNormalization& norm) {
  std::string out;
  out.reserve(w.size());
  for (std::size_t k = 0; k < w.size(); ++k) {
    char c = w[k];
    if (norm.strip_punctuation && is_ascii_punct(c)) {
      // Keep "don't" one word: an apostrophe between two letters/digits stays.
      const bool inner_apostrophe = c == '\'' && k > 0 && k + 1 < w.size() &&
                                    is_ascii_alnum(w[k - 1]) && is_ascii_alnum(w[k + 1]);
      if (!inner_apostrophe) continue;
    }
    if (norm.lowercase && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out.push_back(c);
  }
  return out;
}

// Splits on whitespace per collapse_whitespace, before normalising each piece.
inline std::vector<std::string> split_raw(const std::string& text, bool collapse) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  for (char c : text) {
    if (is_ascii_space(c)) {
      if (!collapse || in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (!collapse || in_word) out.push_back(cur);
  return out;
}

// Appends the code points of `s` (one string each) to `out`; throws on malformed UTF-8.
inline void split_code_points(const std::string& s, std::vector<std::string>& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t size = s.size();
  std::size_t k = 0;
  while (k < size) {
    const unsigned char b = p[k];
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) len = 1, cp = b;
    else if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1Fu;
    else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0Fu;
    else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07u;
    bool ok = len > 0 && k + len <= size;
    for (std::size_t t = 1; ok && t < len; ++t) {
      ok = (p[k + t] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[k + t] & 0x3Fu);
    }
    // Reject overlong forms, UTF-16 surrogates and values past U+10FFFF.
    static const std::uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (ok) ok = cp >= min_cp[len] && !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
    if (!ok)
      throw ValueError("metrics.1", detail::str("characters: text must be valid UTF-8, got a "
                                                "malformed sequence at byte ", k, " (0x", std::hex,
                                                static_cast<unsigned>(b), std::dec, ")"));
    out.emplace_back(s, k, len);
    k += len;
  }
}

}  // namespace detail

/// The words of `text` after normalisation. Words that normalisation empties (a lone "-" with
/// strip_punctuation) are dropped when collapse_whitespace is on.
inline std::vector<std::string> words(const std::string& text, const TextNormalization& norm = {}) {
  std::vector<std::string> out;
  for (const auto& raw : detail::split_raw(text, norm.collapse_whitespace)) {
    auto w = detail::normalize_word(raw, norm);
    if (norm.collapse_whitespace && w.empty()) continue;
    out.push_back(std::move(w));
  }
  return out;
}

/// The UTF-8 code points of the normalised words, in order; with keep_spaces a " " token between
/// words. Code points, not grapheme clusters: "e" + U+0301 is two tokens. Throws ValueError
/// asrkit.metrics.1 on malformed UTF-8.
inline std::vector<std::string> characters(const std::string& text,
                                           const TextNormalization& norm = {}) {
  std::vector<std::string> out;
  const auto ws = words(text, norm);
  for (std::size_t k = 0; k < ws.size(); ++k) {
    if (norm.keep_spaces && k > 0) out.emplace_back(" ");
    detail::split_code_points(ws[k], out);
  }
  return out;
}

/// Word error counts of `hyp_text` against `ref_text` (word_errors(...).error_rate() is the WER).
inline EditCounts word_errors(const std::string& ref_text, const std::string& hyp_text,
                              const TextNormalization& norm = {},
                              const EditWeights& weights = {}) {
  return edit_counts(words(ref_text, norm), words(hyp_text, norm), weights);
}

/// Character (code point) error counts; .error_rate() is the CER. Throws asrkit.metrics.1 on
/// malformed UTF-8.
inline EditCounts char_errors(const std::string& ref_text, const std::string& hyp_text,
                              const TextNormalization& norm = {},
                              const EditWeights& weights = {}) {
  return edit_counts(characters(ref_text, norm), characters(hyp_text, norm), weights);
}

/// WER and CER over a corpus: add (id, reference, hypothesis) triples, read the totals.
class CorpusScore {
 public:
  struct Utterance {
    std::string id;
    EditCounts words;
    EditCounts chars;
  };

  explicit CorpusScore(const TextNormalization& norm = {}, const EditWeights& weights = {})
      : norm_(norm), weights_(weights) {
    detail::check_weights(weights_);
  }

  /// Scores one utterance and adds it to the totals. Throws ValueError asrkit.metrics.3 when
  /// `id` was added before, asrkit.metrics.1 on malformed UTF-8 (nothing is added then).
  const Utterance& add(const std::string& id, const std::string& ref_text,
                       const std::string& hyp_text) {
    if (ids_.count(id))
      throw ValueError("metrics.3",
                       detail::str("CorpusScore::add: utterance id must be unique, got '", id,
                                   "' a second time"));
    Utterance u{id, word_errors(ref_text, hyp_text, norm_, weights_),
                char_errors(ref_text, hyp_text, norm_, weights_)};
    ids_.insert(id);
    words_ += u.words;
    chars_ += u.chars;
    if (u.words.errors() > 0) ++sentence_errors_;
    utterances_.push_back(std::move(u));
    return utterances_.back();
  }

  const EditCounts& word_counts() const { return words_; }
  const EditCounts& char_counts() const { return chars_; }
  double wer() const { return words_.error_rate(); }
  double cer() const { return chars_.error_rate(); }
  index_t sentences() const { return static_cast<index_t>(utterances_.size()); }
  /// Utterances with at least one word error (sclite's S.Err numerator).
  index_t sentence_errors() const { return sentence_errors_; }
  const std::vector<Utterance>& utterances() const { return utterances_; }

 private:
  TextNormalization norm_;
  EditWeights weights_;
  EditCounts words_, chars_;
  index_t sentence_errors_ = 0;
  std::vector<Utterance> utterances_;
  std::unordered_set<std::string> ids_;
};

}  // namespace asrkit
