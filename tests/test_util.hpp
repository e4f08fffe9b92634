// Small helpers shared by asrkit's tests (not part of the library).
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace asrkit_test {

/// Path of a scratch file in the test data directory (made by CMake).
inline std::string data_path(const std::string& name) { return std::string(ASRKIT_TEST_DATA) + "/" + name; }

inline std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace asrkit_test

/// REQUIRE that `expr` throws `Type` whose message contains `fragment` (the stable id and, where
/// the message is pinned, the whole text). Any other exception fails the test too.
#define REQUIRE_THROWS_ID(expr, Type, fragment)                        \
  do {                                                                 \
    try {                                                              \
      (void)(expr);                                                    \
      FAIL("expected " #Type " from: " #expr);                         \
    } catch (const Type& asrkit_test_error_) {                         \
      REQUIRE_THAT(std::string(asrkit_test_error_.what()),             \
                   Catch::Contains(fragment));                         \
    }                                                                  \
  } while (false)
