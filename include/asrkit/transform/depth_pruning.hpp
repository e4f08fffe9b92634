// asrkit/transform/depth_pruning.hpp - choosing which layers of a residual encoder to keep
// (Lee, Kang & Watanabe 2021, "layer pruning on demand"; SPECS §8.2-8.3).
//
//   asrkit::Encoder<asrkit::TransformerBlock<float>> enc(...);       // trained with InterCTC + SD
//   auto problem = asrkit::transform::encoder_pruning_problem(enc, dev_batches,
//       [&](const auto& encoder) { return dev_wer(encoder); });       // lower is better
//   auto r = asrkit::transform::prune(problem, 12, asrkit::transform::PruningStrategy::svcca_redundancy);
//   enc.set_layers(r.layers);                                          // no weight copies
//   // r.score: the dev score of the kept layers; r.cost: forward passes over dev it took
//
// A pruned encoder runs its kept layers in order, each reading the residual stream left by the
// last kept layer before it (SPECS §8.2, asrkit::Encoder::set_layers). The strategies (SPECS §8.3):
//   top               keep layers 1..k                                     (no search)
//   svcca_redundancy  s_l = SVCCA(X^(l-1), X^(l)) on dev frames; drop the layer whose output is
//                     most nearly a linear re-encoding of its input (highest s_l), recompute on
//                     the pruned model, repeat                           (L − k stream passes)
//   svcca_blocks      S_ij = SVCCA(X^(i), X^(j)) of the full model; runs of consecutive streams
//                     with high mutual similarity are thinned to their first and last layer
//                                                                         (1 stream pass)
//   greedy_score      repeatedly drop the layer whose removal raises the dev score least (the
//                     expensive upper reference; needs a score)           (Σ active-set sizes)
// X^(0) is the stream after the positional encoding, X^(l) after position l (a removed layer's
// position repeats the stream before it). The cost of a strategy is counted in forward passes
// over the dev set, the unit of SPECS §8.3's comparison.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <asrkit/analysis/activations.hpp>
#include <asrkit/analysis/similarity.hpp>
#include <asrkit/analysis/svcca.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/encoder.hpp>

namespace asrkit {
namespace transform {

enum class PruningStrategy { top, svcca_redundancy, svcca_blocks, greedy_score };

inline const char* to_string(PruningStrategy s) {
  switch (s) {
    case PruningStrategy::top: return "top";
    case PruningStrategy::svcca_redundancy: return "svcca_redundancy";
    case PruningStrategy::svcca_blocks: return "svcca_blocks";
    case PruningStrategy::greedy_score: return "greedy_score";
  }
  return "?";
}

/// What a strategy spent, in passes over the dev set (SPECS §8.3: "the cost of each strategy").
struct PruningCost {
  index_t stream_passes = 0;      ///< passes that captured the residual streams for SVCCA
  index_t score_evaluations = 0;  ///< passes that scored a layer subset (e.g. dev WER)
  index_t svcca_evaluations = 0;  ///< SVCCA similarities computed
  index_t forward_passes() const noexcept { return stream_passes + score_evaluations; }
};

struct PruningResult {
  PruningStrategy strategy = PruningStrategy::top;
  std::vector<index_t> layers;  ///< kept layers, 1-based, increasing
  /// Dev score of `layers` (lower is better); NaN when the problem has no score.
  double score = std::numeric_limits<double>::quiet_NaN();
  PruningCost cost;
};

/// The strategies' view of a model: how many layers, the dev-set streams of a layer subset, and
/// (optionally) its dev score. encoder_pruning_problem builds one for an asrkit::Encoder; any
/// residual stack can supply its own.
template <class T>
struct PruningProblem {
  index_t num_layers = 0;
  /// Streams X^(0..L) over the dev frames ([N, D] each, valid frames only) with only `layers`
  /// (1-based, increasing) active.
  std::function<std::vector<Tensor<T>>(const std::vector<index_t>& layers)> streams;
  /// Dev score with only `layers` active; lower is better (empty: no score).
  std::function<double(const std::vector<index_t>& layers)> score;
};

namespace detail {

inline std::vector<index_t> all_layers(index_t n) {
  std::vector<index_t> v(static_cast<std::size_t>(n));
  for (index_t l = 0; l < n; ++l) v[static_cast<std::size_t>(l)] = l + 1;
  return v;
}

template <class T>
void check_problem(const PruningProblem<T>& p, index_t keep, PruningStrategy s) {
  if (p.num_layers < 1)
    throw ValueError("pruning.1", asrkit::detail::str("prune: problem.num_layers must be >= 1, got ", p.num_layers));
  if (keep < 1 || keep > p.num_layers)
    throw ValueError("pruning.2", asrkit::detail::str("prune: keep must be in [1, ", p.num_layers, "] (layers of the "
                                              "model), got ", keep));
  const bool needs_streams = s == PruningStrategy::svcca_redundancy || s == PruningStrategy::svcca_blocks;
  if (needs_streams && !p.streams)
    throw ValueError("pruning.3", asrkit::detail::str("prune: strategy ", to_string(s), " needs problem.streams "
                                              "(the dev-set activations), which is empty"));
  if (s == PruningStrategy::greedy_score && !p.score)
    throw ValueError("pruning.3", "prune: strategy greedy_score needs problem.score, which is empty");
}

template <class T>
std::vector<Tensor<T>> checked_streams(const PruningProblem<T>& p, const std::vector<index_t>& layers) {
  auto s = p.streams(layers);
  if (static_cast<index_t>(s.size()) != p.num_layers + 1)
    throw ShapeError("pruning.4", asrkit::detail::str("prune: problem.streams must return num_layers + 1 = ",
                                              p.num_layers + 1, " streams (positions 0..L), got ", s.size()));
  return s;
}

inline void erase_layer(std::vector<index_t>& layers, index_t l) {
  layers.erase(std::find(layers.begin(), layers.end(), l));
}

// Layers strictly inside runs of mutually similar consecutive streams (all pairs >= tau),
// runs formed greedily left to right over positions 0..L. Layer l produces stream l, so a run of
// streams [a, b] keeps layers a and b and offers a+1..b-1.
inline std::vector<index_t> run_interiors(const std::vector<std::vector<double>>& S, double tau) {
  const index_t n = static_cast<index_t>(S.size());
  std::vector<index_t> interior;
  index_t a = 0;
  while (a < n) {
    index_t b = a;
    auto fits = [&](index_t j) {
      for (index_t i = a; i < j; ++i)
        if (S[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] < tau) return false;
      return true;
    };
    while (b + 1 < n && fits(b + 1)) ++b;
    for (index_t l = a + 1; l < b; ++l) interior.push_back(l);
    a = b + 1;
  }
  return interior;
}

}  // namespace detail

/// The layers svcca_blocks removes to leave `keep` of the L = S.size() − 1 layers, from the
/// stream similarity matrix S (positions 0..L): the highest threshold τ whose runs offer enough
/// interior layers; among those, the ones whose output is most similar to their input
/// (S[l−1][l], ties to the upper layer) go first. At τ = min S the whole stack is one run, so
/// every keep in [1, L] is reachable.
inline std::vector<index_t> block_thinning_removals(const std::vector<std::vector<double>>& S, index_t keep) {
  const index_t layers = static_cast<index_t>(S.size()) - 1;
  for (const auto& row : S)
    if (static_cast<index_t>(row.size()) != layers + 1)
      throw ShapeError("pruning.4", asrkit::detail::str("block_thinning_removals: S must be square, [", layers + 1, ", ",
                                                layers + 1, "], got a row of ", row.size()));
  if (keep < 1 || keep > layers)
    throw ValueError("pruning.2", asrkit::detail::str("block_thinning_removals: keep must be in [1, ", layers, "], got ", keep));
  const index_t removals = layers - keep;
  if (removals == 0) return {};
  std::vector<double> taus;
  for (index_t i = 0; i <= layers; ++i)
    for (index_t j = i + 1; j <= layers; ++j) taus.push_back(S[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
  std::sort(taus.begin(), taus.end(), std::greater<>());
  std::vector<index_t> offered;
  for (double tau : taus) {
    offered = detail::run_interiors(S, tau);
    if (static_cast<index_t>(offered.size()) >= removals) break;
  }
  std::stable_sort(offered.begin(), offered.end(), [&](index_t x, index_t y) {
    const double sx = S[static_cast<std::size_t>(x - 1)][static_cast<std::size_t>(x)];
    const double sy = S[static_cast<std::size_t>(y - 1)][static_cast<std::size_t>(y)];
    return sx != sy ? sx > sy : x > y;
  });
  offered.resize(static_cast<std::size_t>(removals));
  std::sort(offered.begin(), offered.end());
  return offered;
}

/// Keeps `keep` of problem.num_layers layers by `strategy`; scores the result when the problem
/// has a score.
template <class T>
PruningResult prune(const PruningProblem<T>& problem, index_t keep, PruningStrategy strategy,
                    const analysis::SvccaOptions& svcca_options = {}) {
  detail::check_problem(problem, keep, strategy);
  PruningResult r;
  r.strategy = strategy;
  r.layers = detail::all_layers(problem.num_layers);
  auto score = [&](const std::vector<index_t>& layers) {
    ++r.cost.score_evaluations;
    return problem.score(layers);
  };
  switch (strategy) {
    case PruningStrategy::top:
      r.layers.resize(static_cast<std::size_t>(keep));
      break;
    case PruningStrategy::svcca_redundancy:
      while (static_cast<index_t>(r.layers.size()) > keep) {
        const auto X = detail::checked_streams(problem, r.layers);
        ++r.cost.stream_passes;
        std::vector<std::pair<std::size_t, std::size_t>> pairs;  // (X^(l-1), X^(l)) per kept layer
        for (index_t l : r.layers) pairs.emplace_back(static_cast<std::size_t>(l - 1), static_cast<std::size_t>(l));
        const auto s = analysis::svcca_pairs(X, pairs, svcca_options);
        r.cost.svcca_evaluations += static_cast<index_t>(s.size());
        std::size_t drop = 0;  // ties go to the upper layer (SPECS §8.2: safest to drop)
        for (std::size_t i = 1; i < s.size(); ++i)
          if (s[i].mean >= s[drop].mean) drop = i;
        detail::erase_layer(r.layers, r.layers[drop]);
      }
      break;
    case PruningStrategy::svcca_blocks: {
      if (keep == problem.num_layers) break;
      const auto X = detail::checked_streams(problem, r.layers);
      ++r.cost.stream_passes;
      const auto S = analysis::similarity_matrix(X, svcca_options);
      r.cost.svcca_evaluations += problem.num_layers * (problem.num_layers + 1) / 2;
      for (index_t l : block_thinning_removals(S, keep)) detail::erase_layer(r.layers, l);
      break;
    }
    case PruningStrategy::greedy_score:
      while (static_cast<index_t>(r.layers.size()) > keep) {
        index_t drop = 0;
        double best = std::numeric_limits<double>::infinity();
        for (index_t l : r.layers) {
          auto trial = r.layers;
          detail::erase_layer(trial, l);
          const double s = score(trial);
          if (s <= best) best = s, drop = l;  // ties go to the upper layer
        }
        detail::erase_layer(r.layers, drop);
        if (static_cast<index_t>(r.layers.size()) == keep) r.score = best;
      }
      break;
  }
  if (problem.score && std::isnan(r.score)) r.score = score(r.layers);
  return r;
}

/// The pruning problem of an asrkit::Encoder over a dev set: streams from forward_streams over
/// `dev` (valid frames only), score(encoder) with the subset made active by set_layers (no weight
/// copies). The encoder's active layers are restored after every call, and the encoder and dev
/// set must outlive the problem.
template <class Block, class Score>
PruningProblem<typename Block::value_type> encoder_pruning_problem(
    Encoder<Block>& encoder, const std::vector<analysis::SequenceBatch<typename Block::value_type>>& dev,
    Score score) {
  using T = typename Block::value_type;
  auto with_layers = [&encoder](const std::vector<index_t>& layers, auto&& f) {
    const auto saved = encoder.active_layers();
    encoder.set_layers(layers);
    struct Restore {
      Encoder<Block>& e;
      const std::vector<index_t>& keep;
      ~Restore() { e.set_layers(keep); }
    } restore{encoder, saved};
    return f();
  };
  PruningProblem<T> p;
  p.num_layers = encoder.num_layers();
  p.streams = [&encoder, &dev, with_layers](const std::vector<index_t>& layers) {
    return with_layers(layers, [&] { return analysis::capture_encoder_streams(encoder, dev); });
  };
  p.score = [&encoder, score, with_layers](const std::vector<index_t>& layers) {
    return with_layers(layers, [&] { return static_cast<double>(score(static_cast<const Encoder<Block>&>(encoder))); });
  };
  return p;
}

/// WER-vs-depth for one strategy (SPECS §8.3 "Report WER vs depth for each strategy"): one
/// prune() per depth, each with its own cost.
template <class T>
std::vector<PruningResult> prune_sweep(const PruningProblem<T>& problem, const std::vector<index_t>& depths,
                                       PruningStrategy strategy, const analysis::SvccaOptions& svcca_options = {}) {
  std::vector<PruningResult> out;
  for (index_t k : depths) out.push_back(prune(problem, k, strategy, svcca_options));
  return out;
}

}  // namespace transform
}  // namespace asrkit
