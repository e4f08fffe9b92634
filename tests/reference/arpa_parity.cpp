// asrkit's ARPA reader and back-off scorer against arpa_reference.py: a 3-gram model built by
// irstlm, and sentence scores from the script's own pure-Python back-off scorer.
#include <asrkit/decode/ngram.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../test_util.hpp"

TEST_CASE("asrkit scores sentences as an independent ARPA scorer on an irstlm model",
          "[parity][arpa]") {
  const asrkit::ArpaModel arpa = asrkit::read_arpa(asrkit_test::data_path("arpa_lm.arpa"));
  REQUIRE(arpa.order() == 3);
  const asrkit::NgramLm lm(arpa);
  REQUIRE(lm.has_unk());
  std::ifstream scores(asrkit_test::data_path("arpa_scores.txt"));
  REQUIRE(scores.good());
  std::string line;
  int sentences = 0, with_unknown = 0;
  while (std::getline(scores, line)) {
    CAPTURE(line);
    std::istringstream fields(line);
    double expected = 0.0;
    REQUIRE(fields >> expected);
    std::vector<std::string> words;
    for (std::string w; fields >> w;) words.push_back(w);
    for (const std::string& w : words) with_unknown += lm.word_id(w) == lm.unk_id();
    CHECK(lm.score_sentence(words) == Approx(expected).margin(1e-4).epsilon(0));
    // Word by word through states gives the same total.
    asrkit::LmState s = lm.begin_sentence();
    double total = 0.0;
    for (const std::string& w : words) total += lm.score(s, lm.word_id(w), &s);
    total += lm.end_sentence(s);
    CHECK(total == Approx(expected).margin(1e-4).epsilon(0));
    ++sentences;
  }
  CHECK(sentences >= 40);
  CHECK(with_unknown > 0);
}
