#include <asrkit/train/batch.hpp>

#include <cstdint>
#include <vector>

#include "../test_util.hpp"

using asrkit::Batch;
using asrkit::make_batch;
using asrkit::Shape;
using asrkit::Tensor;

namespace {
// [frames, bins] with value 100 * item + 10 * frame + bin.
Tensor<float> features(int item, int frames, int bins) {
  Tensor<float> f({frames, bins});
  for (int t = 0; t < frames; ++t)
    for (int k = 0; k < bins; ++k) f(t, k) = static_cast<float>(100 * item + 10 * t + k);
  return f;
}
}  // namespace

TEST_CASE("make_batch pads time-major and concatenates targets", "[train][batch]") {
  const std::vector<Tensor<float>> f = {features(0, 2, 3), features(1, 4, 3), features(2, 0, 3)};
  const std::vector<std::vector<std::int32_t>> l = {{1, 2}, {3}, {}};
  const Batch<float> b = make_batch(f, l);
  REQUIRE(b.features.shape() == Shape{4, 3, 3});
  CHECK(b.size() == 3);
  for (int item = 0; item < 3; ++item)
    for (int t = 0; t < 4; ++t)
      for (int k = 0; k < 3; ++k) {
        const float want = t < f[static_cast<std::size_t>(item)].dim(0)
                               ? static_cast<float>(100 * item + 10 * t + k)
                               : 0.0f;
        CHECK(b.features(t, item, k) == want);
      }
  CHECK(b.input_lengths.shape() == Shape{3});
  CHECK(b.input_lengths(0) == 2);
  CHECK(b.input_lengths(1) == 4);
  CHECK(b.input_lengths(2) == 0);
  REQUIRE(b.targets.shape() == Shape{3});
  CHECK(b.targets(0) == 1);
  CHECK(b.targets(1) == 2);
  CHECK(b.targets(2) == 3);
  CHECK(b.target_lengths(0) == 2);
  CHECK(b.target_lengths(1) == 1);
  CHECK(b.target_lengths(2) == 0);
  CHECK(b.indices.empty());
}

TEST_CASE("make_batch works for double and views", "[train][batch]") {
  Tensor<double> a({1, 2}, 1.5);
  std::vector<asrkit::TensorView<const double>> v = {a.view()};
  const Batch<double> b = make_batch<double>(v, {{4, 5, 6}});
  CHECK(b.features.shape() == Shape{1, 1, 2});
  CHECK(b.features(0, 0, 1) == 1.5);
  CHECK(b.targets.numel() == 3);
}

TEST_CASE("make_batch errors", "[train][batch]") {
  REQUIRE_THROWS_ID(make_batch(std::vector<Tensor<float>>{features(0, 2, 3), features(1, 2, 4)},
                               {{1}, {2}}),
                    asrkit::ShapeError,
                    "[asrkit.batch.1] make_batch: item 1 has 4 bins, item 0 has 3 bins "
                    "(shape [2, 4])");
  REQUIRE_THROWS_ID(make_batch(std::vector<Tensor<float>>{Tensor<float>({5})}, {{1}}),
                    asrkit::ShapeError,
                    "[asrkit.batch.1] make_batch: features of item 0 must be [frames, bins], "
                    "got shape [5]");
  REQUIRE_THROWS_ID(make_batch(std::vector<Tensor<float>>{features(0, 2, 3)}, {{1}, {2}}),
                    asrkit::ShapeError,
                    "[asrkit.batch.2] make_batch: 1 feature tensors but 2 label sequences");
  REQUIRE_THROWS_ID(make_batch(std::vector<Tensor<float>>{}, {}), asrkit::ValueError,
                    "[asrkit.batch.3]");
  REQUIRE_THROWS_ID(make_batch(std::vector<Tensor<float>>{features(0, 2, 3)}, {{1, -2}}),
                    asrkit::ValueError,
                    "[asrkit.batch.4] make_batch: label 1 of item 0 is negative (-2)");
}
