// CtcBeamDecoder: LM scoring against exhaustive search, lexicon, hotwords, timestamps,
// streaming, batch decoding, bounded memory and bad input.
#include <asrkit/decode/beam_search.hpp>

#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../small_arpa.hpp"
#include "../test_util.hpp"
#include "ctc_enumerate.hpp"

using asrkit::index_t;

namespace {

using asrkit_test::random_log_probs;


// tokens: blank, word boundary, a, b, c (the words of tests/small_arpa.hpp).
asrkit::TokenSet abc_tokens() { return asrkit::TokenSet({"_", "|", "a", "b", "c"}); }

std::shared_ptr<const asrkit::NgramLm> small_lm() {
  return std::make_shared<const asrkit::NgramLm>(asrkit::parse_arpa(kModel));
}

std::vector<std::string> split_words(const asrkit::TokenSet& tokens, const std::vector<std::int32_t>& labels) {
  std::vector<std::string> words(1);
  for (std::int32_t k : labels) {
    if (k == 1) {
      if (!words.back().empty()) words.emplace_back();
    } else {
      words.back() += tokens.spelling(k);
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

// Letters a..z, blank 0, boundary "|" 1: emissions spelling `frames` ("_" blank, "|" boundary)
// with probability `p` on the given letter and the rest spread evenly.
struct Letters {
  asrkit::TokenSet tokens;
  Letters() : tokens(make()) {}
  static asrkit::TokenSet make() {
    std::vector<std::string> t{"_", "|"};
    for (char c = 'a'; c <= 'z'; ++c) t.emplace_back(1, c);
    return asrkit::TokenSet(t);
  }
  // Each frame: a list of (token spelling, probability); the rest of the mass is spread evenly.
  asrkit::Tensor<float> emissions(const std::vector<std::vector<std::pair<std::string, double>>>& frames) const {
    const auto V = static_cast<index_t>(tokens.size());
    asrkit::Tensor<float> lp({static_cast<index_t>(frames.size()), V});
    for (std::size_t t = 0; t < frames.size(); ++t) {
      double used = 0;
      for (const auto& f : frames[t]) used += f.second;
      const double rest = (1 - used) / static_cast<double>(V - static_cast<index_t>(frames[t].size()));
      for (index_t k = 0; k < V; ++k) lp(static_cast<index_t>(t), k) = static_cast<float>(std::log(rest));
      for (const auto& f : frames[t]) lp(static_cast<index_t>(t), tokens.id(f.first)) = static_cast<float>(std::log(f.second));
    }
    return lp;
  }
  // "c a t" style: each symbol one confident frame, a blank frame after each letter.
  asrkit::Tensor<float> spell(const std::string& text, double p = 0.9) const {
    std::vector<std::vector<std::pair<std::string, double>>> frames;
    for (char ch : text) {
      frames.push_back({{ch == ' ' ? "|" : std::string(1, ch), p}});
      frames.push_back({{"_", p}});
    }
    return emissions(frames);
  }
};

std::string text_of(const asrkit::Hypothesis& h) {
  std::string s;
  for (const auto& w : h.words) s += (s.empty() ? "" : " ") + w.text;
  return s;
}

}  // namespace

TEST_CASE("with a word LM the beam search finds the exhaustive best of DS2's objective", "[decode][lm]") {
  const auto tokens = abc_tokens();
  const auto lm = small_lm();
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const auto lp = random_log_probs(seed, 6, 5, 1.2);
    const auto exact = asrkit_test::enumerate_ctc(lp, 0);
    asrkit::DecoderOptions o;
    o.word_boundary = 1;
    o.beam_size = 100000;
    o.nbest = 5;
    o.lm_weight = 0.8;
    o.word_bonus = 0.4;
    o.unknown_word_penalty = -0.7;
    // Reference: Q = ln p_ctc + alpha ln p_lm + beta words (+ penalty per word outside the LM).
    std::multimap<double, std::vector<std::int32_t>, std::greater<>> ranked;
    for (const auto& [labels, p] : exact) {
      const auto words = split_words(tokens, labels);
      double q = std::log(p) + o.lm_weight * asrkit::log10_to_ln(lm->score_sentence(words)) +
                 o.word_bonus * static_cast<double>(words.size());
      for (const auto& w : words) q += lm->word_id(w) == lm->unk_id() ? o.unknown_word_penalty : 0.0;
      ranked.emplace(q, labels);
    }
    for (bool lookahead : {true, false}) {
      o.lm_lookahead = lookahead;
      const asrkit::CtcBeamDecoder decoder(tokens, o, lm);
      const auto nbest = decoder.decode(lp.view());
      REQUIRE(nbest.size() == 5);
      auto it = ranked.begin();
      for (std::size_t i = 0; i < nbest.size(); ++i, ++it) {
        CHECK(nbest[i].score == Approx(it->first).epsilon(1e-9));
        CHECK(nbest[i].tokens == it->second);
        CHECK(nbest[i].acoustic == Approx(std::log(exact.at(nbest[i].tokens))).epsilon(1e-9));
        CHECK(nbest[i].lm == Approx(asrkit::log10_to_ln(lm->score_sentence(split_words(tokens, nbest[i].tokens)))));
        CHECK(nbest[i].word_count == static_cast<index_t>(split_words(tokens, nbest[i].tokens).size()));
      }
    }
  }
}

// A plain prefix beam search with a word bonus and nothing clever (no floor, no trie, no
// garbage collection): the decoder's pruned search must keep exactly the same beams.
std::vector<std::pair<double, std::vector<std::int32_t>>> plain_beam_search(const asrkit::Tensor<double>& lp, int blank,
                                                                            int boundary, index_t beam, double beta) {
  using Prefix = std::vector<std::int32_t>;
  auto words = [&](const Prefix& l, bool final) {
    int n = 0;
    bool in_word = false;
    for (auto k : l) {
      if (k == boundary) n += in_word, in_word = false;
      else in_word = true;
    }
    return n + (final && in_word);
  };
  auto lse = [](double a, double b) { return asrkit::detail::log_add(a, b); };
  const double none = -std::numeric_limits<double>::infinity();
  std::map<Prefix, std::pair<double, double>> beams{{{}, {0.0, none}}};
  for (index_t t = 0; t < lp.dim(0); ++t) {
    std::map<Prefix, std::pair<double, double>> next;
    auto add = [&](const Prefix& l, double pb, double pnb) {
      auto it = next.emplace(l, std::make_pair(none, none)).first;
      it->second.first = lse(it->second.first, pb);
      it->second.second = lse(it->second.second, pnb);
    };
    for (const auto& [l, p] : beams) {
      const double total = lse(p.first, p.second);
      for (int k = 0; k < lp.dim(1); ++k) {
        const double y = lp(t, k);
        if (k == blank) {
          add(l, y + total, none);
        } else if (!l.empty() && k == l.back()) {
          add(l, none, y + p.second);
          Prefix e = l;
          e.push_back(k);
          add(e, none, y + p.first);
        } else {
          Prefix e = l;
          e.push_back(k);
          add(e, none, y + total);
        }
      }
    }
    std::vector<std::pair<double, Prefix>> ranked;
    for (const auto& [l, p] : next) ranked.emplace_back(lse(p.first, p.second) + beta * words(l, false), l);
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    beams.clear();
    for (std::size_t i = 0; i < ranked.size() && static_cast<index_t>(i) < beam; ++i)
      beams[ranked[i].second] = next[ranked[i].second];
  }
  std::vector<std::pair<double, Prefix>> out;
  for (const auto& [l, p] : beams) out.emplace_back(lse(p.first, p.second) + beta * words(l, true), l);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

TEST_CASE("the pruned search keeps exactly the beams of a plain prefix beam search", "[decode][beam]") {
  // Long enough for the beam to fill, the floor to prune and garbage collection to run.
  const asrkit::TokenSet tokens({"_", "|", "a", "b", "c", "d"});
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const auto lp = random_log_probs(seed + 40, 300, 6, seed % 2 ? 3.0 : 1.0);
    for (index_t beam : {1, 3, 8}) {
      asrkit::DecoderOptions o;
      o.word_boundary = 1;
      o.beam_size = beam;
      o.nbest = beam;
      o.word_bonus = 0.7;
      const auto got = asrkit::CtcBeamDecoder(tokens, o).decode(lp.view());
      const auto want = plain_beam_search(lp, 0, 1, beam, 0.7);
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].tokens == want[i].second);
        CHECK(got[i].score == Approx(want[i].first).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("a token-level LM scores every token", "[decode][lm]") {
  // The small model's words are single letters: use it as a character LM over a, b, c.
  const asrkit::TokenSet tokens({"_", "a", "b", "c"});
  const auto lm = small_lm();
  const auto lp = random_log_probs(11, 6, 4, 1.2);
  const auto exact = asrkit_test::enumerate_ctc(lp, 0);
  asrkit::DecoderOptions o;
  o.beam_size = 100000;
  o.lm_unit = asrkit::LmUnit::token;
  o.lm_weight = 1.3;
  double best = -1e300;
  std::vector<std::int32_t> best_labels;
  for (const auto& [labels, p] : exact) {
    std::vector<std::string> chars;
    for (auto k : labels) chars.push_back(tokens.spelling(k));
    const double q = std::log(p) + o.lm_weight * asrkit::log10_to_ln(lm->score_sentence(chars));
    if (q > best) best = q, best_labels = labels;
  }
  const auto nbest = asrkit::CtcBeamDecoder(tokens, o, lm).decode(lp.view());
  REQUIRE(nbest.size() == 1);
  CHECK(nbest[0].tokens == best_labels);
  CHECK(nbest[0].score == Approx(best).epsilon(1e-9));
}

TEST_CASE("a lexicon is a hard constraint unless relaxed, with a penalty for other words", "[decode][lexicon]") {
  const auto tokens = abc_tokens();
  asrkit::Lexicon lex;
  lex.add("ab", {"a", "b", "|"});  // flashlight style: spelling ends with the separator
  lex.add("c", {"c"});
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const auto lp = random_log_probs(seed + 20, 6, 5, 1.0);
    const auto exact = asrkit_test::enumerate_ctc(lp, 0);
    asrkit::DecoderOptions o;
    o.word_boundary = 1;
    o.beam_size = 100000;
    o.word_bonus = 0.3;
    double best = -1e300, best_soft = -1e300;
    std::vector<std::int32_t> best_labels, best_soft_labels;
    for (const auto& [labels, p] : exact) {
      const auto words = split_words(tokens, labels);
      int unknown = 0;
      for (const auto& w : words) unknown += w != "ab" && w != "c";
      const double q = std::log(p) + 0.3 * static_cast<double>(words.size());
      if (unknown == 0 && q > best) best = q, best_labels = labels;
      if (q - 2.0 * unknown > best_soft) best_soft = q - 2.0 * unknown, best_soft_labels = labels;
    }
    const auto hard = asrkit::CtcBeamDecoder(tokens, o, nullptr, &lex).decode(lp.view());
    REQUIRE(hard.size() == 1);
    CHECK(hard[0].tokens == best_labels);
    CHECK(hard[0].score == Approx(best).epsilon(1e-9));
    for (const auto& w : hard[0].words) CHECK((w.text == "ab" || w.text == "c"));
    o.lexicon_constrained = false;
    o.unknown_word_penalty = -2.0;
    const auto soft = asrkit::CtcBeamDecoder(tokens, o, nullptr, &lex).decode(lp.view());
    CHECK(soft[0].tokens == best_soft_labels);
    CHECK(soft[0].score == Approx(best_soft).epsilon(1e-9));
  }
}

TEST_CASE("lexicon files and token lists are read, bad ones rejected", "[decode][lexicon]") {
  const std::string path = asrkit_test::data_path("decoder_lexicon.txt");
  asrkit_test::write_bytes(path, {'c', 'a', 't', '\t', 'c', ' ', 'a', ' ', 't', ' ', '|', '\n', '\n',
                                  'a', ' ', ' ', 'a', '\r', '\n'});
  const auto lex = asrkit::read_lexicon(path);
  REQUIRE(lex.size() == 2);
  CHECK(lex.entries()[0].word == "cat");
  CHECK(lex.entries()[0].spelling == std::vector<std::string>{"c", "a", "t", "|"});
  CHECK(lex.entries()[1].spelling == std::vector<std::string>{"a"});
  asrkit_test::write_bytes(path, {'c', 'a', 't', '\n'});
  REQUIRE_THROWS_ID(asrkit::read_lexicon(path), asrkit::FormatError, "decoder_lexicon.txt:1: expected a word");
  asrkit::Lexicon bad;
  bad.add("cat", {"c", "x", "t"});
  Letters letters;
  asrkit::DecoderOptions o;
  o.word_boundary = 1;
  REQUIRE_THROWS_ID(asrkit::CtcBeamDecoder(asrkit::TokenSet({"_", "|", "c", "t"}), o, nullptr, &bad),
                    asrkit::ValueError, "[asrkit.decode.6] lexicon word \"cat\": token \"x\" is not in the vocabulary");
  const std::string tpath = asrkit_test::data_path("decoder_tokens.txt");
  asrkit_test::write_bytes(tpath, {'_', ' ', '0', '\n', '|', '\n', 'a', '\n'});
  const auto t = asrkit::read_tokens(tpath);
  CHECK(t.size() == 3);
  CHECK(t.id("|") == 1);
  CHECK(t.spell("aa") == std::vector<std::int32_t>{2, 2});
  CHECK(!t.spell("ab"));
  asrkit_test::write_bytes(tpath, {'_', '\n', '\n', 'a', '\n'});
  REQUIRE_THROWS_ID(asrkit::read_tokens(tpath), asrkit::FormatError, "decoder_tokens.txt:2");
  REQUIRE_THROWS_ID(asrkit::TokenSet({"a", "b", "a"}), asrkit::ValueError, "[asrkit.decode.5] TokenSet: token 2 \"a\" repeats token 0");
  REQUIRE_THROWS_ID(asrkit::TokenSet(std::vector<std::string>{}), asrkit::ValueError, "[asrkit.decode.5]");
}

TEST_CASE("hotwords change the result, are taken back when the word does not complete, and do not split the next word",
          "[decode][hotwords]") {
  Letters L;
  asrkit::DecoderOptions o;
  o.word_boundary = 1;
  o.beam_size = 32;
  o.nbest = 8;
  // "c ? t" where the vowel is a (0.5) or u (0.4): plain decoding says "cat".
  auto lp = L.emissions({{{"c", 0.9}}, {{"_", 0.9}}, {{"a", 0.5}, {"u", 0.4}}, {{"_", 0.9}}, {{"t", 0.9}},
                         {{"_", 0.9}}, {{"|", 0.9}}, {{"s", 0.9}}, {{"_", 0.9}}, {{"a", 0.9}}, {{"_", 0.9}},
                         {{"t", 0.9}}, {{"_", 0.9}}});
  const asrkit::CtcBeamDecoder plain(L.tokens, o);
  CHECK(text_of(plain.decode(lp.view())[0]) == "cat sat");
  const asrkit::CtcBeamDecoder boosted(L.tokens, o, nullptr, nullptr, {{"cut", 1.0}});
  const auto b = boosted.decode(lp.view());
  CHECK(text_of(b[0]) == "cut sat");  // the boost decides, and "sat" stays one word
  CHECK(b[0].boost == Approx(1.0));
  CHECK(b[0].score == Approx(b[0].acoustic + 1.0));
  // Every other hypothesis keeps no boost: its score is its acoustic score, as without hotwords
  // (no LM or word bonus here). Partial matches such as "cu|" or "cuts" are taken back.
  for (const auto& h : b) {
    if (!h.words.empty() && h.words[0].text == "cut") continue;
    CHECK(h.boost == 0);
    CHECK(h.score == h.acoustic);
  }
  // "cup": spells c, u then turns away: the partial boost is taken back, so the result is
  // what it is without hotwords (a decoder that kept partial boosts would rank "cup" higher).
  auto cup = L.emissions({{{"c", 0.9}}, {{"_", 0.9}}, {{"u", 0.9}}, {{"_", 0.9}}, {{"p", 0.8}, {"t", 0.05}},
                          {{"_", 0.9}}});
  const auto bc = boosted.decode(cup.view());
  const auto pc = plain.decode(cup.view());
  CHECK(text_of(bc[0]) == "cup");
  CHECK(text_of(pc[0]) == "cup");
  CHECK(bc[0].boost == 0);
  CHECK(bc[0].score == bc[0].acoustic);
  CHECK(bc[1].score < bc[0].score);
  // A hotword must be a whole word: "cutlet" gets nothing.
  auto cutlet = L.spell("cutlet");
  const auto bl = boosted.decode(cutlet.view());
  CHECK(text_of(bl[0]) == "cutlet");
  CHECK(bl[0].boost == 0);
  // Phrases cross word boundaries; a word-start match only.
  const asrkit::CtcBeamDecoder phrase(L.tokens, o, nullptr, nullptr, {{"cut sat", 2.0}});
  const auto ph = phrase.decode(lp.view());
  CHECK(text_of(ph[0]) == "cut sat");
  CHECK(ph[0].boost == Approx(2.0));
  // With a lexicon the boosted word must still be spelled by it and the next word stays whole.
  asrkit::Lexicon lex;
  for (const char* w : {"cat", "cut", "sat"}) {
    std::vector<std::string> s;
    for (const char* c = w; *c; ++c) s.emplace_back(1, *c);
    lex.add(w, s);
  }
  const asrkit::CtcBeamDecoder lexical(L.tokens, o, nullptr, &lex, {{"cut", 1.0}});
  const auto lx = lexical.decode(lp.view());
  CHECK(text_of(lx[0]) == "cut sat");
  REQUIRE(lx[0].words.size() == 2);
  REQUIRE_THROWS_ID(asrkit::CtcBeamDecoder(L.tokens, o, nullptr, nullptr, {{"naïve", 1.0}}), asrkit::ValueError,
                    "[asrkit.decode.8] hotword \"naïve\"");
  REQUIRE_THROWS_ID(asrkit::CtcBeamDecoder(L.tokens, o, nullptr, nullptr, {{"cat", std::nan("")}}),
                    asrkit::ValueError, "[asrkit.decode.8]");
}

TEST_CASE("token and word timestamps follow the known alignment", "[decode][timestamps]") {
  Letters L;
  // frames: 0 _ | 1 c | 2 c | 3 _ | 4 a | 5 _ | 6 _ | 7 t | 8 t | 9 t | 10 | | 11 _ | 12 o | 13 n | 14 _
  const char* path[] = {"_", "c", "c", "_", "a", "_", "_", "t", "t", "t", "|", "_", "o", "n", "_"};
  std::vector<std::vector<std::pair<std::string, double>>> frames;
  for (const char* s : path) frames.push_back({{s, 0.95}});
  const auto lp = L.emissions(frames);
  asrkit::DecoderOptions o;
  o.word_boundary = 1;
  o.beam_size = 16;
  const auto h = asrkit::CtcBeamDecoder(L.tokens, o).decode(lp.view())[0];
  REQUIRE(text_of(h) == "cat on");
  CHECK(h.start_frames == std::vector<index_t>{1, 4, 7, 10, 12, 13});
  CHECK(h.end_frames == std::vector<index_t>{3, 5, 10, 11, 13, 14});
  REQUIRE(h.words.size() == 2);
  CHECK(h.words[0].start == 1);
  CHECK(h.words[0].end == 10);
  CHECK(h.words[1].start == 12);
  CHECK(h.words[1].end == 14);
  // Greedy agrees on this peaky input.
  const auto g = asrkit::ctc_greedy(lp.view());
  CHECK(g.start_frames == h.start_frames);
  CHECK(g.end_frames == h.end_frames);
}

TEST_CASE("timestamps follow the likeliest route after prefixes merge", "[decode][timestamps]") {
  // "a" is improbable at frame 0 (creating the prefix first) and certain at frames 3-4.
  Letters L;
  const auto lp = L.emissions({{{"_", 0.7}, {"a", 0.2}}, {{"_", 0.95}}, {{"_", 0.95}}, {{"a", 0.95}},
                               {{"a", 0.95}}, {{"_", 0.95}}});
  asrkit::DecoderOptions o;
  o.beam_size = 8;
  const auto h = asrkit::CtcBeamDecoder(L.tokens, o).decode(lp.view())[0];
  REQUIRE(h.tokens.size() == 1);
  CHECK(h.start_frames[0] == 3);
  CHECK(h.end_frames[0] == 5);
}

TEST_CASE("streaming in any chunking gives exactly the offline result", "[decode][stream]") {
  const auto tokens = abc_tokens();
  const auto lm = small_lm();
  asrkit::DecoderOptions o;
  o.word_boundary = 1;
  o.beam_size = 12;
  o.nbest = 4;
  o.lm_weight = 0.6;
  o.word_bonus = 0.5;
  const asrkit::CtcBeamDecoder decoder(tokens, o, lm, nullptr, {{"ab", 1.5}, {"c a", 0.7}});
  const auto lp = random_log_probs(77, 60, 5, 1.5);
  const auto offline = decoder.decode(lp.view());
  REQUIRE(offline.size() == 4);
  asrkit::Rng rng(5);
  for (int trial = 0; trial < 12; ++trial) {
    auto stream = decoder.begin();
    index_t t = 0;
    while (t < 60) {
      const index_t n = std::min<index_t>(60 - t, trial < 4 ? trial + 1 : 1 + static_cast<index_t>(rng.uniform() * 9));
      asrkit::Tensor<double> chunk({n, 5});
      for (index_t i = 0; i < n; ++i)
        for (index_t k = 0; k < 5; ++k) chunk(i, k) = lp(t + i, k);
      stream.step(chunk.view());
      t += n;
      CHECK(!stream.partial().empty());
    }
    CHECK(stream.frames() == 60);
    const auto online = stream.end();
    REQUIRE(online.size() == offline.size());
    for (std::size_t i = 0; i < online.size(); ++i) {
      CHECK(online[i].tokens == offline[i].tokens);
      CHECK(online[i].score == offline[i].score);  // bit-identical
      CHECK(online[i].start_frames == offline[i].start_frames);
      CHECK(online[i].end_frames == offline[i].end_frames);
    }
    REQUIRE_THROWS_ID(stream.end(), asrkit::ValueError, "[asrkit.decode.9]");
    REQUIRE_THROWS_ID(stream.step(lp.view()), asrkit::ValueError, "[asrkit.decode.9]");
  }
}

TEST_CASE("batch decoding equals item-by-item decoding on any thread count", "[decode][batch]") {
  const auto tokens = abc_tokens();
  asrkit::DecoderOptions o;
  o.word_boundary = 1;
  o.beam_size = 8;
  o.nbest = 3;
  const asrkit::CtcBeamDecoder decoder(tokens, o, small_lm());
  const index_t T = 30, B = 5;
  asrkit::Tensor<float> lp({T, B, 5});
  const auto src = random_log_probs(3, T * B, 5, 2.0);
  for (index_t i = 0; i < lp.numel(); ++i) lp.data()[i] = static_cast<float>(src.data()[i]);
  const std::vector<index_t> lengths{30, 17, 1, 0, 29};
  const int saved = asrkit::num_threads();
  for (int threads : {1, 2}) {
    asrkit::set_num_threads(threads);
    const auto all = decoder.decode_batch(lp.view(), lengths);
    REQUIRE(all.size() == 5);
    for (index_t b = 0; b < B; ++b) {
      const auto one = decoder.decode(lp.view(), b, lengths[static_cast<std::size_t>(b)]);
      REQUIRE(one.size() == all[static_cast<std::size_t>(b)].size());
      for (std::size_t i = 0; i < one.size(); ++i) {
        CHECK(one[i].tokens == all[static_cast<std::size_t>(b)][i].tokens);
        CHECK(one[i].score == all[static_cast<std::size_t>(b)][i].score);
      }
    }
  }
  asrkit::set_num_threads(saved);
  REQUIRE_THROWS_ID(decoder.decode_batch(lp.view(), {1, 2}), asrkit::ShapeError, "[asrkit.decode.1]");
}

TEST_CASE("decoder memory is bounded by the beam, not the frames", "[decode][memory]") {
  const asrkit::TokenSet tokens({"_", "a", "b", "c", "d", "e"});
  asrkit::DecoderOptions o;
  o.beam_size = 16;
  const asrkit::CtcBeamDecoder decoder(tokens, o);
  const auto lp = random_log_probs(9, 4000, 6, 1.0);
  auto stream = decoder.begin();
  std::size_t most = 0;
  for (index_t t = 0; t < 4000; t += 100) {
    asrkit::Tensor<double> chunk({100, 6});
    for (index_t i = 0; i < 100 * 6; ++i) chunk.data()[i] = lp.data()[t * 6 + i];
    stream.step(chunk.view());
    most = std::max(most, stream.retained());
  }
  // 4000 frames x 16 beams x 5 labels made ~320k prefixes; far fewer are kept.
  CHECK(most < 40000);
  CHECK(stream.end().size() == 1);
}

TEST_CASE("decoder input errors name what is wrong", "[decode][errors]") {
  const auto tokens = abc_tokens();
  asrkit::DecoderOptions o;
  o.word_boundary = 1;
  const asrkit::CtcBeamDecoder decoder(tokens, o);
  asrkit::Tensor<float> wrong({4, 6}, -1.8f);
  REQUIRE_THROWS_ID(decoder.decode(wrong.view()), asrkit::ValueError,
                    "[asrkit.decode.4] log_probs have V = 6 labels but the decoder's vocabulary has 5 tokens");
  asrkit::Tensor<float> lp({4, 5}, -1.6f);
  lp(2, 3) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(decoder.decode(lp.view()), asrkit::ValueError, "[asrkit.decode.2] log_probs at frame 2 label 3");
  o.word_boundary = 0;
  REQUIRE_THROWS_ID(asrkit::CtcBeamDecoder(tokens, o), asrkit::ValueError, "[asrkit.decode.7] word_boundary");
  o.word_boundary = -1;
  REQUIRE_THROWS_ID(asrkit::CtcBeamDecoder(tokens, o, small_lm()), asrkit::ValueError,
                    "[asrkit.decode.7] a word-level LM needs options.word_boundary");
  o.word_boundary = 1;
  o.beam_size = 0;
  REQUIRE_THROWS_ID(asrkit::CtcBeamDecoder(tokens, o), asrkit::ValueError, "[asrkit.decode.3]");
  o.beam_size = 4;
  o.lm_weight = std::nan("");
  REQUIRE_THROWS_ID(asrkit::CtcBeamDecoder(tokens, o), asrkit::ValueError, "[asrkit.decode.7] lm_weight");
}
