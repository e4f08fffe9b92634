// Depth pruning strategies (SPECS §8.3) on an encoder whose redundant layers are known: a pre-LN
// Transformer layer with its two branch output projections zeroed is exactly the identity on the
// residual stream, so removing it changes nothing and SVCCA(X^(l-1), X^(l)) = 1.
#include <asrkit/nn/transformer_block.hpp>
#include <asrkit/transform/depth_pruning.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "../test_util.hpp"

namespace {

using asrkit::index_t;
using asrkit::Tensor;
using asrkit::transform::PruningStrategy;
using Enc = asrkit::Encoder<asrkit::TransformerBlock<double>>;

Tensor<double> randn(const asrkit::Shape& s, std::uint64_t seed) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0, 1.0);
  return t;
}

Enc make_encoder(index_t layers, const std::vector<index_t>& identity_layers) {
  asrkit::Rng rng(7);
  asrkit::TransformerBlockOptions o;
  o.heads = 2;
  o.ff = 24;
  o.dropout = 0;
  Enc enc(layers, 8, o, {}, rng);
  for (index_t l : identity_layers)
    enc.layer(l).for_each_parameter([](const std::string& name, asrkit::Parameter<double>& p) {
      if (name.rfind("self_attn.out_proj.", 0) == 0 || name.rfind("feed_forward.w_2.", 0) == 0) p.value.fill(0.0);
    });
  return enc;
}

std::vector<asrkit::analysis::SequenceBatch<double>> dev_set() {
  std::vector<asrkit::analysis::SequenceBatch<double>> dev;
  for (std::uint64_t b = 0; b < 3; ++b) dev.push_back({randn({20, 3, 8}, 100 + b), {20, 17, 12}});
  return dev;
}

// Mean |y − y_full| of the final output over the dev set: 0 exactly when only identity layers go.
struct OutputDistance {
  const std::vector<asrkit::analysis::SequenceBatch<double>>* dev;
  std::vector<Tensor<double>> reference;
  double operator()(const Enc& e) const {
    double sum = 0;
    index_t n = 0;
    for (std::size_t i = 0; i < dev->size(); ++i) {
      const auto& b = (*dev)[i];
      const auto y = e.forward(b.x.view(), asrkit::as_view(b.lengths)).output;
      for (index_t k = 0; k < y.numel(); ++k, ++n) sum += std::abs(y.data()[k] - reference[i].data()[k]);
    }
    return sum / static_cast<double>(n);
  }
};

OutputDistance distance_to(const Enc& e, const std::vector<asrkit::analysis::SequenceBatch<double>>& dev) {
  OutputDistance d{&dev, {}};
  for (const auto& b : dev) d.reference.push_back(e.forward(b.x.view(), asrkit::as_view(b.lengths)).output);
  return d;
}

}  // namespace

TEST_CASE("Depth pruning: SVCCA redundancy and greedy search find the identity layers", "[transform][pruning]") {
  Enc enc = make_encoder(6, {2, 5});
  const auto dev = dev_set();
  const auto problem = asrkit::transform::encoder_pruning_problem(enc, dev, distance_to(enc, dev));

  const auto redundancy = asrkit::transform::prune(problem, 4, PruningStrategy::svcca_redundancy);
  CHECK(redundancy.layers == std::vector<index_t>{1, 3, 4, 6});
  CHECK(redundancy.score == 0.0);
  CHECK(redundancy.cost.stream_passes == 2);
  CHECK(redundancy.cost.svcca_evaluations == 6 + 5);
  CHECK(redundancy.cost.score_evaluations == 1);

  const auto greedy = asrkit::transform::prune(problem, 4, PruningStrategy::greedy_score);
  CHECK(greedy.layers == std::vector<index_t>{1, 3, 4, 6});
  CHECK(greedy.score == 0.0);
  CHECK(greedy.cost.score_evaluations == 6 + 5);
  CHECK(greedy.cost.forward_passes() == 11);

  // top truncation drops layer 6, which is not the identity: the output changes
  const auto top = asrkit::transform::prune(problem, 4, PruningStrategy::top);
  CHECK(top.layers == std::vector<index_t>{1, 2, 3, 4});
  CHECK(top.score > 1e-3);
  CHECK(top.cost.forward_passes() == 1);

  // the problem restores the encoder's own active layers after every call
  CHECK(enc.active_layers() == std::vector<index_t>{1, 2, 3, 4, 5, 6});

  // a sweep over depths: one result per depth, the full depth keeps everything
  const auto sweep = asrkit::transform::prune_sweep(problem, {6, 5, 4}, PruningStrategy::svcca_redundancy);
  REQUIRE(sweep.size() == 3);
  CHECK(sweep[0].layers.size() == 6);
  CHECK(sweep[0].score == 0.0);
  CHECK(sweep[1].score == 0.0);
  CHECK(sweep[2].layers == redundancy.layers);
}

TEST_CASE("Depth pruning: SVCCA block structure thins a run of similar layers", "[transform][pruning]") {
  // layers 3 and 4 are the identity: streams 2, 3, 4 are one run; its interior layer is 3
  Enc enc = make_encoder(6, {3, 4});
  const auto dev = dev_set();
  const auto problem = asrkit::transform::encoder_pruning_problem(enc, dev, distance_to(enc, dev));
  const auto r = asrkit::transform::prune(problem, 5, PruningStrategy::svcca_blocks);
  CHECK(r.layers == std::vector<index_t>{1, 2, 4, 5, 6});
  CHECK(r.score == 0.0);
  CHECK(r.cost.stream_passes == 1);
  CHECK(r.cost.svcca_evaluations == 6 * 7 / 2);
}

TEST_CASE("Depth pruning: block thinning on a constructed similarity matrix", "[transform][pruning]") {
  // positions 0..6: streams {0,1,2,3} similar at 0.9, {4,5,6} at 0.8, across blocks 0.3
  std::vector<std::vector<double>> S(7, std::vector<double>(7, 0.3));
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 7; ++j) {
      if (i < 4 && j < 4) S[i][j] = 0.9;
      if (i >= 4 && j >= 4) S[i][j] = 0.8;
      if (i == j) S[i][j] = 1.0;
    }
  using asrkit::transform::block_thinning_removals;
  CHECK(block_thinning_removals(S, 6).size() == 0);
  CHECK(block_thinning_removals(S, 5) == std::vector<index_t>{2});        // ties: the upper layer
  CHECK(block_thinning_removals(S, 4) == std::vector<index_t>{1, 2});     // the 0.9 run's interior
  CHECK(block_thinning_removals(S, 3) == std::vector<index_t>{1, 2, 5});  // and the 0.8 run's
  CHECK(block_thinning_removals(S, 1).size() == 5);                       // one run: all but 6
  REQUIRE_THROWS_ID(block_thinning_removals(S, 0), asrkit::ValueError, "pruning.2");
  S[3].pop_back();
  REQUIRE_THROWS_ID(block_thinning_removals(S, 3), asrkit::ShapeError, "pruning.4");
}

TEST_CASE("Depth pruning: invalid problems and arguments", "[transform][pruning]") {
  asrkit::transform::PruningProblem<double> p;
  REQUIRE_THROWS_ID(asrkit::transform::prune(p, 1, PruningStrategy::top), asrkit::ValueError, "pruning.1");
  p.num_layers = 4;
  REQUIRE_THROWS_ID(asrkit::transform::prune(p, 0, PruningStrategy::top), asrkit::ValueError,
                    "keep must be in [1, 4] (layers of the model), got 0");
  REQUIRE_THROWS_ID(asrkit::transform::prune(p, 5, PruningStrategy::top), asrkit::ValueError, "pruning.2");
  REQUIRE_THROWS_ID(asrkit::transform::prune(p, 2, PruningStrategy::greedy_score), asrkit::ValueError, "pruning.3");
  REQUIRE_THROWS_ID(asrkit::transform::prune(p, 2, PruningStrategy::svcca_blocks), asrkit::ValueError, "pruning.3");
  p.streams = [](const std::vector<index_t>&) { return std::vector<Tensor<double>>(3); };
  REQUIRE_THROWS_ID(asrkit::transform::prune(p, 2, PruningStrategy::svcca_redundancy), asrkit::ShapeError,
                    "must return num_layers + 1 = 5 streams (positions 0..L), got 3");
  // top without a score: no evaluation, NaN score
  const auto r = asrkit::transform::prune(p, 2, PruningStrategy::top);
  CHECK(r.layers == std::vector<index_t>{1, 2});
  CHECK(std::isnan(r.score));
}
