#include <asrkit/frontend/resample.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Resampler;
using asrkit::ResampleOptions;
using asrkit::Shape;
using asrkit::Tensor;

namespace {

constexpr double kPi = 3.14159265358979323846;

template <class T>
Tensor<T> tone(index_t n, double freq, int rate, double amplitude = 0.5) {
  Tensor<T> x(Shape{n});
  for (index_t i = 0; i < n; ++i)
    x(i) = static_cast<T>(amplitude * std::sin(2.0 * kPi * freq * static_cast<double>(i) / rate));
  return x;
}

// RMS of y - expected over the interior [margin, m - margin) (edges meet the zero padding).
template <class T>
double rms_error(const Tensor<T>& y, const Tensor<T>& expected, index_t margin) {
  double e = 0.0;
  const index_t m = y.numel();
  for (index_t k = margin; k < m - margin; ++k) {
    const double d = static_cast<double>(y(k)) - static_cast<double>(expected(k));
    e += d * d;
  }
  return std::sqrt(e / static_cast<double>(m - 2 * margin));
}

template <class T>
double rms(const Tensor<T>& y, index_t margin) {
  return rms_error(y, Tensor<T>(y.shape()), margin);
}

double db(double ratio) { return 20.0 * std::log10(ratio); }

}  // namespace

TEST_CASE("resample at equal rates is a copy", "[frontend][resample]") {
  const Tensor<float> x = tone<float>(1001, 440.0, 16000);
  const Tensor<float> y = asrkit::resample(x, 16000, 16000);
  REQUIRE(y.shape() == x.shape());
  for (index_t i = 0; i < x.numel(); ++i) REQUIRE(y(i) == x(i));
  // 32000 / 32000 reduces to 1 / 1 as well.
  const Tensor<double> xd = tone<double>(10, 440.0, 32000);
  const Tensor<double> yd = asrkit::resample(xd, 32000, 32000);
  for (index_t i = 0; i < xd.numel(); ++i) REQUIRE(yd(i) == xd(i));
  CHECK(Resampler<float>(16000, 16000).taps() == 0);
}

TEST_CASE("resample keeps a tone's frequency, amplitude and phase", "[frontend][resample]") {
  // Output k sits at input time k * from / to, so the exact answer is the same sinusoid sampled
  // at the new rate. Tones within 0.75 of the lower Nyquist are in the flat passband (ripple
  // < 0.001 dB) and the images / aliases of the rest land in the >= 80 dB stopband.
  struct Case {
    int from, to;
    double freq;
  };
  const Case cases[] = {{8000, 16000, 1000.0}, {8000, 16000, 2900.0}, {44100, 16000, 440.0},
                        {44100, 16000, 5900.0}, {48000, 16000, 3000.0}, {48000, 16000, 6000.0},
                        {22050, 16000, 5000.0}, {16000, 8000, 2500.0},  {16000, 44100, 5500.0}};
  for (const Case& c : cases) {
    INFO(c.from << " -> " << c.to << ", " << c.freq << " Hz");
    const Tensor<double> x = tone<double>(c.from / 2, c.freq, c.from);  // 0.5 s
    const Tensor<double> y = asrkit::resample(x, c.from, c.to);
    REQUIRE(y.numel() == c.to / 2);
    const Tensor<double> want = tone<double>(y.numel(), c.freq, c.to);
    const index_t margin = c.to / 50;  // 20 ms, well beyond the filter's half-length
    const double err = rms_error(y, want, margin);
    const double ref = rms(want, margin);
    CHECK(db(err / ref) < -75.0);                            // frequency, phase and amplitude
    CHECK(std::abs(db(rms(y, margin) / ref)) < 0.001);       // amplitude alone, in dB
  }
}

TEST_CASE("resample attenuates content above the new Nyquist by >= 80 dB",
          "[frontend][resample]") {
  // The stopband starts at 1.10 x the lower Nyquist (8.8 kHz for 16 kHz output).
  struct Case {
    int from, to;
    double freq;
  };
  const Case cases[] = {{44100, 16000, 8800.0}, {44100, 16000, 12000.0}, {48000, 16000, 9000.0},
                        {48000, 16000, 20000.0}, {22050, 16000, 10000.0}};
  for (const Case& c : cases) {
    INFO(c.from << " -> " << c.to << ", " << c.freq << " Hz");
    const Tensor<float> x = tone<float>(c.from / 2, c.freq, c.from);
    const Tensor<float> y = asrkit::resample(x, c.from, c.to);
    const index_t margin = c.to / 50;
    CHECK(db(rms(y, margin) / rms(x, c.from / 50)) < -80.0);
  }
}

TEST_CASE("resample passband and transition follow the documented response",
          "[frontend][resample]") {
  // Gain relative to the lower Nyquist fn: within 0.1 dB up to 0.83 fn, > -3 dB at 0.90 fn.
  const auto gain_db = [](double freq) {
    const Tensor<double> x = tone<double>(24000, freq, 48000);
    const Tensor<double> y = asrkit::resample(x, 48000, 16000);
    return db(rms(y, 320) / rms(x, 960));
  };
  CHECK(std::abs(gain_db(6600.0)) < 0.1);
  CHECK(gain_db(7200.0) > -3.0);
  CHECK(gain_db(7200.0) < -0.5);
}

TEST_CASE("resample output length is ceil(n * to / from)", "[frontend][resample]") {
  const int pairs[][2] = {{44100, 16000}, {48000, 16000}, {8000, 16000}, {22050, 16000},
                          {16000, 44100}, {7, 3},         {1, 5}};
  for (const auto& p : pairs) {
    const Resampler<float> rs(p[0], p[1]);
    for (index_t n = 0; n < 200; ++n) {
      const index_t want = (n * p[1] + p[0] - 1) / p[0];
      REQUIRE(rs.output_length(n) == want);
    }
    REQUIRE(rs(Tensor<float>(Shape{0})).numel() == 0);
    REQUIRE(rs(Tensor<float>(Shape{1}, 1.0f)).numel() == rs.output_length(1));
    REQUIRE(rs(Tensor<float>(Shape{123})).numel() == rs.output_length(123));
  }
  // Exact for long inputs too (no n * to overflow): 2^40 samples at 44.1 kHz -> 16 kHz.
  const index_t n = index_t{1} << 40;
  const index_t q = n / 441, r = n % 441;
  CHECK(Resampler<float>(44100, 16000).output_length(n) == q * 160 + (r * 160 + 440) / 441);
}

TEST_CASE("resample float and double agree, Resampler is reusable", "[frontend][resample]") {
  std::uint32_t state = 12345u;
  Tensor<double> xd(Shape{5000});
  for (index_t i = 0; i < xd.numel(); ++i) {
    state = state * 1664525u + 1013904223u;  // LCG: reproducible noise in [-0.5, 0.5)
    xd(i) = static_cast<double>(state >> 8) / (1 << 24) - 0.5;
  }
  Tensor<float> xf(xd.shape());
  for (index_t i = 0; i < xd.numel(); ++i) xf(i) = static_cast<float>(xd(i));
  for (const int to : {8000, 16000, 32000}) {
    const Resampler<float> rs(44100, to);
    const Tensor<float> yf = rs(xf);
    const Tensor<double> yd = asrkit::resample(xd, 44100, to);
    REQUIRE(yf.numel() == yd.numel());
    double max_diff = 0.0;
    for (index_t k = 0; k < yf.numel(); ++k)
      max_diff = std::max(max_diff, std::abs(static_cast<double>(yf(k)) - yd(k)));
    CHECK(max_diff < 1e-5);
    const Tensor<float> again = rs(xf);  // same filter bank, same result
    for (index_t k = 0; k < yf.numel(); ++k) REQUIRE(again(k) == yf(k));
  }
}

TEST_CASE("resample handles rate pairs with a huge reduced ratio", "[frontend][resample]") {
  // 100003 is prime: L = 200000 phases x 35 taps is over the bank limit, so taps are computed
  // per output (the slow path); the answer is the same tone.
  const Tensor<double> x = tone<double>(4000, 3000.0, 100003);
  const Tensor<double> y = asrkit::resample(x, 100003, 200000);
  const Tensor<double> want = tone<double>(y.numel(), 3000.0, 200000);
  CHECK(db(rms_error(y, want, 200) / rms(want, 200)) < -75.0);
  // 1 Hz -> 3 Hz and back: tiny rates are rates too.
  CHECK(asrkit::resample(Tensor<float>(Shape{10}, 1.0f), 1, 3).numel() == 30);
}

TEST_CASE("resample an Audio", "[frontend][resample]") {
  asrkit::Audio a;
  a.samples = tone<float>(8000, 500.0, 8000);
  a.sample_rate = 8000;
  a.num_channels = 1;
  const asrkit::Audio b = asrkit::resample(a, 16000);
  CHECK(b.sample_rate == 16000);
  CHECK(b.num_channels == 1);
  CHECK(b.samples.numel() == 16000);
}

TEST_CASE("resample errors have ids", "[frontend][resample]") {
  const Tensor<float> x(Shape{10});
  REQUIRE_THROWS_ID(asrkit::resample(x, 0, 16000), asrkit::ValueError,
                    "[asrkit.resample.1] resample: from_rate and to_rate must be >= 1, got "
                    "from_rate 0, to_rate 16000");
  REQUIRE_THROWS_ID(asrkit::resample(x, 16000, -8000), asrkit::ValueError, "[asrkit.resample.1]");
  ResampleOptions o;
  o.rolloff = 0.0;
  REQUIRE_THROWS_ID(asrkit::resample(x, 8000, 16000, o), asrkit::ValueError,
                    "[asrkit.resample.2] resample: rolloff must be in (0, 1], got 0");
  o.rolloff = 1.01;
  REQUIRE_THROWS_ID(asrkit::resample(x, 8000, 16000, o), asrkit::ValueError, "[asrkit.resample.2]");
  o.rolloff = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_ID(asrkit::resample(x, 8000, 16000, o), asrkit::ValueError, "[asrkit.resample.2]");
  o = {};
  o.lowpass_width = 0;
  REQUIRE_THROWS_ID(asrkit::resample(x, 8000, 16000, o), asrkit::ValueError,
                    "[asrkit.resample.3] resample: lowpass_width must be >= 1, got 0");
  o = {};
  o.beta = -1.0;
  REQUIRE_THROWS_ID(asrkit::resample(x, 8000, 16000, o), asrkit::ValueError,
                    "[asrkit.resample.4] resample: beta must be in [0, 100], got -1");
  REQUIRE_THROWS_ID(Resampler<float>(8000, 16000).output_length(-1), asrkit::ValueError,
                    "[asrkit.resample.5] resample: input length must be >= 0, got -1");
  const Tensor<float> stereo(Shape{10, 2});
  REQUIRE_THROWS_ID(asrkit::resample(stereo, 8000, 16000), asrkit::ShapeError,
                    "[asrkit.resample.6] resample: samples must be [n] (mono), got [10, 2]");
  Tensor<float> bad(Shape{10});
  bad(3) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_ID(asrkit::resample(bad, 8000, 16000), asrkit::ValueError,
                    "[asrkit.resample.7] resample: sample 3 is nan; samples must be finite");
  bad(3) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(asrkit::resample(bad, 16000, 16000), asrkit::ValueError,
                    "[asrkit.resample.7] resample: sample 3 is inf");
}
