// asrkit::Rng against the independent Python implementation in rng_reference.py: raw bits and
// uniforms must match exactly; normals to 4 ulp (Python's libm log vs asrkit's portable log).
#include <asrkit/core/rng.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>

#include "../test_util.hpp"

TEST_CASE("Rng reproduces the reference stream", "[parity][rng]") {
  std::ifstream in(asrkit_test::data_path("rng_reference.txt"));
  REQUIRE(in.good());
  std::map<std::tuple<std::string, std::uint64_t, std::uint64_t>, asrkit::Rng> rngs;
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind, value;
    std::uint64_t seed = 0, stream = 0;
    ls >> kind >> seed >> stream >> value;
    auto key = std::make_tuple(kind, seed, stream);
    auto it = rngs.find(key);
    if (it == rngs.end()) it = rngs.emplace(key, asrkit::Rng(seed, stream)).first;
    asrkit::Rng& rng = it->second;
    if (kind == "u64") {
      REQUIRE(rng.next_u64() == std::stoull(value));
    } else if (kind == "uniform") {
      REQUIRE(rng.uniform() == std::strtod(value.c_str(), nullptr));
    } else if (kind == "uniform_float") {
      REQUIRE(rng.uniform<float>() == static_cast<float>(std::strtod(value.c_str(), nullptr)));
    } else {
      const double expected = std::strtod(value.c_str(), nullptr);
      const double got = rng.normal();
      REQUIRE(std::fabs(got - expected) <= 4 * std::numeric_limits<double>::epsilon() * std::fabs(expected));
    }
    ++lines;
  }
  CHECK(lines == 4 * (64 * 3 + 1000));
}
