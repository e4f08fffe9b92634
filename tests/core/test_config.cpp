#include <asrkit/core/config.hpp>

#include <string>

#include "../test_util.hpp"

TEST_CASE("version string matches the version macros", "[core][config]") {
  const std::string expected = std::to_string(ASRKIT_VERSION_MAJOR) + "." +
                               std::to_string(ASRKIT_VERSION_MINOR) + "." +
                               std::to_string(ASRKIT_VERSION_PATCH);
  CHECK(asrkit::version() == expected);
}
