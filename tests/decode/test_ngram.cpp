#include <asrkit/decode/ngram.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

#include "../small_arpa.hpp"
#include "../test_util.hpp"

using asrkit::LmState;
using asrkit::NgramLm;
using asrkit::parse_arpa;
using Catch::Detail::Approx;

namespace {

// Scores a word list from a given state, returning the state reached.
LmState advance(const NgramLm& lm, LmState s, const std::vector<std::string>& words) {
  for (const std::string& w : words) lm.score(s, lm.word_id(w), &s);
  return s;
}

}  // namespace

TEST_CASE("NgramLm vocabulary and special words", "[ngram]") {
  const NgramLm lm(parse_arpa(kModel));
  CHECK(lm.order() == 3);
  CHECK(lm.vocab_size() == 6);
  CHECK(lm.ngram_count(1) == 6);
  CHECK(lm.ngram_count(2) == 4);
  CHECK(lm.ngram_count(3) == 2);
  CHECK(lm.ngram_count(4) == 0);
  CHECK(lm.has_unk());
  CHECK(lm.word(lm.word_id("b")) == "b");
  CHECK(lm.word_id("zebra") == lm.unk_id());
  CHECK(lm.word(lm.unk_id()) == "<unk>");
  CHECK(lm.word(lm.bos_id()) == "<s>");
  CHECK(lm.word(lm.eos_id()) == "</s>");
}

TEST_CASE("NgramLm back-off arithmetic matches hand computation", "[ngram]") {
  const NgramLm lm(parse_arpa(kModel));
  const LmState bos = lm.begin_sentence();
  const LmState sa = advance(lm, bos, {"a"});  // <s> a
  const LmState ab = advance(lm, lm.null_context(), {"a", "b"});
  LmState out;
  // Listed n-grams of each order.
  CHECK(lm.score(bos, lm.word_id("a"), &out) == Approx(-0.4));
  CHECK(lm.score(sa, lm.word_id("b"), &out) == Approx(-0.1));
  CHECK(lm.score(ab, lm.word_id("c"), &out) == Approx(-0.2));
  CHECK(lm.score(lm.null_context(), lm.word_id("c"), &out) == Approx(-0.9));
  // Trigram missing, bigram missing: backoff(<s> a) + backoff(a) + p(c).
  CHECK(lm.score(sa, lm.word_id("c"), &out) == Approx(-0.25 - 0.3 - 0.9));
  // Trigram missing, bigram present: backoff(a b) + p(</s> | b).
  CHECK(lm.score(ab, lm.eos_id(), &out) == Approx(-0.15 - 0.5));
  CHECK(lm.end_sentence(ab) == Approx(-0.15 - 0.5));
  // A listed history without back-off ("b c") adds 0: backoff(c) + p(a).
  const LmState bc = advance(lm, lm.null_context(), {"b", "c"});
  CHECK(lm.score(bc, lm.word_id("a"), &out) == Approx(-0.1 - 0.7));
  // Unknown words score as <unk>: backoff(<s>) + p(<unk>).
  CHECK(lm.score(bos, lm.word_id("zebra"), &out) == Approx(-0.5 - 2.0));
  // The output state may be the input state.
  LmState s = bos;
  CHECK(lm.score(s, lm.word_id("a"), &s) == Approx(-0.4));
  CHECK(s == sa);
}

TEST_CASE("NgramLm states keep only contexts that matter, so they merge", "[ngram]") {
  const NgramLm lm(parse_arpa(kModel));
  const LmState bos = lm.begin_sentence();
  CHECK(bos.length == 1);  // <s> starts bigrams
  const LmState sa = advance(lm, bos, {"a"});
  CHECK(sa.length == 2);  // "<s> a" starts a trigram
  CHECK(sa.words[0] == lm.word_id("a"));
  CHECK(sa.words[1] == lm.word_id("<s>"));
  // "b c" extends nothing and has no back-off; "c" has a back-off: state = [c].
  const LmState c1 = advance(lm, bos, {"a", "b", "c"});
  const LmState c2 = advance(lm, lm.null_context(), {"b", "c"});
  const LmState c3 = advance(lm, bos, {"c", "c"});
  CHECK(c1.length == 1);
  CHECK(c1 == c2);
  CHECK(c1 == c3);
  CHECK(c1.hash() == c2.hash());
  std::unordered_set<LmState> set{c1, c2, c3, sa};
  CHECK(set.size() == 2);
  // </s> starts nothing and has no back-off: the empty state.
  LmState e;
  lm.score(sa, lm.eos_id(), &e);
  CHECK(e == lm.null_context());
  // The cut changes no score: from [c] and from the full history alike.
  CHECK(lm.end_sentence(c1) == Approx(-0.1 - 1.2));
}

TEST_CASE("NgramLm sentence scores", "[ngram]") {
  const NgramLm lm(parse_arpa(kModel));
  // <s> a b c </s>: -0.4 - 0.1 - 0.2 + (backoff(c) + p(</s>)).
  CHECK(lm.score_sentence({"a", "b", "c"}) == Approx(-0.4 - 0.1 - 0.2 - 0.1 - 1.2));
  const std::vector<std::string> words{"a", "b", "c"};
  CHECK(lm.score_sentence(words) == Approx(-2.0));
  CHECK(asrkit::log10_to_ln(lm.score_sentence(words)) == Approx(-2.0 * std::log(10.0)));
  CHECK(asrkit::ln_to_log10(asrkit::log10_to_ln(-2.0)) == Approx(-2.0));
  // No <s>, no </s>: p(a) + p(b | a).
  CHECK(lm.score_sentence(words, false, false) == Approx(-0.7 - 0.3 - 0.2));
  CHECK(lm.score_sentence(std::vector<std::string>{}) == Approx(-0.5 - 1.2));
  // An unknown word: <s> zebra </s> = backoff(<s>) + p(<unk>) + p(</s>).
  CHECK(lm.score_sentence({"zebra"}) == Approx(-0.5 - 2.0 - 1.2));
}

TEST_CASE("NgramLm without <unk> scores unknown words with a configurable constant", "[ngram]") {
  const char* text =
      "\\data\\\nngram 1=3\nngram 2=1\n\\1-grams:\n-0.5 <s> -0.1\n-0.3 x\n"
      "-0.4 </s>\n\\2-grams:\n-0.2 <s> x\n\\end\\\n";
  const NgramLm lm(parse_arpa(text));
  CHECK_FALSE(lm.has_unk());
  CHECK(lm.unk_id() == lm.vocab_size());
  CHECK(lm.word_id("y") == lm.unk_id());
  LmState out = lm.begin_sentence();
  CHECK(lm.score(lm.begin_sentence(), lm.unk_id(), &out) == -100.f);
  CHECK(out == lm.null_context());  // unknown words reset the context
  CHECK(lm.score_sentence({"y", "x"}) == Approx(-100 - 0.3 - 0.4));
  asrkit::NgramLmOptions opt;
  opt.unknown_log10_prob = -7.f;
  const NgramLm lm7(parse_arpa(text), opt);
  CHECK(lm7.score_sentence({"x", "y"}) == Approx(-0.2 - 7 - 0.4));
}

TEST_CASE("NgramLm handles files that omit the prefix of an n-gram", "[ngram]") {
  // "x y z" is listed but "x y" is not: after "x y" the state must still hold both words.
  const char* text =
      "\\data\\\nngram 1=3\nngram 2=1\nngram 3=1\n\\1-grams:\n-0.5 x -0.1\n"
      "-0.6 y -0.2\n-0.7 z\n\\2-grams:\n-0.3 y z -0.05\n\\3-grams:\n"
      "-0.01 x y z\n\\end\\\n";
  const NgramLm lm(parse_arpa(text));
  const LmState xy = advance(lm, lm.null_context(), {"x", "y"});
  CHECK(xy.length == 2);
  LmState out;
  CHECK(lm.score(xy, lm.word_id("z"), &out) == Approx(-0.01));
  // p(y | x): "x y" is unlisted: backoff(x) + p(y).
  CHECK(lm.score(advance(lm, lm.null_context(), {"x"}), lm.word_id("y"), &out) ==
        Approx(-0.1 - 0.6));
  CHECK(lm.ngram_count(2) == 1);  // the placeholder is not an n-gram
}

TEST_CASE("NgramLm rejects bad models, options and word ids", "[ngram]") {
  REQUIRE_THROWS_ID(NgramLm(asrkit::ArpaModel{}), asrkit::ValueError,
                    "[asrkit.ngram.1] NgramLm: the model's order must be 1..8, got 0");
  std::string deep = "\\data\\\n";
  for (int n = 1; n <= 9; ++n) deep += "ngram " + std::to_string(n) + "=0\n";
  for (int n = 1; n <= 9; ++n) deep += "\\" + std::to_string(n) + "-grams:\n";
  deep += "\\end\\\n";
  REQUIRE_THROWS_ID(NgramLm(parse_arpa(deep)), asrkit::ValueError, "got 9");
  asrkit::NgramLmOptions opt;
  opt.unknown_log10_prob = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_ID(NgramLm(parse_arpa(kModel), opt), asrkit::ValueError, "[asrkit.ngram.3]");
  opt.unknown_log10_prob = 1.f;
  REQUIRE_THROWS_ID(NgramLm(parse_arpa(kModel), opt), asrkit::ValueError, "[asrkit.ngram.3]");
  const NgramLm lm(parse_arpa(kModel));
  LmState out;
  REQUIRE_THROWS_ID(lm.score(lm.begin_sentence(), 6, &out), asrkit::ValueError,
                    "[asrkit.ngram.2] NgramLm::score: word id 6 is outside the vocabulary "
                    "(6 words)");
}

TEST_CASE("NgramLm tolerates hostile states", "[ngram]") {
  const NgramLm lm(parse_arpa(kModel));
  LmState s;
  s.length = 200;
  for (auto& w : s.words) w = 0xFFFFFFF0u;
  LmState out;
  // Unknown context ids are unlisted histories: p(a) with no back-off.
  CHECK(lm.score(s, lm.word_id("a"), &out) == Approx(-0.7));
  CHECK(out.length <= 2);
}
