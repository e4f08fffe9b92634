#include <asrkit/decode/metrics.hpp>

#include <asrkit/core/rng.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "../test_util.hpp"

using asrkit::EditCounts;
using asrkit::EditOp;
using asrkit::EditWeights;
using asrkit::index_t;
using Strings = std::vector<std::string>;

namespace {

EditCounts counts(index_t s, index_t d, index_t i, index_t c) {
  EditCounts e;
  e.substitutions = s, e.deletions = d, e.insertions = i, e.correct = c;
  e.reference_length = c + s + d;
  return e;
}

// Textbook weighted edit distance (full table), independent of the header's code.
std::int64_t simple_dp(const std::vector<int>& a, const std::vector<int>& b, const EditWeights& w) {
  std::vector<std::vector<std::int64_t>> d(a.size() + 1, std::vector<std::int64_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = w.deletion * static_cast<std::int64_t>(i);
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = w.insertion * static_cast<std::int64_t>(j);
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j)
      d[i][j] = std::min({d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : w.substitution),
                          d[i - 1][j] + w.deletion, d[i][j - 1] + w.insertion});
  return d[a.size()][b.size()];
}

// Minimum over every alignment, enumerated recursively (tiny inputs only).
std::int64_t brute_force(const std::vector<int>& a, const std::vector<int>& b, std::size_t i,
                         std::size_t j, const EditWeights& w) {
  if (i == a.size() && j == b.size()) return 0;
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  if (i < a.size() && j < b.size())
    best = std::min(best, (a[i] == b[j] ? 0 : w.substitution) + brute_force(a, b, i + 1, j + 1, w));
  if (i < a.size()) best = std::min(best, w.deletion + brute_force(a, b, i + 1, j, w));
  if (j < b.size()) best = std::min(best, w.insertion + brute_force(a, b, i, j + 1, w));
  return best;
}

std::vector<int> random_tokens(asrkit::Rng& rng, std::uint64_t max_len, std::uint64_t vocab) {
  std::vector<int> v(rng.uniform_int(max_len + 1));
  for (auto& t : v) t = static_cast<int>(rng.uniform_int(vocab));
  return v;
}

// The alignment covers both sequences in order and its counts and cost agree with its pairs.
template <class Token>
void check_consistent(const asrkit::EditAlignment<Token>& a, const std::vector<Token>& ref,
                      const std::vector<Token>& hyp, const EditWeights& w) {
  std::vector<Token> r, h;
  EditCounts c;
  for (const auto& p : a.pairs) {
    if (p.op != EditOp::insertion) {
      REQUIRE(p.ref_index == static_cast<index_t>(r.size()));
      r.push_back(p.ref);
      ++c.reference_length;
    }
    if (p.op != EditOp::deletion) {
      REQUIRE(p.hyp_index == static_cast<index_t>(h.size()));
      h.push_back(p.hyp);
    }
    REQUIRE((p.op == EditOp::insertion) == (p.ref_index == -1));
    REQUIRE((p.op == EditOp::deletion) == (p.hyp_index == -1));
    if (p.op == EditOp::correct || p.op == EditOp::substitution)
      REQUIRE((p.ref == p.hyp) == (p.op == EditOp::correct));
    c.insertions += p.op == EditOp::insertion;
    c.deletions += p.op == EditOp::deletion;
    c.correct += p.op == EditOp::correct;
    c.substitutions += p.op == EditOp::substitution;
  }
  REQUIRE(r == ref);
  REQUIRE(h == hyp);
  REQUIRE(c == a.counts);
  REQUIRE(w.cost(a.counts) == a.cost);
}

}  // namespace

TEST_CASE("edit counts of textbook cases", "[decode][metrics]") {
  const Strings none, abc{"a", "b", "c"};
  CHECK(asrkit::edit_counts(none, none) == counts(0, 0, 0, 0));
  CHECK(asrkit::edit_counts(abc, abc) == counts(0, 0, 0, 3));
  CHECK(asrkit::edit_counts(abc, none) == counts(0, 3, 0, 0));  // all deletions
  CHECK(asrkit::edit_counts(none, abc) == counts(0, 0, 3, 0));  // all insertions
  CHECK(asrkit::edit_counts(abc, Strings{"a", "x", "c"}) == counts(1, 0, 0, 2));
  CHECK(asrkit::edit_counts(abc, Strings{"a", "c", "d"}) == counts(0, 1, 1, 2));
  // kitten -> sitting: 2 substitutions and 1 insertion under either weighting.
  const Strings kitten{"k", "i", "t", "t", "e", "n"}, sitting{"s", "i", "t", "t", "i", "n", "g"};
  CHECK(asrkit::edit_counts(kitten, sitting) == counts(2, 0, 1, 4));
  CHECK(asrkit::edit_counts(kitten, sitting, EditWeights::levenshtein()) == counts(2, 0, 1, 4));

  CHECK(counts(1, 1, 1, 3).error_rate() == Approx(0.6));
  CHECK(counts(0, 0, 0, 0).error_rate() == 0.0);
  CHECK(std::isinf(counts(0, 0, 2, 0).error_rate()));  // errors against an empty reference
  auto total = counts(1, 0, 0, 2);
  total += counts(0, 2, 1, 1);
  CHECK(total == counts(1, 2, 1, 3));
  CHECK(total.reference_length == 6);
  CHECK(total.hypothesis_length() == 5);
}

TEST_CASE("sclite weights count 3 D + 3 I where Levenshtein counts 5 S", "[decode][metrics]") {
  // sclite 2.10 reports "D D D C C I I I" for this pair (tests/reference checks it live).
  const auto c = asrkit::word_errors("a b c d e", "d e x y z");
  CHECK(c == counts(0, 3, 3, 2));
  CHECK(asrkit::word_errors("a b c d e", "d e x y z", {}, EditWeights::levenshtein()) ==
        counts(5, 0, 0, 0));
}

TEST_CASE("ties are broken like sclite: diagonal, then insertion, then deletion from the end",
          "[decode][metrics]") {
  // Each expectation is what sclite -o pra prints for the pair.
  auto ops = [](const std::string& r, const std::string& h) {
    std::string s;
    for (const auto& p : asrkit::align_tokens(asrkit::words(r), asrkit::words(h)).pairs)
      s += "CSID"[static_cast<int>(p.op)];
    return s;
  };
  CHECK(ops("a b", "c") == "DS");
  CHECK(ops("a b", "b c") == "DCI");
  CHECK(ops("a b c", "x") == "DDS");
  CHECK(ops("a", "x y") == "IS");
  CHECK(ops("a b", "c d e") == "ISS");
  CHECK(ops("a b a", "b a b") == "DCCI");
  CHECK(ops("a x b", "a y z b") == "CISC");
  CHECK(ops("", "") == "");
}

TEST_CASE("align_tokens finds the minimum cost (brute force and a simple DP)",
          "[decode][metrics]") {
  asrkit::Rng rng(7);
  for (const auto& w : {EditWeights::levenshtein(), EditWeights::sclite(), EditWeights{2, 1, 3}}) {
    for (int trial = 0; trial < 300; ++trial) {
      const auto a = random_tokens(rng, 6, 3), b = random_tokens(rng, 6, 3);
      const auto al = asrkit::align_tokens(a, b, w);
      check_consistent(al, a, b, w);
      REQUIRE(al.cost == simple_dp(a, b, w));
      REQUIRE(al.cost == brute_force(a, b, 0, 0, w));
      REQUIRE(asrkit::edit_counts(a, b, w) == al.counts);  // the O(min) path, either orientation
    }
  }
  // Longer sequences against the simple DP only.
  for (int trial = 0; trial < 100; ++trial) {
    const auto a = random_tokens(rng, 40, 5), b = random_tokens(rng, 40, 5);
    const auto al = asrkit::align_tokens(a, b);
    REQUIRE(al.cost == simple_dp(a, b, EditWeights::sclite()));
    REQUIRE(asrkit::edit_counts(a, b) == al.counts);
    REQUIRE(asrkit::align_tokens(a, b, EditWeights::levenshtein()).counts.errors() ==
            simple_dp(a, b, EditWeights::levenshtein()));
  }
}

TEST_CASE("swapping reference and hypothesis swaps deletions and insertions",
          "[decode][metrics]") {
  asrkit::Rng rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const auto a = random_tokens(rng, 10, 4), b = random_tokens(rng, 10, 4);
    const auto ab = asrkit::align_tokens(a, b), ba = asrkit::align_tokens(b, a);
    REQUIRE(ab.cost == ba.cost);
    const auto lab = asrkit::edit_counts(a, b, EditWeights::levenshtein());
    const auto lba = asrkit::edit_counts(b, a, EditWeights::levenshtein());
    REQUIRE(lab.errors() == lba.errors());
    // I - D is fixed by the lengths whatever the tie-break.
    REQUIRE(ab.counts.insertions - ab.counts.deletions ==
            ba.counts.deletions - ba.counts.insertions);
    REQUIRE(ab.counts.reference_length == static_cast<index_t>(a.size()));
    REQUIRE(ba.counts.hypothesis_length() == static_cast<index_t>(a.size()));
  }
}

TEST_CASE("words and normalisation", "[decode][metrics]") {
  CHECK(asrkit::words("  The  cat,\tsat.\n") == Strings{"The", "cat,", "sat."});
  asrkit::TextNormalization norm;
  norm.lowercase = true;
  norm.strip_punctuation = true;
  CHECK(asrkit::words("  The  cat,\tsat. Don't -- 'go' \xC3\x89T\xC3\x89", norm) ==
        Strings{"the", "cat", "sat", "don't", "go", "\xC3\x89t\xC3\x89"});  // ASCII case only
  asrkit::TextNormalization keep;
  keep.collapse_whitespace = false;
  CHECK(asrkit::words(" a  b", keep) == Strings{"", "a", "", "b"});
  CHECK(asrkit::words("").empty());
  CHECK(asrkit::word_errors("The cat sat", "the cat, sat", norm).errors() == 0);
  CHECK(asrkit::word_errors("The cat sat", "the cat, sat").substitutions == 2);
}

TEST_CASE("characters are UTF-8 code points", "[decode][metrics]") {
  // "naïve 日本" : 1-, 2- and 3-byte sequences; spaces dropped unless kept.
  const std::string text = "na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC";
  CHECK(asrkit::characters(text) ==
        Strings{"n", "a", "\xC3\xAF", "v", "e", "\xE6\x97\xA5", "\xE6\x9C\xAC"});
  asrkit::TextNormalization spaces;
  spaces.keep_spaces = true;
  CHECK(asrkit::characters(" a  b ", spaces) == Strings{"a", " ", "b"});
  spaces.collapse_whitespace = false;
  CHECK(asrkit::characters("a  b", spaces) == Strings{"a", " ", " ", "b"});
  CHECK(asrkit::characters("\xF0\x9F\x98\x80x") == Strings{"\xF0\x9F\x98\x80", "x"});  // 4 bytes

  // CER: one substituted code point (not two bytes) out of 7.
  const auto c = asrkit::char_errors(text, "naive \xE6\x97\xA5\xE6\x9C\xAC");
  CHECK(c == counts(1, 0, 0, 6));
  CHECK(c.error_rate() == Approx(1.0 / 7.0));
  CHECK(asrkit::char_errors("ab cd", "abcd").errors() == 0);
  CHECK(asrkit::char_errors("ab cd", "abcd", spaces).deletions == 1);
}

TEST_CASE("corpus score accumulates WER and CER", "[decode][metrics]") {
  asrkit::CorpusScore corpus;
  corpus.add("u1", "the cat sat", "the cat sat");
  const auto& u2 = corpus.add("u2", "a dog", "a big dog");
  CHECK(u2.words == counts(0, 0, 1, 2));
  corpus.add("u3", "on the mat", "");
  CHECK(corpus.sentences() == 3);
  CHECK(corpus.sentence_errors() == 2);
  CHECK(corpus.word_counts() == counts(0, 3, 1, 5));
  CHECK(corpus.wer() == Approx(4.0 / 8.0));
  // Characters: 9 + 4 + 8 in the references; u2 inserts "big" (3), u3 deletes 8.
  CHECK(corpus.char_counts() == counts(0, 8, 3, 13));
  CHECK(corpus.cer() == Approx(11.0 / 21.0));
  CHECK(corpus.utterances().at(2).id == "u3");
  CHECK(asrkit::CorpusScore().wer() == 0.0);
}

TEST_CASE("metrics error ids", "[decode][metrics][errors]") {
  REQUIRE_THROWS_ID(asrkit::characters("ab\xC3"), asrkit::ValueError,
                    "[asrkit.metrics.1] characters: text must be valid UTF-8, got a malformed "
                    "sequence at byte 2 (0xc3)");
  REQUIRE_THROWS_ID(asrkit::characters("\xC0\xAF"), asrkit::ValueError, "metrics.1");  // overlong
  REQUIRE_THROWS_ID(asrkit::characters("\xED\xA0\x80"), asrkit::ValueError,
                    "metrics.1");  // surrogate
  REQUIRE_THROWS_ID(asrkit::characters("\xF4\x90\x80\x80"), asrkit::ValueError, "metrics.1");
  REQUIRE_THROWS_ID(asrkit::characters("a\x80"), asrkit::ValueError, "byte 1 (0x80)");
  REQUIRE_THROWS_ID(asrkit::char_errors("ok", "\xFF"), asrkit::ValueError, "metrics.1");

  REQUIRE_THROWS_ID(asrkit::edit_counts(Strings{}, Strings{}, EditWeights{0, 1, 1}),
                    asrkit::ValueError,
                    "[asrkit.metrics.2] EditWeights: substitution, insertion and deletion must be "
                    "in [1, 2^40], got 0, 1, 1");
  REQUIRE_THROWS_ID(asrkit::align_tokens(Strings{}, Strings{}, EditWeights{1, -3, 1}),
                    asrkit::ValueError, "metrics.2");
  REQUIRE_THROWS_ID(asrkit::CorpusScore({}, EditWeights{1, 1, 0}), asrkit::ValueError,
                    "metrics.2");

  asrkit::CorpusScore corpus;
  corpus.add("u1", "a", "a");
  REQUIRE_THROWS_ID(corpus.add("u1", "b", "b"), asrkit::ValueError,
                    "[asrkit.metrics.3] CorpusScore::add: utterance id must be unique, got 'u1' "
                    "a second time");
  REQUIRE_THROWS_ID(corpus.add("u2", "a", "\xFF"), asrkit::ValueError, "metrics.1");
  CHECK(corpus.sentences() == 1);  // failed adds leave the totals alone
  corpus.add("u2", "b", "c");
  CHECK(corpus.sentences() == 2);
}
