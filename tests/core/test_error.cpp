#include <asrkit/core/error.hpp>

#include "../test_util.hpp"

TEST_CASE("errors carry a stable id prefix and derive from asrkit::Error", "[core][error]") {
  try {
    throw asrkit::ShapeError("shape.5", "x: expected shape [2], got [3]");
  } catch (const asrkit::Error& e) {
    CHECK(e.id() == "asrkit.shape.5");
    CHECK(std::string(e.what()) == "[asrkit.shape.5] x: expected shape [2], got [3]");
  }
  CHECK_THROWS_AS(throw asrkit::FormatError("wav.1", "x"), std::runtime_error);
  CHECK_THROWS_AS(throw asrkit::ValueError("rng.1", "x"), asrkit::Error);
  CHECK_THROWS_AS(throw asrkit::IoError("io.1", "x"), asrkit::Error);
  CHECK_THROWS_AS(throw asrkit::CudaError("cuda.1", "x"), asrkit::Error);
}

TEST_CASE("detail::str concatenates streamable values", "[core][error]") {
  CHECK(asrkit::detail::str("a", 1, ' ', 2.5) == "a1 2.5");
}
