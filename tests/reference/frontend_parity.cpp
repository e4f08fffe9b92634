// asrkit's front end against torch.stft, torchaudio's mel filterbanks / MelSpectrogram and
// torchaudio.compliance.kaldi (tests/reference/frontend_reference.py), float32 on both sides.
#include <asrkit/frontend/kaldi.hpp>
#include <asrkit/frontend/mel.hpp>
#include <asrkit/frontend/stft.hpp>
#include <asrkit/io/safetensors.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "../test_util.hpp"

namespace {

const asrkit::SafetensorsFile& ref() {
  static const auto file = asrkit::SafetensorsFile::open(asrkit_test::data_path("frontend_ref.safetensors"));
  return file;
}

// |got - want| <= rel * max(|want|, scale) for every element, where `scale` is the largest
// magnitude in `want` times `floor`. Float32 FFTs (kissfft here, pocketfft in torch) differ by
// about 1e-6 of the spectrum's peak, so bins far below the peak are compared on that scale.
// `linear` undoes a log1p on both sides first (DS2): compare magnitudes, not their logs.
void compare(const std::string& name, asrkit::Tensor<float> got, double rel, double floor, bool linear = false) {
  INFO(name);
  auto want = ref().read<float>(name);
  if (linear) {
    got.flat() = got.flat().array().expm1();
    want.flat() = want.flat().array().expm1();
  }
  REQUIRE(got.shape() == want.shape());
  const double scale = floor * static_cast<double>(want.flat().cwiseAbs().maxCoeff());
  double worst = 0;
  for (asrkit::index_t i = 0; i < got.numel(); ++i) {
    const double w = want.data()[i], g = got.data()[i];
    worst = std::max(worst, std::fabs(g - w) / std::max(std::fabs(w), scale));
  }
  INFO("worst relative difference " << worst);
  CHECK(worst <= rel);
}

asrkit::Tensor<float> audio() { return ref().read<float>("audio"); }

}  // namespace

TEST_CASE("STFT and DS2 spectrogram match torch.stft", "[parity][frontend]") {
  const auto x = audio();
  asrkit::StftOptions o;
  o.n_fft = 400;
  o.hop_length = 160;
  compare("stft_hann_400_160", asrkit::stft_spectrum(x.view(), o), 1e-4, 1e-2);
  o.n_fft = 512;
  o.hop_length = 128;
  o.win_length = 300;
  o.window = asrkit::Window::hamming;
  o.pad_mode = asrkit::PadMode::constant;
  compare("stft_hamming_512_128_300_constant", asrkit::stft_spectrum(x.view(), o), 1e-4, 1e-2);
  asrkit::StftOptions nc;
  nc.n_fft = 256;
  nc.hop_length = 100;
  nc.center = false;
  compare("stft_hann_256_100_nocenter", asrkit::stft_spectrum(x.view(), nc), 1e-4, 1e-2);
  compare("ds2", asrkit::ds2_spectrogram(x.view()), 1e-4, 1e-2, true);
}

TEST_CASE("mel filterbanks and log-mel match torchaudio", "[parity][frontend]") {
  compare("mel_htk_201_80", asrkit::melscale_fbanks<float>(201, 0, 8000, 80, 16000), 1e-6, 1e-3);
  compare("mel_slaney_257_40",
          asrkit::melscale_fbanks<float>(257, 20, 7600, 40, 16000, asrkit::MelNorm::slaney, asrkit::MelScale::slaney),
          1e-6, 1e-3);
  compare("logmel_80", asrkit::log_mel_spectrogram(audio().view()), 1e-4, 1e-2);
}

TEST_CASE("Kaldi fbank, spectrogram and MFCC match torchaudio.compliance.kaldi", "[parity][frontend]") {
  const auto x = audio();
  asrkit::KaldiFbankOptions f;
  f.num_mel_bins = 80;
  compare("kaldi_fbank_80", asrkit::kaldi_fbank(x.view(), f), 1e-4, 1e-2);
  asrkit::KaldiFbankOptions v;
  v.num_mel_bins = 40;
  v.frame.snip_edges = false;
  v.use_energy = true;
  v.frame.window = asrkit::Window::hamming;
  v.frame.preemphasis = 0;
  v.low_freq = 40;
  v.high_freq = -400;
  v.frame.round_to_power_of_two = false;
  compare("kaldi_fbank_40_variant", asrkit::kaldi_fbank(x.view(), v), 1e-4, 1e-2);
  compare("kaldi_spectrogram", asrkit::kaldi_spectrogram(x.view()), 1e-4, 1e-2);
  compare("kaldi_mfcc", asrkit::kaldi_mfcc(x.view()), 1e-3, 1e-2);
  asrkit::KaldiMfccOptions m;
  m.fbank.use_energy = true;
  m.fbank.htk_compat = true;
  m.fbank.num_mel_bins = 30;
  m.num_ceps = 20;
  compare("kaldi_mfcc_energy_htk", asrkit::kaldi_mfcc(x.view(), m), 1e-3, 1e-2);
}
