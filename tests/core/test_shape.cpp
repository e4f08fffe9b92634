#include <asrkit/core/shape.hpp>

#include <vector>

#include "../test_util.hpp"

using asrkit::Shape;

TEST_CASE("shape basics", "[core][shape]") {
  const Shape s{2, 3, 4};
  CHECK(s.rank() == 3);
  CHECK(s.numel() == 24);
  CHECK(s.dim(-1) == 4);
  CHECK(s.dim(0) == 2);
  CHECK(s.str() == "[2, 3, 4]");
  CHECK(s.drop_front() == Shape{3, 4});
  CHECK(Shape{}.numel() == 1);
  CHECK(Shape{}.str() == "[]");
  CHECK(Shape{5, 0}.numel() == 0);
  const std::vector<long> dims{7, 8};
  CHECK(Shape(dims.begin(), dims.end()) == Shape{7, 8});
  CHECK(Shape{1, 2} != Shape{2, 1});
}

TEST_CASE("shape rejects bad input with ids", "[core][shape]") {
  REQUIRE_THROWS_ID((Shape{1, 2, 3, 4, 5}), asrkit::ShapeError, "[asrkit.shape.1] rank must be <= 4, got 5");
  REQUIRE_THROWS_ID((Shape{2, -1}), asrkit::ShapeError, "[asrkit.shape.2] dimension 1 must be >= 0, got -1");
  REQUIRE_THROWS_ID(Shape({2}).dim(1), asrkit::ShapeError, "[asrkit.shape.3]");
  REQUIRE_THROWS_ID(Shape({2}).dim(-2), asrkit::ShapeError, "[asrkit.shape.3]");
  REQUIRE_THROWS_ID(Shape().drop_front(), asrkit::ShapeError, "[asrkit.shape.3]");
  REQUIRE_THROWS_ID((Shape{1L << 40, 1L << 40}), asrkit::ShapeError, "[asrkit.shape.4]");
  REQUIRE_THROWS_ID(asrkit::check_shape(Shape{2, 3}, Shape{3, 2}, "weight"), asrkit::ShapeError,
                    "[asrkit.shape.5] weight: expected shape [3, 2], got [2, 3]");
}
