// asrkit's word error counts against NIST sclite on the sentence pairs of metrics_reference.py:
// the corpus totals, every utterance's C/S/D/I and sclite's alignment itself must be identical.
#include <asrkit/decode/metrics.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../test_util.hpp"

using asrkit::index_t;

namespace {

// trn lines are "w1 w2 ... (id)"; returns id -> text, keeping file order in `order`.
std::map<std::string, std::string> read_trn(const std::string& path,
                                            std::vector<std::string>* order) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const auto open = line.rfind('('), close = line.rfind(')');
    REQUIRE(open != std::string::npos);
    REQUIRE(close > open);
    const std::string id = line.substr(open + 1, close - open - 1);
    out[id] = line.substr(0, open);
    if (order) order->push_back(id);
  }
  return out;
}

std::string ops_string(const asrkit::EditAlignment<std::string>& a) {
  std::string s;
  for (const auto& p : a.pairs) s += "CSID"[static_cast<int>(p.op)];
  return s.empty() ? "-" : s;
}

}  // namespace

TEST_CASE("word error counts match NIST sclite", "[parity][metrics]") {
  std::vector<std::string> order;
  const auto refs = read_trn(asrkit_test::data_path("metrics_ref.trn"), &order);
  const auto hyps = read_trn(asrkit_test::data_path("metrics_hyp.trn"), nullptr);
  REQUIRE(refs.size() == hyps.size());

  struct Expected {
    asrkit::EditCounts counts;
    std::string ops;
  };
  std::map<std::string, Expected> expected;
  asrkit::EditCounts total;
  index_t snt = 0, err = 0;
  std::ifstream in(asrkit_test::data_path("metrics_sclite.txt"));
  REQUIRE(in.good());
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    if (kind == "total") {
      ls >> snt >> total.reference_length >> total.correct >> total.substitutions >>
          total.deletions >> total.insertions >> err;
    } else if (kind == "utt") {
      std::string id;
      Expected e;
      ls >> id >> e.counts.correct >> e.counts.substitutions >> e.counts.deletions >>
          e.counts.insertions >> e.ops;
      e.counts.reference_length = e.counts.correct + e.counts.substitutions + e.counts.deletions;
      expected[id] = e;
    }
  }
  REQUIRE(snt == static_cast<index_t>(refs.size()));
  REQUIRE(expected.size() == refs.size());

  asrkit::CorpusScore corpus;
  index_t same_alignment = 0, levenshtein_differs = 0;
  for (const auto& id : order) {
    INFO("utterance " << id << ": REF '" << refs.at(id) << "' HYP '" << hyps.at(id) << "'");
    const auto& u = corpus.add(id, refs.at(id), hyps.at(id));
    const Expected& e = expected.at(id);
    CHECK(u.words.correct == e.counts.correct);
    CHECK(u.words.substitutions == e.counts.substitutions);
    CHECK(u.words.deletions == e.counts.deletions);
    CHECK(u.words.insertions == e.counts.insertions);
    const auto a = asrkit::align_tokens(asrkit::words(refs.at(id)), asrkit::words(hyps.at(id)));
    CHECK(a.counts == u.words);
    CHECK(ops_string(a) == e.ops);
    same_alignment += ops_string(a) == e.ops;
    // Not a requirement: how often unit costs would have counted differently.
    const auto lev = asrkit::word_errors(refs.at(id), hyps.at(id), {},
                                         asrkit::EditWeights::levenshtein());
    levenshtein_differs += lev != u.words;
  }
  const auto& got = corpus.word_counts();
  CHECK(got.reference_length == total.reference_length);
  CHECK(got.correct == total.correct);
  CHECK(got.substitutions == total.substitutions);
  CHECK(got.deletions == total.deletions);
  CHECK(got.insertions == total.insertions);
  CHECK(got.errors() == err);
  CHECK(same_alignment == snt);
  WARN("sclite parity: " << snt << " utterances, " << same_alignment
                         << " identical alignments; unit-cost Levenshtein would differ on "
                         << levenshtein_differs);
}
