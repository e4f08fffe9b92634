#include <asrkit/decode/align.hpp>

#include <asrkit/core/rng.hpp>

#include <cmath>
#include <functional>
#include <vector>

#include "../test_util.hpp"

using asrkit::index_t;

namespace {

// Random log-softmax rows [T, B, V].
asrkit::Tensor<double> random_log_probs(std::uint64_t seed, index_t frames, index_t batch, index_t vocab) {
  asrkit::Rng rng(seed);
  asrkit::Tensor<double> lp({frames, batch, vocab});
  rng.fill_normal(lp.view(), 0.0, 2.0);
  for (index_t r = 0; r < frames * batch; ++r) {
    auto row = lp.matrix().row(r);
    row.array() -= std::log(row.array().exp().sum());
  }
  return lp;
}

}  // namespace

TEST_CASE("forced alignment is the best path found by brute force", "[decode][align]") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const index_t frames = 6, vocab = 3, batch = 2, item = static_cast<index_t>(seed % 2);
    const int blank = static_cast<int>(seed % 3);
    auto lp = random_log_probs(seed, frames, batch, vocab);
    asrkit::Rng rng(seed + 100);
    std::vector<std::int32_t> labels;
    const auto len = rng.uniform_int(4);
    while (labels.size() < len) {
      const auto k = static_cast<std::int32_t>(rng.uniform_int(vocab));
      if (k != blank) labels.push_back(k);
    }
    // Brute force: every V^T path that collapses to the labels.
    std::vector<int> path(frames), best_path;
    double best = -INFINITY;
    std::function<void(index_t)> walk = [&](index_t t) {
      if (t == frames) {
        std::vector<std::int32_t> collapsed;
        int prev = -1;
        for (int k : path) {
          if (k != prev && k != blank) collapsed.push_back(k);
          prev = k;
        }
        if (collapsed != labels) return;
        double lpath = 0;
        for (index_t s = 0; s < frames; ++s) lpath += lp(s, item, path[static_cast<std::size_t>(s)]);
        if (lpath > best) best = lpath, best_path = path;
        return;
      }
      for (int k = 0; k < vocab; ++k) path[static_cast<std::size_t>(t)] = k, walk(t + 1);
    };
    walk(0);
    const auto a = asrkit::ctc_forced_align(lp.view(), asrkit::as_view(labels), {blank, item, frames});
    REQUIRE(a.log_prob == Approx(best).epsilon(1e-12));
    REQUIRE(std::vector<int>(a.frame_labels.begin(), a.frame_labels.end()) == best_path);
    // Token spans agree with the frame labels: token i occupies [start, end) and nothing else.
    REQUIRE(a.tokens.size() == labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
      CHECK(a.tokens[i].label == labels[i]);
      CHECK(a.tokens[i].start < a.tokens[i].end);
      for (index_t t = a.tokens[i].start; t < a.tokens[i].end; ++t) CHECK(a.frame_labels[static_cast<std::size_t>(t)] == labels[i]);
      if (i > 0) CHECK(a.tokens[i].start >= a.tokens[i - 1].end);
    }
  }
}

TEST_CASE("segmentation cuts long blank runs, optionally only at spaces", "[decode][align]") {
  // Frames: a _ _ _ _ b ' ' _ _ _ _ c (blank 0, space 9); tokens a, b, space, c.
  asrkit::CtcAlignment a;
  a.frame_labels = {1, 0, 0, 0, 0, 2, 9, 0, 0, 0, 0, 3};
  a.tokens = {{1, 0, 1}, {2, 5, 6}, {9, 6, 7}, {3, 11, 12}};
  auto segs = asrkit::segment_alignment(a, {0, 4, -1});
  REQUIRE(segs.size() == 3);
  CHECK(segs[0].start_frame == 0);
  CHECK(segs[0].end_frame == 3);
  CHECK(segs[0].end_token == 1);
  CHECK(segs[1].start_frame == 3);
  CHECK(segs[1].end_frame == 9);
  CHECK(segs[1].first_token == 1);
  CHECK(segs[1].end_token == 3);  // b and the space
  CHECK(segs[2].end_frame == 12);
  CHECK(segs[2].end_token == 4);
  // Requiring a space: only the second run (space + 4 blanks) qualifies.
  segs = asrkit::segment_alignment(a, {0, 4, 9});
  REQUIRE(segs.size() == 2);
  CHECK(segs[0].end_frame == 6 + 5 / 2);
  CHECK(segs[0].end_token == 3);
  // A run shorter than N is no cut; leading/trailing silence never is.
  CHECK(asrkit::segment_alignment(a, {0, 5, -1}).size() == 1);
  a.frame_labels = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
  a.tokens = {{1, 5, 6}};
  CHECK(asrkit::segment_alignment(a, {0, 2, -1}).size() == 1);
  REQUIRE_THROWS_ID(asrkit::segment_alignment(a, {0, 0, -1}), asrkit::ValueError, "[asrkit.align.4]");
}

TEST_CASE("utterance filtering features and alignment errors", "[decode][align]") {
  const auto st = asrkit::ctc_utterance_stats(120.0, 300, 40);
  CHECK(st.cost == 120.0);
  CHECK(st.cost_per_frame == Approx(0.4));
  CHECK(st.cost_per_token == Approx(3.0));
  CHECK(st.frames_per_token == Approx(7.5));
  REQUIRE_THROWS_ID(asrkit::ctc_utterance_stats(1.0, 10, 0), asrkit::ValueError, "[asrkit.align.5]");

  auto lp = random_log_probs(3, 4, 1, 5);
  std::vector<std::int32_t> repeats{2, 2, 2};  // needs 5 frames
  REQUIRE_THROWS_ID(asrkit::ctc_forced_align(lp.view(), asrkit::as_view(repeats)), asrkit::ValueError,
                    "[asrkit.align.2] 3 labels with 2 repeats need at least 5 frames, got 4");
  std::vector<std::int32_t> bad{7};
  REQUIRE_THROWS_ID(asrkit::ctc_forced_align(lp.view(), asrkit::as_view(bad)), asrkit::ValueError,
                    "[asrkit.align.1] label 7 at position 0 must be in [0, 5) and not the blank");
  std::vector<std::int32_t> ok{1};
  lp(2, 0, 1) = NAN;
  REQUIRE_THROWS_ID(asrkit::ctc_forced_align(lp.view(), asrkit::as_view(ok)), asrkit::ValueError, "[asrkit.align.3]");
  REQUIRE_THROWS_ID(asrkit::ctc_forced_align(lp.view(), asrkit::as_view(ok), {0, 1, -1}), asrkit::ValueError,
                    "[asrkit.align.1] item 1 is out of range [0, 1)");
}
