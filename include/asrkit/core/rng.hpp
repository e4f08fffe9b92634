// asrkit/core/rng.hpp - a seedable random generator that gives the same numbers everywhere.
//
//   asrkit::Rng rng(42);
//   double u = rng.uniform();                   // [0, 1), 53 random bits
//   float z = rng.normal(0.0f, 1.0f);
//   rng.fill_normal(weights.view(), 0.0f, 0.02f);
//
// std::normal_distribution and friends are implementation-defined, so the same seed gives other
// numbers under libstdc++, libc++ and MSVC. asrkit defines every step itself:
// - bits: xoshiro256** (Blackman & Vigna 2018), state seeded by SplitMix64;
// - uniforms: the top 53 (double) or 24 (float) bits scaled by a power of two, exactly;
// - normals: Marsaglia's polar method, with a logarithm computed here from +, -, *, / and
//   explicit fma only (IEEE-754 rounds each of those exactly, so no libm differs, and there is
//   no a*b+c left for a compiler to contract differently); sqrt is correctly rounded by IEEE.
// The stream is therefore bit-identical on every IEEE-754 platform (not on x87 extended precision).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {
namespace detail {

/// Natural logarithm of x > 0 (finite), to within ~1 ulp, from exactly rounded operations only.
inline double portable_log(double x) {
  int e = 0;
  double m = std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1): exact
  if (m < 0.70710678118654752440) {
    m *= 2.0;  // exact
    --e;
  }
  // log(m) = 2 atanh(s), s = (m - 1) / (m + 1) = f / (2 + f), |s| <= 0.1716 (m - 1 is exact).
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  // atanh(s) / s = sum_k z^k / (2k + 1); 12 terms reach 0.1716^24 / 25 < 1e-19.
  double p = 1.0 / 25.0;
  for (int k = 11; k >= 0; --k) p = std::fma(p, z, 1.0 / (2 * k + 1));
  const double log_m = (2.0 * s) * p;
  return std::fma(static_cast<double>(e), 0.69314718055994530942, log_m);
}

}  // namespace detail

class Rng {
 public:
  using result_type = std::uint64_t;

  /// Same seed and stream, same numbers. Different `stream`s with one seed are independent
  /// sequences (use one per thread or per batch item to stay deterministic in parallel code).
  explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0) {
    std::uint64_t sm = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (auto& word : s_) word = splitmix64(sm);
  }

  // UniformRandomBitGenerator, so <algorithm>'s shuffle etc. accept an Rng.
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  result_type operator()() { return next_u64(); }

  /// xoshiro256**: 64 random bits.
  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, 1): 53 random bits for double, 24 for float (every value exactly k * 2^-bits).
  template <class T = double>
  T uniform() {
    static_assert(std::is_floating_point_v<T>, "uniform<T>: T must be float or double");
    constexpr int bits = std::numeric_limits<T>::digits;
    return static_cast<T>(next_u64() >> (64 - bits)) * (T(1) / static_cast<T>(1ull << bits));
  }

  /// Uniform in [lo, hi).
  template <class T>
  T uniform(T lo, T hi) {
    if (!(lo < hi) || !std::isfinite(hi - lo))
      throw ValueError("rng.1", detail::str("uniform(lo, hi) needs finite lo < hi, got lo=", lo,
                                            " hi=", hi));
    return std::fma(hi - lo, uniform<T>(), lo);
  }

  /// Uniform integer in [0, n), unbiased (rejection of the short last interval).
  std::uint64_t uniform_int(std::uint64_t n) {
    if (n == 0) throw ValueError("rng.2", "uniform_int(n) needs n >= 1, got 0");
    const std::uint64_t limit = max() - max() % n;  // largest multiple of n, exclusive
    std::uint64_t x;
    do x = next_u64();
    while (x >= limit);
    return x % n;
  }

  /// Standard normal N(0, 1) (Marsaglia polar method; the second value is kept for the next call).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      // u, v uniform in [-1, 1): signed 53-bit integers scaled by 2^-53, exact.
      u = static_cast<double>(static_cast<std::int64_t>(next_u64() >> 10) - (1ll << 53)) * 0x1p-53;
      v = static_cast<double>(static_cast<std::int64_t>(next_u64() >> 10) - (1ll << 53)) * 0x1p-53;
      s = std::fma(u, u, v * v);
    } while (s >= 1.0 || s == 0.0);
    const double scale = std::sqrt(-2.0 * detail::portable_log(s) / s);
    spare_ = v * scale;
    has_spare_ = true;
    return u * scale;
  }

  /// N(mean, stddev) with stddev >= 0.
  template <class T>
  T normal(T mean, T stddev) {
    if (!(stddev >= T(0)) || !std::isfinite(stddev) || !std::isfinite(mean))
      throw ValueError("rng.3", detail::str("normal(mean, stddev) needs finite mean and stddev >= 0,"
                                            " got mean=", mean, " stddev=", stddev));
    return std::fma(stddev, static_cast<T>(normal()), mean);
  }

  /// true with probability p, p in [0, 1].
  bool bernoulli(double p) {
    if (!(p >= 0.0 && p <= 1.0))
      throw ValueError("rng.4", detail::str("bernoulli(p) needs p in [0, 1], got ", p));
    return uniform<double>() < p;
  }

  // ---- filling tensors (CPU), element order = row-major order --------------------------------
  template <class T>
  void fill_uniform(TensorView<T> out, T lo, T hi) {
    for (index_t i = 0, n = out.numel(); i < n; ++i) out.data()[i] = uniform(lo, hi);
  }
  template <class T>
  void fill_normal(TensorView<T> out, T mean, T stddev) {
    for (index_t i = 0, n = out.numel(); i < n; ++i) out.data()[i] = normal(mean, stddev);
  }
  template <class T>
  void fill_bernoulli(TensorView<T> out, double p) {
    for (index_t i = 0, n = out.numel(); i < n; ++i) out.data()[i] = bernoulli(p) ? T(1) : T(0);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  std::uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace asrkit
