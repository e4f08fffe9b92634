// asrkit/io/dtype.hpp - element types of stored tensors (safetensors) and exact conversions
// between IEEE half / bfloat16 and float / double.
//
//   asrkit::DType d = *asrkit::parse_dtype("BF16");    // std::nullopt for an unknown name
//   std::uint16_t h = asrkit::float_to_half(0.1f);     // round to nearest, ties to even
//   float f = asrkit::half_to_float(h);                // exact
//
// Half and bfloat16 values are carried as their raw 16-bit patterns (std::uint16_t); no
// arithmetic type is provided for them. Narrowing rounds to nearest-even, overflows to
// infinity, produces subnormals where due, keeps the sign of zeros and turns NaN into a quiet
// NaN with the same sign (the top payload bits are kept).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>

namespace asrkit {

enum class DType { F16, BF16, F32, F64, I32, I64 };

/// The safetensors name: "F16", "BF16", "F32", "F64", "I32", "I64".
constexpr const char* dtype_name(DType d) noexcept {
  switch (d) {
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
  }
  return "?";
}

/// Bytes per element.
constexpr std::size_t dtype_size(DType d) noexcept {
  switch (d) {
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F64:
    case DType::I64:
      return 8;
  }
  return 0;
}

/// True for F16, BF16, F32, F64.
constexpr bool dtype_is_float(DType d) noexcept {
  return d == DType::F16 || d == DType::BF16 || d == DType::F32 || d == DType::F64;
}

/// The DType named `name` (exact, case-sensitive safetensors spelling), or std::nullopt.
inline std::optional<DType> parse_dtype(const std::string& name) {
  for (DType d : {DType::F16, DType::BF16, DType::F32, DType::F64, DType::I32, DType::I64})
    if (name == dtype_name(d)) return d;
  return std::nullopt;
}

namespace detail {
template <class T>
inline constexpr bool dtype_unsupported_v = false;
}  // namespace detail

/// The DType that stores T unchanged: float, double, std::int32_t, std::int64_t.
template <class T>
constexpr DType dtype_of() noexcept {
  if constexpr (std::is_same_v<T, float>)
    return DType::F32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::F64;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return DType::I32;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DType::I64;
  else
    static_assert(detail::dtype_unsupported_v<T>,
                  "dtype_of<T>: T must be float, double, std::int32_t or std::int64_t");
}

namespace detail {

template <class To, class From>
To bit_cast(const From& from) noexcept {
  static_assert(sizeof(To) == sizeof(From), "bit_cast: sizes differ");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

// Narrows an IEEE binary value (bits `x`: kSrcFrac fraction bits, exponent bias kSrcBias) to a
// 16-bit format with kDstFrac fraction bits and exponent bias kDstBias, rounding to nearest even.
// One routine for float/double -> half/bfloat16, so double -> half is rounded once (going through
// float would round twice).
template <class Bits, int kSrcFrac, int kSrcBias, int kDstFrac, int kDstBias>
std::uint16_t narrow_ieee(Bits x) noexcept {
  constexpr int kBits = static_cast<int>(sizeof(Bits) * 8);
  constexpr Bits kFracMask = (Bits{1} << kSrcFrac) - 1;
  constexpr Bits kExpMask = (Bits{1} << (kBits - 1 - kSrcFrac)) - 1;
  constexpr std::uint32_t kDstInf = ((1u << (15 - kDstFrac)) - 1) << kDstFrac;
  const auto sign = static_cast<std::uint32_t>((x >> (kBits - 1)) << 15);
  const Bits exp = (x >> kSrcFrac) & kExpMask;
  const Bits frac = x & kFracMask;

  if (exp == kExpMask) {  // Inf or NaN; NaN stays NaN (quiet bit forced, top payload bits kept)
    if (frac == 0) return static_cast<std::uint16_t>(sign | kDstInf);
    return static_cast<std::uint16_t>(sign | kDstInf | (1u << (kDstFrac - 1)) |
                                      static_cast<std::uint32_t>(frac >> (kSrcFrac - kDstFrac)));
  }
  if (exp == 0 && frac == 0) return static_cast<std::uint16_t>(sign);

  // value = m * 2^(e - kSrcFrac), m with its implicit bit (source subnormals have none).
  const int e = exp == 0 ? 1 - kSrcBias : static_cast<int>(exp) - kSrcBias;
  const Bits m = exp == 0 ? frac : (frac | (Bits{1} << kSrcFrac));
  const auto round_shift = [](Bits v, int s) -> std::uint32_t {  // round(v / 2^s), ties to even
    if (s >= kBits) return 0;  // v < 2^(kSrcFrac+1) <= 2^(s-1): below half of one unit
    Bits q = v >> s;
    const Bits rem = v & ((Bits{1} << s) - 1);
    const Bits half = Bits{1} << (s - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return static_cast<std::uint32_t>(q);
  };

  if (e > kDstBias) return static_cast<std::uint16_t>(sign | kDstInf);
  if (e >= 1 - kDstBias) {
    // Normal range. Adding the rounded significand (implicit bit included) to (exponent - 1)
    // lets a rounding carry step into the next binade, up to infinity, and encodes source
    // subnormals that land on the destination's subnormals (float -> bfloat16) correctly.
    const std::uint32_t enc = (static_cast<std::uint32_t>(e + kDstBias - 1) << kDstFrac) +
                              round_shift(m, kSrcFrac - kDstFrac);
    return static_cast<std::uint16_t>(sign | (enc >= kDstInf ? kDstInf : enc));
  }
  // Subnormal destination: count units of the smallest subnormal, 2^(1 - kDstBias - kDstFrac).
  const int s = (kSrcFrac - kDstFrac) + (1 - kDstBias - e);
  return static_cast<std::uint16_t>(sign | round_shift(m, s));
}

}  // namespace detail

/// Exact: every half value is a float.
inline float half_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t frac = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (frac << 13);  // Inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (frac << 13);  // rebias 15 -> 127
  } else if (frac == 0) {
    bits = sign;
  } else {
    // Subnormal: frac * 2^-24. Shift the leading one up to the implicit position.
    std::uint32_t e = 113;  // exponent field for 2^-14 (the half's subnormal scale + 1)
    while ((frac & 0x400u) == 0) {
      frac <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((frac & 0x3FFu) << 13);
  }
  return detail::bit_cast<float>(bits);
}

/// Round to nearest, ties to even; |f| >= 65520 gives infinity.
inline std::uint16_t float_to_half(float f) noexcept {
  return detail::narrow_ieee<std::uint32_t, 23, 127, 10, 15>(detail::bit_cast<std::uint32_t>(f));
}

/// Rounded once (not through float).
inline std::uint16_t double_to_half(double d) noexcept {
  return detail::narrow_ieee<std::uint64_t, 52, 1023, 10, 15>(detail::bit_cast<std::uint64_t>(d));
}

/// Exact: bfloat16 is the top half of a float.
inline float bfloat16_to_float(std::uint16_t b) noexcept {
  return detail::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// Round to nearest, ties to even (not truncation).
inline std::uint16_t float_to_bfloat16(float f) noexcept {
  return detail::narrow_ieee<std::uint32_t, 23, 127, 7, 127>(detail::bit_cast<std::uint32_t>(f));
}

/// Rounded once (not through float).
inline std::uint16_t double_to_bfloat16(double d) noexcept {
  return detail::narrow_ieee<std::uint64_t, 52, 1023, 7, 127>(detail::bit_cast<std::uint64_t>(d));
}

}  // namespace asrkit
