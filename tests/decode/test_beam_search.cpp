#include <asrkit/decode/beam_search.hpp>

#include <asrkit/core/rng.hpp>
#include <asrkit/loss/ctc.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <functional>
#include <limits>
#include <map>
#include <vector>

#include "../test_util.hpp"
#include "ctc_enumerate.hpp"

using asrkit::index_t;

namespace {

using asrkit_test::random_log_probs;


}  // namespace

TEST_CASE("prefix beam search with an unbounded beam gives exact prefix probabilities", "[decode][beam]") {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    const int blank = static_cast<int>(seed % 3);
    const auto lp = random_log_probs(seed, 5, 3, 1.5);
    const auto exact = asrkit_test::enumerate_ctc(lp, blank);
    asrkit::DecoderOptions o;
    o.blank = blank;
    o.beam_size = 10000;
    o.nbest = 10000;
    const auto nbest = asrkit::ctc_prefix_beam_search(lp.view(), o);
    REQUIRE(nbest.size() == exact.size());
    for (std::size_t i = 0; i < nbest.size(); ++i) {
      const auto& h = nbest[i];
      REQUIRE(std::exp(h.acoustic) == Approx(exact.at(h.tokens)).epsilon(1e-12));
      if (i > 0) REQUIRE(h.acoustic <= nbest[i - 1].acoustic);
      // The same number from the CTC loss: p(l | x) = exp(-loss).
      asrkit::Tensor<double> acts({5, 1, 3});
      acts.flat() = lp.flat();
      const std::vector<std::int32_t> il{5}, tl{static_cast<std::int32_t>(h.tokens.size())};
      asrkit::CtcOptions co;
      co.blank = blank;
      co.reduction = asrkit::Reduction::sum;
      const double loss = asrkit::ctc_loss(asrkit::CtcProblem<double>{acts.view(), asrkit::as_view(h.tokens),
                                                                      asrkit::as_view(il), asrkit::as_view(tl)}, co);
      REQUIRE(-loss == Approx(h.acoustic).epsilon(1e-12));
    }
  }
}

TEST_CASE("greedy decoding and token start frames", "[decode][beam]") {
  // Frames: a a _ b b _ a  (blank 0, a = 1, b = 2), very peaky.
  const int path[] = {1, 1, 0, 2, 2, 0, 1};
  asrkit::Tensor<double> lp({7, 3}, std::log(0.01));
  for (index_t t = 0; t < 7; ++t) lp(t, path[t]) = std::log(0.98);
  const auto g = asrkit::ctc_greedy(lp.view());
  CHECK(g.tokens == std::vector<std::int32_t>{1, 2, 1});
  CHECK(g.start_frames == std::vector<index_t>{0, 3, 6});
  asrkit::DecoderOptions o;
  o.beam_size = 8;
  const auto b = asrkit::ctc_prefix_beam_search(lp.view(), o);
  REQUIRE(b.size() == 1);
  CHECK(b[0].tokens == g.tokens);
  CHECK(b[0].start_frames == g.start_frames);
  // DS2 pruning keeps the answer on peaky input and a beam of 1 equals greedy here.
  o.token_cumulative_prob = 0.95;
  o.token_limit = 2;
  o.beam_size = 1;
  const auto pruned = asrkit::ctc_prefix_beam_search(lp.view(), o);
  REQUIRE(pruned.size() == 1);
  CHECK(pruned[0].tokens == g.tokens);
  // A floor above every log-probability prunes everything: no hypothesis.
  o.token_log_prob_floor = 0.5;
  CHECK(asrkit::ctc_prefix_beam_search(lp.view(), o).empty());
}

TEST_CASE("beam search on a batch item and bad input", "[decode][beam]") {
  asrkit::Tensor<float> lp({4, 2, 3}, std::log(1.0f / 3));
  asrkit::DecoderOptions o;
  CHECK(!asrkit::ctc_prefix_beam_search(lp.view(), o, 1, 3).empty());
  REQUIRE_THROWS_ID(asrkit::ctc_prefix_beam_search(lp.view(), o, 2), asrkit::ValueError, "[asrkit.decode.1]");
  o.beam_size = 0;
  REQUIRE_THROWS_ID(asrkit::ctc_prefix_beam_search(lp.view(), o), asrkit::ValueError, "[asrkit.decode.3]");
  o.beam_size = 4;
  lp(1, 0, 2) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_ID(asrkit::ctc_greedy(lp.view()), asrkit::ValueError, "[asrkit.decode.2] log_probs at frame 1 label 2");
  asrkit::Tensor<float> flat({5});
  REQUIRE_THROWS_ID(asrkit::ctc_greedy(flat.view()), asrkit::ShapeError, "[asrkit.decode.1]");
}

TEST_CASE("batched greedy decoding equals item by item", "[decode][beam]") {
  asrkit::Rng rng(4);
  asrkit::Tensor<float> lp({20, 3, 5});
  rng.fill_normal(lp.view(), 0.0f, 2.0f);
  const std::vector<index_t> lengths{20, 7, 0};
  const auto all = asrkit::ctc_greedy_batch(lp.view(), lengths, 2);
  REQUIRE(all.size() == 3);
  for (index_t b = 0; b < 3; ++b) {
    const auto one = asrkit::ctc_greedy(lp.view(), {2, b, lengths[static_cast<std::size_t>(b)]});
    CHECK(all[static_cast<std::size_t>(b)].tokens == one.tokens);
    CHECK(all[static_cast<std::size_t>(b)].end_frames == one.end_frames);
  }
  CHECK(all[2].tokens.empty());
  REQUIRE_THROWS_ID(asrkit::ctc_greedy_batch(lp.view(), {1, 2}), asrkit::ShapeError, "[asrkit.decode.1]");
}

// DS2's label limit on a large vocabulary (the decoder then picks each frame's labels through a
// bar from class maxima, beam_search.hpp front_labels) must keep exactly the K most probable
// labels of every frame, ties to the lower label: decoding with the limit equals decoding
// without it on rows where every other label is -inf. Values on a 0.25 grid make many ties.
TEMPLATE_TEST_CASE("DS2 label limit on V = 700 keeps exactly each frame's K best labels", "[decode][beam]", float, double) {
  const index_t frames = 12, vocab = 700;
  for (index_t limit : {1, 5, 40}) {
    INFO("token_limit " << limit);
    asrkit::Rng rng(static_cast<std::uint64_t>(70 + limit));
    asrkit::Tensor<TestType> lp({frames, vocab}), masked({frames, vocab});
    rng.fill_normal(lp.view(), TestType(-8), TestType(2));
    for (index_t t = 0; t < frames; ++t) {
      TestType* row = &lp(t, 0);
      for (index_t k = 0; k < vocab; ++k) row[k] = std::round(row[k] * 4) / 4;
      row[(t * 37) % vocab] = -std::numeric_limits<TestType>::infinity();
      std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return row[a] > row[b]; });
      for (index_t k = 0; k < vocab; ++k) masked(t, k) = -std::numeric_limits<TestType>::infinity();
      for (index_t i = 0; i < limit; ++i) masked(t, order[static_cast<std::size_t>(i)]) = row[order[static_cast<std::size_t>(i)]];
    }
    asrkit::DecoderOptions o;
    o.beam_size = 8;
    o.nbest = 3;
    // Mostly -inf rows also check that impossible prefixes never become beams: they used to, and
    // their missing timing records were read out of bounds (found by ASan on this test).
    const auto reference = asrkit::ctc_prefix_beam_search(masked.view(), o);
    for (const auto& h : reference) CHECK(std::isfinite(h.acoustic));
    o.token_limit = limit;
    const auto pruned = asrkit::ctc_prefix_beam_search(lp.view(), o);
    REQUIRE(pruned.size() == reference.size());
    for (std::size_t i = 0; i < pruned.size(); ++i) {
      CHECK(pruned[i].tokens == reference[i].tokens);
      CHECK(pruned[i].acoustic == reference[i].acoustic);
    }
  }
}

namespace {

// A plain CTC prefix beam search: every beam extended by every label each frame, prefixes merged
// in a map, the beam_size best kept. No bounds, no lazy label ranking: the reference for them.
std::vector<std::pair<std::vector<std::int32_t>, double>> plain_prefix_search(const asrkit::Tensor<double>& lp,
                                                                                index_t beam) {
  using Prefix = std::vector<std::int32_t>;
  auto log_add = [](double a, double b) {
    if (a < b) std::swap(a, b);
    return b == -INFINITY ? a : a + std::log1p(std::exp(b - a));
  };
  std::map<Prefix, std::pair<double, double>> beams{{Prefix{}, {0.0, -INFINITY}}};  // (pb, pnb)
  for (index_t t = 0; t < lp.dim(0); ++t) {
    std::map<Prefix, std::pair<double, double>> next;
    auto at = [&](const Prefix& p) -> std::pair<double, double>& {
      return next.emplace(p, std::make_pair(-INFINITY, -INFINITY)).first->second;
    };
    for (const auto& [p, s] : beams) {
      const double total = log_add(s.first, s.second);
      at(p).first = log_add(at(p).first, total + lp(t, 0));
      for (index_t k = 1; k < lp.dim(1); ++k) {
        if (!p.empty() && p.back() == k) {
          at(p).second = log_add(at(p).second, s.second + lp(t, k));
          Prefix q = p;
          q.push_back(static_cast<std::int32_t>(k));
          at(q).second = log_add(at(q).second, s.first + lp(t, k));
        } else {
          Prefix q = p;
          q.push_back(static_cast<std::int32_t>(k));
          at(q).second = log_add(at(q).second, total + lp(t, k));
        }
      }
    }
    std::vector<std::pair<double, Prefix>> ranked;
    for (const auto& [p, s] : next) ranked.push_back({log_add(s.first, s.second), p});
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    beams.clear();
    for (std::size_t i = 0; i < ranked.size() && static_cast<index_t>(i) < beam; ++i)
      beams[ranked[i].second] = next[ranked[i].second];
  }
  std::vector<std::pair<Prefix, double>> out;
  for (const auto& [p, s] : beams) out.push_back({p, log_add(s.first, s.second)});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

// The n-best of ctc_prefix_beam_search over [frames, vocab] normal rows (mean -ln V) equals the
// plain search's, token for token and in acoustic score.
void check_equals_plain_search(index_t frames, index_t vocab, index_t beam, double spread, std::uint64_t seed) {
  asrkit::Tensor<double> lp({frames, vocab});
  asrkit::Rng rng(seed);
  rng.fill_normal(lp.view(), -std::log(static_cast<double>(vocab)), spread);
  const auto reference = plain_prefix_search(lp, beam);
  asrkit::DecoderOptions o;
  o.beam_size = beam;
  o.nbest = beam;
  const auto got = asrkit::ctc_prefix_beam_search(lp.view(), o);
  REQUIRE(got.size() == reference.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].tokens == reference[i].first);
    CHECK(got[i].acoustic == Approx(reference[i].second).epsilon(1e-12));
  }
}

}  // namespace

// The search ranks each frame's labels lazily (a few best through class maxima, then more as
// beams ask; past a quarter of V, nth_element over the rest). On flat rows over V = 300 with a
// beam of 200, the best beams try more than a quarter of the labels, so every stage runs (a
// mutation of the last stage fails this test), and the candidates outnumber what select()
// ranks by counting (kRankMax), so they are sorted; the n-best must equal the plain search.
TEST_CASE("beam search over V = 300 flat rows equals a plain prefix beam search", "[decode][beam]") {
  check_equals_plain_search(4, 300, 200, 0.1, 300);
}

// Small rows (V <= 64) and up to kRankMax candidates are ranked by counting compares
// (detail::rank_descending), not sorted: with beam 16 over V = 29 and 40, every frame is.
TEST_CASE("beam 16 over V = 29 and 40 equals a plain prefix beam search", "[decode][beam]") {
  check_equals_plain_search(12, 29, 16, 1.0, 29);
  check_equals_plain_search(12, 40, 16, 1.0, 40);
}

TEMPLATE_TEST_CASE("rank_descending orders like a sort, ties to the smaller id", "[decode][beam]", float, double) {
  asrkit::Rng rng(64);
  for (const std::int32_t n : {1, 2, 16, 17, 31, 64, 150, asrkit::detail::kRankMax}) {
    for (int trial = 0; trial < 20; ++trial) {
      // Keys on a coarse grid (many ties), some -inf; ids distinct, in shuffled order.
      std::vector<TestType> key(static_cast<std::size_t>(n));
      std::vector<std::int64_t> id(static_cast<std::size_t>(n));
      std::iota(id.begin(), id.end(), std::int64_t{100});
      for (std::int32_t j = 0; j < n; ++j) {
        const double u = rng.uniform();
        key[static_cast<std::size_t>(j)] = u < 0.15 ? -std::numeric_limits<TestType>::infinity()
                                                    : static_cast<TestType>(std::floor(u * 6) - 3);
        std::swap(id[static_cast<std::size_t>(j)], id[rng.next_u64() % static_cast<std::size_t>(j + 1)]);
      }
      std::vector<std::int32_t> expected(static_cast<std::size_t>(n));
      std::iota(expected.begin(), expected.end(), 0);
      std::sort(expected.begin(), expected.end(), [&](std::int32_t a, std::int32_t b) {
        const auto i = static_cast<std::size_t>(a), j = static_cast<std::size_t>(b);
        return key[i] > key[j] || (key[i] == key[j] && id[i] < id[j]);
      });
      std::vector<std::int32_t> got(static_cast<std::size_t>(n), -1);
      asrkit::detail::rank_descending(key.data(), id.data(), n,
                                      [&](std::int32_t j, std::int32_t r) { got[static_cast<std::size_t>(r)] = j; });
      CHECK(got == expected);
    }
  }
}

TEMPLATE_TEST_CASE("kth_largest equals nth_element, -inf and signed zeros included", "[decode][beam]", float, double) {
  asrkit::Rng rng(128);
  const TestType inf = std::numeric_limits<TestType>::infinity();
  for (const std::int32_t n : {1, 3, 128, 300}) {
    for (int trial = 0; trial < 10; ++trial) {
      std::vector<TestType> key(static_cast<std::size_t>(n));
      for (auto& x : key) {
        const double u = rng.uniform();
        // -inf (a tenth, or all of them in trial 0), zeros of both signs, ties, wide magnitudes
        x = trial == 0 || u < 0.1 ? -inf
            : u < 0.2             ? (u < 0.15 ? TestType(-0.0) : TestType(0.0))
                                  : static_cast<TestType>(std::ldexp(std::floor((u - 0.6) * 20), static_cast<int>(rng.next_u64() % 40) - 20));
      }
      for (const std::int32_t k : {1, std::max(1, n / 2), n}) {
        std::vector<TestType> sorted = key;
        std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<TestType>());
        CHECK(asrkit::detail::kth_largest(key.data(), n, k) == sorted[static_cast<std::size_t>(k - 1)]);
      }
    }
  }
}

TEST_CASE("best_first keeps the best keys in order, by counting or by sorting", "[decode][beam]") {
  asrkit::Rng rng(65);
  for (const std::int32_t n : {5, asrkit::detail::kRankMax, 300}) {  // counting up to kRankMax, then sorting
    std::vector<double> key(static_cast<std::size_t>(n));
    for (auto& x : key) x = std::floor(rng.uniform() * 8);  // many ties: broken by position
    for (const std::int32_t keep : {1, std::min(n, 16), n}) {
      std::vector<std::int32_t> expected(static_cast<std::size_t>(n));
      std::iota(expected.begin(), expected.end(), 0);
      std::stable_sort(expected.begin(), expected.end(),
                       [&](std::int32_t a, std::int32_t b) { return key[static_cast<std::size_t>(a)] > key[static_cast<std::size_t>(b)]; });
      expected.resize(static_cast<std::size_t>(keep));
      std::vector<std::int32_t> got(static_cast<std::size_t>(n), -1);
      asrkit::detail::best_first(key.data(), static_cast<const std::int32_t*>(nullptr), n, keep, got.data());
      got.resize(static_cast<std::size_t>(keep));
      CHECK(got == expected);
    }
  }
}
