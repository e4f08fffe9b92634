#include <asrkit/core/rng.hpp>
#include <asrkit/frontend/stft.hpp>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

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

namespace {

// The frames a stream gives for x pushed in chunks of the given sizes (cycled), then finish().
template <class T, class Stream>
asrkit::Tensor<T> streamed(Stream& s, const asrkit::Tensor<T>& x, const std::vector<asrkit::index_t>& sizes) {
  std::vector<T> frames;
  const auto take = [&](const asrkit::Tensor<T>& f) {
    REQUIRE(f.rank() == 2);
    REQUIRE(f.dim(1) == s.bins());
    frames.insert(frames.end(), f.data(), f.data() + f.numel());
  };
  const asrkit::index_t n = x.dim(0);
  for (asrkit::index_t i = 0, k = 0; i < n; ++k) {
    const asrkit::index_t m = std::min(sizes[static_cast<std::size_t>(k) % sizes.size()], n - i);
    take(s.push(asrkit::TensorView<const T>(x.data() + i, asrkit::Shape{m})));
    i += m;
  }
  take(s.finish());
  CHECK(s.received() == 0);  // finish() resets
  asrkit::Tensor<T> out({static_cast<asrkit::index_t>(frames.size()) / s.bins(), s.bins()});
  std::copy(frames.begin(), frames.end(), out.data());
  return out;
}

template <class T>
void check_stream_equals_offline() {
  const std::vector<std::vector<asrkit::index_t>> chunkings = {{1}, {7}, {160}, {161}, {333}, {0, 50, 0, 1000}, {100000}};
  std::vector<asrkit::StftOptions> options(4);
  options[0].n_fft = 64;  // centred, reflect, hop 16
  options[1].n_fft = 64;
  options[1].pad_mode = asrkit::PadMode::constant;
  options[1].hop_length = 10;
  options[1].win_length = 50;
  options[2].n_fft = 64;
  options[2].center = false;
  options[2].hop_length = 24;
  options[3].n_fft = 320;  // DS2's framing
  options[3].hop_length = 160;
  options[3].window = asrkit::Window::hamming;
  asrkit::Rng rng(7);
  for (std::size_t oi = 0; oi < options.size(); ++oi)
    for (const asrkit::index_t n : {asrkit::index_t(200), asrkit::index_t(321), asrkit::index_t(1777)}) {
      if (n <= options[oi].n_fft) continue;
      asrkit::Tensor<T> x({n});
      rng.fill_uniform(x.view(), T(-1), T(1));
      const auto offline = asrkit::stft_spectrum(std::as_const(x).view(), options[oi]);
      asrkit::StftStream<T> stream(options[oi]);
      for (const auto& sizes : chunkings) {
        INFO("options " << oi << " n " << n << " chunk " << sizes[0] << " of " << sizes.size());
        const auto got = streamed<T>(stream, x, sizes);
        REQUIRE(got.shape() == offline.shape());
        asrkit::index_t first = 0;
        while (first < got.numel() && got.data()[first] == offline.data()[first]) ++first;
        INFO("first difference at element " << first << " (row " << first / got.dim(1) << " of " << got.dim(0) << ")");
        CHECK(first == got.numel());  // bit for bit
      }
    }
}

}  // namespace

TEST_CASE("StftStream: chunk after chunk gives stft_spectrum's frames bit for bit", "[frontend][stft]") {
  check_stream_equals_offline<float>();
  check_stream_equals_offline<double>();
  // The DS2 spectrogram stream, on one second of audio.
  asrkit::Tensor<float> x({16000});
  asrkit::Rng rng(8);
  rng.fill_uniform(x.view(), -0.5f, 0.5f);
  const auto offline = asrkit::ds2_spectrogram(std::as_const(x).view());
  asrkit::Ds2SpectrogramStream<float> ds2;
  for (const asrkit::index_t chunk : {asrkit::index_t(1), asrkit::index_t(1600), asrkit::index_t(3333)}) {
    const auto got = streamed<float>(ds2, x, {chunk});
    REQUIRE(got.shape() == offline.shape());
    CHECK(std::equal(got.data(), got.data() + got.numel(), offline.data()));
  }
}

TEST_CASE("StftStream: frames leave as soon as their samples are in; errors", "[frontend][stft]") {
  asrkit::StftOptions o;
  o.n_fft = 64;
  o.hop_length = 16;  // centred: frame f covers samples [16 f - 32, 16 f + 32)
  asrkit::StftStream<float> s(o);
  asrkit::Tensor<float> x({100});
  CHECK(s.push(std::as_const(x).view()).dim(0) == 5);  // frames 0..4 end by sample 96
  CHECK(s.finish().dim(0) == 1 + (100 + 64 - 64) / 16 - 5);
  asrkit::Tensor<float> few({20});
  s.push(std::as_const(few).view());
  REQUIRE_THROWS_ID(s.finish(), asrkit::ValueError, "[asrkit.frontend.4] reflect padding needs more than n_fft / 2 = 32 samples, got 20");
  asrkit::StftStream<float> t(o);
  few(3) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(t.push(std::as_const(few).view()), asrkit::ValueError, "[asrkit.frontend.6]");
  asrkit::Tensor<float> stereo({10, 2});
  REQUIRE_THROWS_ID(t.push(std::as_const(stereo).view()), asrkit::ShapeError, "[asrkit.frontend.5]");
  o.win_length = 65;  // longer than n_fft
  REQUIRE_THROWS_ID(asrkit::StftStream<float>{o}, asrkit::ValueError, "[asrkit.frontend.3]");
}
