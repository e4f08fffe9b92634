#include <asrkit/frontend/stft.hpp>

#include <cmath>
#include <limits>

#include "../test_util.hpp"

TEST_CASE("STFT frame count, tone bin, padding modes", "[frontend][stft]") {
  const int rate = 16000, n = 16000;
  asrkit::Tensor<double> x({n});
  for (int i = 0; i < n; ++i) x(i) = std::sin(2 * M_PI * 1000.0 * i / rate);  // bin 1000 / 40 = 25
  asrkit::StftOptions o;
  o.n_fft = 400;
  o.hop_length = 160;
  const auto spec = asrkit::stft_spectrum(std::as_const(x).view(), o);
  CHECK(spec.dim(0) == 1 + n / 160);  // centred: 1 + (n + 2 * 200 - 400) / 160
  CHECK(spec.dim(1) == 201);
  asrkit::index_t peak = 0;
  spec[50].matrix().row(0).maxCoeff(&peak);
  CHECK(peak == 25);
  // Periodic hann sums to N/2: the amplitude of a bin-centred unit sine is N/4.
  CHECK(spec(50, 25) == Approx(100.0).epsilon(1e-6));
  o.center = false;
  CHECK(asrkit::stft_spectrum(std::as_const(x).view(), o).dim(0) == 1 + (n - 400) / 160);
  // DS2: 20 ms / 10 ms at 16 kHz -> 320-point FFT, 161 bins, log1p of the magnitude.
  const auto ds2 = asrkit::ds2_spectrogram(x.view());
  CHECK(ds2.dim(1) == 161);
  CHECK(ds2.flat().minCoeff() >= 0.0);
}

TEST_CASE("STFT rejects bad options and input", "[frontend][stft]") {
  asrkit::Tensor<float> x({100});
  asrkit::StftOptions o;
  o.n_fft = 400;
  REQUIRE_THROWS_ID(asrkit::stft_spectrum(x.view(), o), asrkit::ValueError,
                    "[asrkit.frontend.4] reflect padding needs more than n_fft / 2 = 200 samples, got 100");
  o.n_fft = 64;
  o.win_length = 65;
  REQUIRE_THROWS_ID(asrkit::stft_spectrum(x.view(), o), asrkit::ValueError, "[asrkit.frontend.3]");
  o.win_length = 0;
  x(3) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_ID(asrkit::stft_spectrum(x.view(), o), asrkit::ValueError, "[asrkit.frontend.6] samples contain NaN or Inf");
  asrkit::Tensor<float> stereo({10, 2});
  REQUIRE_THROWS_ID(asrkit::stft_spectrum(stereo.view(), o), asrkit::ShapeError, "[asrkit.frontend.5]");
  asrkit::Ds2SpectrogramOptions d;
  d.hop_ms = 0;
  REQUIRE_THROWS_ID(asrkit::ds2_spectrogram(x.view(), d), asrkit::ValueError, "[asrkit.frontend.3]");
}
