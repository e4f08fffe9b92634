#include <asrkit/core/tensor.hpp>

#include <cstdint>
#include <utility>

#include "../test_util.hpp"

using asrkit::Shape;
using asrkit::Tensor;
using asrkit::TensorView;

TEST_CASE("tensor owns aligned zeroed row-major storage", "[core][tensor]") {
  Tensor<float> x({2, 3, 4});
  CHECK(x.rank() == 3);
  CHECK(x.numel() == 24);
  CHECK(x.size_bytes() == 96);
  CHECK(reinterpret_cast<std::uintptr_t>(x.data()) % 64 == 0);
  for (int i = 0; i < 24; ++i) CHECK(x.data()[i] == 0.0f);
  x(1, 2, 3) = 5.0f;
  CHECK(x.data()[1 * 12 + 2 * 4 + 3] == 5.0f);
  CHECK(x.at(1, 2, 3) == 5.0f);
  Tensor<double> y({3}, 1.5);
  CHECK(y(2) == 1.5);
  Tensor<int> empty;
  CHECK(empty.shape() == Shape{0});
  CHECK(empty.data() == nullptr);
  Tensor<float> scalar(Shape{});
  CHECK(scalar.numel() == 1);
  CHECK(scalar.data() != nullptr);
}

TEST_CASE("tensor copy is deep, move steals", "[core][tensor]") {
  Tensor<float> a({2, 2}, 1.0f);
  Tensor<float> b = a;
  b(0, 0) = 7.0f;
  CHECK(a(0, 0) == 1.0f);
  Tensor<float> c = std::move(b);
  CHECK(c(0, 0) == 7.0f);
  CHECK(b.data() == nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  CHECK(b.numel() == 0);
  a = c;
  CHECK(a(0, 0) == 7.0f);
  CHECK(a.data() != c.data());
}

TEST_CASE("views slice, reshape and map to Eigen without copying", "[core][tensor]") {
  Tensor<float> x({3, 2, 4});
  for (int i = 0; i < 24; ++i) x.data()[i] = static_cast<float>(i);
  TensorView<float> frame = x[1];
  CHECK(frame.shape() == Shape{2, 4});
  CHECK(frame.data() == x.data() + 8);
  CHECK(frame(1, 3) == 15.0f);
  frame(0, 0) = -1.0f;
  CHECK(x(1, 0, 0) == -1.0f);
  auto m = x.matrix();
  CHECK(m.rows() == 6);
  CHECK(m.cols() == 4);
  CHECK(m(5, 3) == 23.0f);
  CHECK(x.flat().sum() == Approx(276.0 - 8.0 - 1.0));
  auto r = x.reshape({4, 6});
  CHECK(r(3, 5) == 23.0f);
  const Tensor<float>& cx = x;
  TensorView<const float> cv = cx.view();
  CHECK(cv[2](1, 1) == 21.0f);
  TensorView<const float> converted = frame;  // T -> const T
  CHECK(converted.data() == frame.data());
  Tensor<float> copy(cv[0]);
  CHECK(copy.shape() == Shape{2, 4});
  CHECK(copy.data() != x.data());
}

TEST_CASE("tensor shape errors have ids", "[core][tensor]") {
  Tensor<float> x({2, 3});
  REQUIRE_THROWS_ID(x[2], asrkit::ShapeError, "[asrkit.tensor.1] slice index 2 is out of range for shape [2, 3]");
  REQUIRE_THROWS_ID(x[-1], asrkit::ShapeError, "[asrkit.tensor.1]");
  REQUIRE_THROWS_ID(x.reshape({4, 2}), asrkit::ShapeError,
                    "[asrkit.tensor.2] cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)");
  REQUIRE_THROWS_ID(x.at(0, 3), asrkit::ShapeError, "[asrkit.tensor.3] index (0, 3) is out of range for shape [2, 3]");
  REQUIRE_THROWS_ID(x.at(1), asrkit::ShapeError, "[asrkit.tensor.3]");
}
