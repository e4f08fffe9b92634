#include <asrkit/io/dtype.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../test_util.hpp"

using asrkit::DType;

namespace {

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float float_of(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Reference decoders written from the IEEE definition, independent of the library's bit tricks.
double half_reference(std::uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, frac = h & 0x3FF;
  double v;
  if (exp == 0x1F)
    v = frac ? std::numeric_limits<double>::quiet_NaN() : HUGE_VAL;
  else if (exp == 0)
    v = std::ldexp(frac, -24);
  else
    v = std::ldexp(1024 + frac, exp - 25);
  return sign ? -v : v;
}

double bfloat16_reference(std::uint16_t b) {
  const int sign = b >> 15, exp = (b >> 7) & 0xFF, frac = b & 0x7F;
  double v;
  if (exp == 0xFF)
    v = frac ? std::numeric_limits<double>::quiet_NaN() : HUGE_VAL;
  else if (exp == 0)
    v = std::ldexp(frac, -133);
  else
    v = std::ldexp(128 + frac, exp - 134);
  return sign ? -v : v;
}

bool same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

}  // namespace

TEST_CASE("dtype names, sizes and parsing", "[io][dtype]") {
  const DType all[] = {DType::F16, DType::BF16, DType::F32, DType::F64, DType::I32, DType::I64};
  const char* names[] = {"F16", "BF16", "F32", "F64", "I32", "I64"};
  const std::size_t sizes[] = {2, 2, 4, 8, 4, 8};
  for (int i = 0; i < 6; ++i) {
    CHECK(std::string(asrkit::dtype_name(all[i])) == names[i]);
    CHECK(asrkit::dtype_size(all[i]) == sizes[i]);
    CHECK(asrkit::parse_dtype(names[i]) == all[i]);
    CHECK(asrkit::dtype_is_float(all[i]) == (i < 4));
  }
  CHECK_FALSE(asrkit::parse_dtype("f32").has_value());
  CHECK_FALSE(asrkit::parse_dtype("U8").has_value());
  CHECK_FALSE(asrkit::parse_dtype("").has_value());
  static_assert(asrkit::dtype_of<float>() == DType::F32);
  static_assert(asrkit::dtype_of<double>() == DType::F64);
  static_assert(asrkit::dtype_of<std::int32_t>() == DType::I32);
  static_assert(asrkit::dtype_of<std::int64_t>() == DType::I64);
}

TEST_CASE("half -> float is exact for all 65536 patterns", "[io][dtype]") {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = asrkit::half_to_float(static_cast<std::uint16_t>(h));
    const double ref = half_reference(static_cast<std::uint16_t>(h));
    INFO("half bits " << h);
    REQUIRE(same(f, ref));
    if (std::isnan(ref)) {  // payload and sign carried over, so the round trip is the identity
      REQUIRE(asrkit::float_to_half(f) == (h | 0x200));
    } else {
      REQUIRE(asrkit::float_to_half(f) == h);
      REQUIRE(asrkit::double_to_half(ref) == h);
    }
  }
}

TEST_CASE("float -> half rounds to nearest even between every pair of halves", "[io][dtype]") {
  // For each positive finite half h (and its successor), the midpoint is a float: it must round
  // to the even neighbour, and one float ulp either side to the nearer one.
  for (std::uint32_t h = 0; h < 0x7C00; ++h) {
    const double lo = half_reference(static_cast<std::uint16_t>(h));
    const double hi = half_reference(static_cast<std::uint16_t>(h + 1));  // 0x7C00 is inf
    const double mid = h + 1 == 0x7C00 ? 65520.0 : (lo + hi) / 2;
    const auto mf = static_cast<float>(mid);
    REQUIRE(static_cast<double>(mf) == mid);
    const std::uint32_t even = (h & 1) ? h + 1 : h;
    INFO("half bits " << h);
    REQUIRE(asrkit::float_to_half(mf) == even);
    REQUIRE(asrkit::float_to_half(-mf) == (even | 0x8000));
    REQUIRE(asrkit::double_to_half(mid) == even);
    REQUIRE(asrkit::float_to_half(std::nextafter(mf, 0.0f)) == h);
    REQUIRE(asrkit::float_to_half(std::nextafter(mf, HUGE_VALF)) == h + 1);
  }
}

TEST_CASE("float -> half edge cases", "[io][dtype]") {
  using asrkit::float_to_half;
  CHECK(float_to_half(0.0f) == 0x0000);
  CHECK(float_to_half(-0.0f) == 0x8000);
  CHECK(float_to_half(1.0f) == 0x3C00);
  CHECK(float_to_half(65504.0f) == 0x7BFF);    // largest half
  CHECK(float_to_half(65519.996f) == 0x7BFF);  // just below the rounding boundary
  CHECK(float_to_half(65520.0f) == 0x7C00);    // tie with 2^16 rounds to even = inf
  CHECK(float_to_half(1e10f) == 0x7C00);
  CHECK(float_to_half(-1e10f) == 0xFC00);
  CHECK(float_to_half(HUGE_VALF) == 0x7C00);
  CHECK(float_to_half(-HUGE_VALF) == 0xFC00);
  CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);  // tie: rounds to even 0
  CHECK(float_to_half(std::ldexp(1.0f, -25) * 1.0000001f) == 0x0001);
  CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);     // tie between 1 and 2 -> 2
  CHECK(float_to_half(std::ldexp(1023.0f, -24)) == 0x03FF);  // largest subnormal
  CHECK(float_to_half(std::ldexp(2047.0f, -25)) == 0x0400);  // rounds up into the normals
  CHECK(float_to_half(std::ldexp(1.0f, -14)) == 0x0400);     // smallest normal
  CHECK(float_to_half(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(float_to_half(-std::numeric_limits<float>::denorm_min()) == 0x8000);
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // tie, down to even
  CHECK(float_to_half(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);  // tie, up to even
  const std::uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
  CHECK((nan & 0x7C00) == 0x7C00);
  CHECK((nan & 0x03FF) != 0);
  CHECK((float_to_half(-std::numeric_limits<float>::quiet_NaN()) & 0x8000) == 0x8000);
  // A signalling NaN whose payload lives only in the low bits must stay NaN, not become inf.
  CHECK((float_to_half(float_of(0x7F800001u)) & 0x03FF) != 0);
  CHECK(std::isnan(asrkit::half_to_float(float_to_half(float_of(0x7F800001u)))));
}

TEST_CASE("double -> half and bfloat16 round once", "[io][dtype]") {
  // 1 + 2^-11 + 2^-40: via float it becomes the tie 1 + 2^-11 and then 1.0 (even); rounded once
  // it is above the tie and goes up.
  const double d = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  CHECK(asrkit::double_to_half(d) == 0x3C01);
  const double b = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
  CHECK(asrkit::double_to_bfloat16(b) == 0x3F81);
  CHECK(asrkit::double_to_half(1e300) == 0x7C00);
  CHECK(asrkit::double_to_half(1e-300) == 0x0000);
  CHECK(asrkit::double_to_half(-1e-300) == 0x8000);
  CHECK(asrkit::double_to_bfloat16(1e300) == 0x7F80);
  CHECK(asrkit::double_to_bfloat16(std::numeric_limits<double>::denorm_min()) == 0x0000);
  CHECK(std::isnan(asrkit::bfloat16_to_float(asrkit::double_to_bfloat16(std::nan("")))));
}

TEST_CASE("bfloat16 <-> float for all 65536 patterns and every midpoint", "[io][dtype]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto b16 = static_cast<std::uint16_t>(b);
    const float f = asrkit::bfloat16_to_float(b16);
    const double ref = bfloat16_reference(b16);
    INFO("bfloat16 bits " << b);
    REQUIRE(same(f, ref));
    if (std::isnan(ref)) {
      REQUIRE(asrkit::float_to_bfloat16(f) == (b | 0x40));
      continue;
    }
    REQUIRE(asrkit::float_to_bfloat16(f) == b);
    REQUIRE(asrkit::double_to_bfloat16(ref) == b);
    if ((b & 0x7FFF) >= 0x7F80) continue;  // inf: no successor
    // Midpoint to the next pattern away from zero: the float whose low 16 bits are 0x8000.
    const std::uint32_t mid_bits = (b << 16) | 0x8000u;
    const std::uint32_t even = (b & 1) ? b + 1 : b;
    REQUIRE(asrkit::float_to_bfloat16(float_of(mid_bits)) == even);
    REQUIRE(asrkit::float_to_bfloat16(float_of(mid_bits - 1)) == b);
    REQUIRE(asrkit::float_to_bfloat16(float_of(mid_bits + 1)) == b + 1);
  }
  CHECK(bits_of(asrkit::bfloat16_to_float(0x3F80)) == 0x3F800000u);
  CHECK(asrkit::float_to_bfloat16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds up
  CHECK(asrkit::float_to_bfloat16(-0.0f) == 0x8000);
  CHECK(asrkit::float_to_bfloat16(std::numeric_limits<float>::quiet_NaN()) == 0x7FC0);
  CHECK((asrkit::float_to_bfloat16(float_of(0x7F800001u)) & 0x7F) != 0);  // stays NaN
  CHECK(asrkit::float_to_bfloat16(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(asrkit::float_to_bfloat16(float_of(0x00018000u)) == 0x0002);  // subnormal tie -> even
}
