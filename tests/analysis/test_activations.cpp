// analysis/activations.hpp and Encoder::forward_streams: valid frames only, in utterance order;
// the streams at every position (pruned positions repeat), agreeing with forward()'s output and
// taps; capture over a dataset; errors.
#include <asrkit/analysis/activations.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/transformer_block.hpp>

#include <cstdint>
#include <vector>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
namespace an = asrkit::analysis;

namespace {
template <class T>
Tensor<T> normal(const Shape& s, std::uint64_t seed) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), T(1));
  return t;
}
template <class T>
void require_equal(const Tensor<T>& a, const Tensor<T>& b) {
  REQUIRE(a.shape() == b.shape());
  for (index_t i = 0; i < a.numel(); ++i) REQUIRE(a.data()[i] == b.data()[i]);
}
}  // namespace

TEST_CASE("ActivationRecorder keeps the valid frames, utterance by utterance", "[analysis][activations]") {
  Tensor<float> x(Shape{4, 3, 2});  // x(t, b, :) = (100 b + t, -(100 b + t))
  for (index_t t = 0; t < 4; ++t)
    for (index_t b = 0; b < 3; ++b) x(t, b, 0) = float(100 * b + t), x(t, b, 1) = -float(100 * b + t);
  an::ActivationRecorder<float> rec(2);
  const std::vector<std::int32_t> len = {4, 1, 2};
  rec.append(x, asrkit::as_view(len));
  REQUIRE(rec.rows() == 7);
  rec.append(x[0].reshape(Shape{1, 3, 2}));  // no lengths: every frame
  const Tensor<float> m = rec.matrix();
  REQUIRE(m.shape() == Shape{10, 2});
  const float want[] = {0, 1, 2, 3, 100, 200, 201, 0, 100, 200};
  for (index_t r = 0; r < 10; ++r) {
    CHECK(m(r, 0) == want[r]);
    CHECK(m(r, 1) == -want[r]);
  }
  rec.clear();
  CHECK(rec.rows() == 0);
  REQUIRE_THROWS_ID(an::ActivationRecorder<float>(0), asrkit::ValueError, "[asrkit.activations.1]");
  REQUIRE_THROWS_ID(rec.append(Tensor<float>(Shape{4, 3, 5})), asrkit::ShapeError,
                    "[asrkit.activations.2] ActivationRecorder::append: argument x: expected shape [T, B, 2], got [4, 3, 5]");
  const std::vector<std::int32_t> two = {1, 2}, long_ = {1, 5, 0};
  REQUIRE_THROWS_ID(rec.append(x, asrkit::as_view(two)), asrkit::ShapeError, "[asrkit.activations.3]");
  REQUIRE_THROWS_ID(rec.append(x, asrkit::as_view(long_)), asrkit::ValueError,
                    "[asrkit.activations.3] ActivationRecorder::append: lengths[1] = 5 is outside [0, 4]");
}

template <class Block>
void check_streams(typename Block::Options bo) {
  using T = typename Block::value_type;
  asrkit::Rng rng(7);
  asrkit::EncoderOptions eo;
  eo.intermediate_layers = {2};
  bo.heads = 2;
  bo.ff = 24;
  asrkit::Encoder<Block> enc(3, 8, bo, eo, rng);
  const auto x = normal<T>(Shape{6, 2, 8}, 8);
  const std::vector<std::int32_t> len = {6, 4};
  auto streams = enc.forward_streams(x.view(), asrkit::as_view(len));
  REQUIRE(streams.size() == 4);
  const auto out = enc.forward(x.view(), asrkit::as_view(len));
  // the last stream through after_norm is the output; the tap at 2 is stream 2 through after_norm
  auto* norm = enc.after_norm();
  REQUIRE(norm != nullptr);
  Tensor<T> last = norm->forward(streams[3]), tap = norm->forward(streams[2]);
  for (index_t t = 0; t < 6; ++t)
    for (index_t b = 0; b < 2; ++b)
      for (index_t d = 0; d < 8; ++d) {
        if (t >= len[static_cast<std::size_t>(b)]) {
          CHECK(streams[1](t, b, d) == 0);  // padding zeroed
          continue;
        }
        CHECK(last(t, b, d) == Approx(out.output(t, b, d)).margin(1e-12));
        CHECK(tap(t, b, d) == Approx(out.intermediates[0](t, b, d)).margin(1e-12));
      }
  // pruning layer 2 repeats stream 1 at position 2; the other positions still run
  enc.set_layers({1, 3});
  const auto pruned = enc.forward_streams(x.view(), asrkit::as_view(len));
  REQUIRE(pruned.size() == 4);
  require_equal(pruned[0], streams[0]);
  require_equal(pruned[1], streams[1]);
  require_equal(pruned[2], pruned[1]);
  bool differs = false;
  for (index_t i = 0; i < pruned[3].numel(); ++i) differs = differs || pruned[3].data()[i] != streams[3].data()[i];
  CHECK(differs);
  // capture over a dataset of two batches: rows = total valid frames, in batch order
  enc.set_depth(3);
  std::vector<an::SequenceBatch<T>> batches = {{x, len}, {normal<T>(Shape{3, 1, 8}, 9), {}}};
  const auto acts = an::capture_encoder_streams(enc, batches);
  REQUIRE(acts.size() == 4);
  for (const auto& a : acts) REQUIRE(a.shape() == Shape{13, 8});
  CHECK(acts[3](0, 0) == streams[3](0, 0, 0));
  CHECK(acts[3](6, 0) == streams[3](0, 1, 0));   // utterance 1 starts after utterance 0's 6 frames
  CHECK(acts[3](9, 5) == streams[3](3, 1, 5));
  const auto third = enc.forward_streams(batches[1].x.view());
  CHECK(acts[2](12, 7) == third[2](2, 0, 7));
}

TEST_CASE("Encoder::forward_streams gives the residual stream at every position", "[analysis][activations]") {
  check_streams<asrkit::TransformerBlock<double>>({});
  asrkit::ConformerBlockOptions co;
  co.kernel = 3;
  check_streams<asrkit::ConformerBlock<double>>(co);
}
