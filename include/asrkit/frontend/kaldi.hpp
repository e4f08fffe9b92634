// asrkit/frontend/kaldi.hpp - Kaldi-compatible features: fbank, spectrogram and MFCC, with the
// options and defaults of torchaudio.compliance.kaldi (which mirrors Kaldi's compute-*-feats).
//
//   asrkit::KaldiFbankOptions o;  o.num_mel_bins = 80;
//   asrkit::Tensor<float> fbank = asrkit::kaldi_fbank(samples.view(), o);   // [frames, 80]
//
// Per frame (Kaldi's feature-window.cc, in this order): cut frame_length samples every
// frame_shift (snip_edges, or Kaldi's reflected edges), add dither, remove the DC offset,
// take the raw log-energy, pre-emphasise x[i] - c x[i-1] (x[-1] = x[0]), window, zero-pad to a
// power of two, FFT. Mel banks are triangles in the mel domain (mel = 1127 ln(1 + f / 700))
// over the bins below Nyquist. Logs are floored at float epsilon, as torchaudio does.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/frontend/fft.hpp>
#include <asrkit/frontend/stft.hpp>
#include <asrkit/frontend/window.hpp>

namespace asrkit {

struct KaldiFrameOptions {
  double sample_frequency = 16000.0;
  double frame_length_ms = 25.0;
  double frame_shift_ms = 10.0;
  double dither = 0.0;           ///< Gaussian noise scale (Kaldi's default 1.0 needs a seed here)
  std::uint64_t dither_seed = 0;
  double preemphasis = 0.97;
  bool remove_dc_offset = true;
  Window window = Window::povey;
  double blackman_coeff = 0.42;
  bool round_to_power_of_two = true;
  bool snip_edges = true;
  bool raw_energy = true;        ///< log-energy before pre-emphasis and windowing
  double energy_floor = 1.0;     ///< torchaudio's default (Kaldi's is 0); 0 disables it
};

struct KaldiFbankOptions {
  KaldiFrameOptions frame;
  index_t num_mel_bins = 23;
  double low_freq = 20.0;
  double high_freq = 0.0;   ///< <= 0: offset from Nyquist
  bool use_energy = false;  ///< add the log-energy as a column (first, or last with htk_compat)
  bool use_log_fbank = true;
  bool use_power = true;
  bool htk_compat = false;
  bool subtract_mean = false;
};

struct KaldiMfccOptions {
  KaldiFbankOptions fbank;  ///< use_log_fbank and use_power are forced on, as in Kaldi
  index_t num_ceps = 13;
  double cepstral_lifter = 22.0;
};

namespace detail {

constexpr double kKaldiLogFloor = 1.1920928955078125e-07;  // float epsilon (torchaudio's EPSILON)

/// Framed, windowed, FFT'd frames: |X|^2 (bins 0 .. padded / 2) and the log-energy per frame.
template <class T>
struct KaldiFrames {
  Tensor<T> power;       // [frames, padded / 2 + 1]
  std::vector<T> log_energy;
  index_t padded = 0;
};

template <class T>
KaldiFrames<T> kaldi_frames(TensorView<const T> samples, const KaldiFrameOptions& o, bool power_spectrum) {
  check_finite_samples(samples);
  const index_t n = samples.dim(0);
  const auto length = static_cast<index_t>(o.sample_frequency * o.frame_length_ms * 0.001);
  const auto shift = static_cast<index_t>(o.sample_frequency * o.frame_shift_ms * 0.001);
  if (length < 2 || shift < 1 || !(o.dither >= 0) || !(o.energy_floor >= 0))
    throw ValueError("frontend.8", detail::str("Kaldi framing needs frame length >= 2 samples, shift >= 1, "
                                               "dither >= 0 and energy_floor >= 0; got length ", length,
                                               ", shift ", shift, ", dither ", o.dither, ", energy_floor ",
                                               o.energy_floor));
  index_t padded = length;
  if (o.round_to_power_of_two) {
    padded = 1;
    while (padded < length) padded *= 2;
  }
  // Frame count and the sample behind padded position j (Kaldi's edge handling when not
  // snipping: reflect the first length/2 - shift/2 samples at the start, the end mirrored).
  const index_t frames = o.snip_edges ? (n < length ? 0 : 1 + (n - length) / shift) : (n + shift / 2) / shift;
  const index_t offset = o.snip_edges ? 0 : length / 2 - shift / 2;
  if (offset < 0)
    throw ValueError("frontend.8", "snip_edges = false needs frame length >= frame shift");
  const T* x = samples.data();
  auto sample = [&](index_t j) -> T {
    j -= offset;
    if (j < 0) return x[std::min(-j - 1, n - 1)];
    if (j >= n) return x[std::max<index_t>(2 * n - 1 - j, 0)];
    return x[j];
  };
  const Tensor<T> window = make_window<T>(o.window, length, false, static_cast<T>(o.blackman_coeff));
  RealFft<T>& fft = RealFft<T>::for_thread(padded);
  Rng rng(o.dither_seed);
  KaldiFrames<T> out{Tensor<T>({frames, fft.bins()}), std::vector<T>(static_cast<std::size_t>(frames)), padded};
  T* buf = fft.input();
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> frame(buf, length);
  const double log_floor = o.energy_floor > 0 ? std::log(o.energy_floor) : -std::numeric_limits<double>::infinity();
  auto log_energy = [&]() {
    const double e = std::max(static_cast<double>(frame.square().sum()), kKaldiLogFloor);
    return static_cast<T>(std::max(std::log(e), log_floor));
  };
  for (index_t f = 0; f < frames; ++f) {
    const index_t start = f * shift;
    if (start - offset >= 0 && start - offset + length <= n)
      std::copy_n(x + start - offset, length, buf);
    else
      for (index_t k = 0; k < length; ++k) buf[k] = sample(start + k);
    if (o.dither > 0)
      for (index_t k = 0; k < length; ++k) buf[k] += static_cast<T>(o.dither * rng.normal());
    if (o.remove_dc_offset) frame -= frame.mean();
    if (o.raw_energy) out.log_energy[static_cast<std::size_t>(f)] = log_energy();
    if (o.preemphasis != 0)
      for (index_t k = length - 1; k >= 0; --k) buf[k] -= static_cast<T>(o.preemphasis) * buf[k > 0 ? k - 1 : 0];
    frame *= window.flat().array();
    if (!o.raw_energy) out.log_energy[static_cast<std::size_t>(f)] = log_energy();
    std::fill(buf + length, buf + padded, T(0));
    fft.spectrum(buf, out.power.data() + f * fft.bins(), power_spectrum ? 2 : 1);
  }
  return out;
}

template <class T>
void subtract_column_mean(Tensor<T>& feats) {
  if (feats.dim(0) > 0) feats.matrix().rowwise() -= feats.matrix().colwise().mean();
}

}  // namespace detail

/// Kaldi's mel banks [num_bins, padded / 2 + 1] (last column, Nyquist, always 0).
template <class T>
Tensor<T> kaldi_mel_banks(index_t num_bins, index_t padded, double sample_frequency, double low_freq,
                          double high_freq) {
  const double nyquist = 0.5 * sample_frequency;
  if (high_freq <= 0) high_freq += nyquist;
  if (num_bins < 3 || !(low_freq >= 0) || !(high_freq > low_freq) || high_freq > nyquist)
    throw ValueError("frontend.9", detail::str("Kaldi mel banks need num_mel_bins >= 3 and "
                                               "0 <= low_freq < high_freq <= Nyquist (", nyquist,
                                               "); got ", num_bins, " bins, low ", low_freq, ", high ", high_freq));
  auto mel = [](double f) { return 1127.0 * std::log(1.0 + f / 700.0); };
  const double mel_low = mel(low_freq), mel_high = mel(high_freq);
  const double delta = (mel_high - mel_low) / static_cast<double>(num_bins + 1);
  const double bin_width = sample_frequency / static_cast<double>(padded);
  Tensor<T> banks({num_bins, padded / 2 + 1});
  for (index_t b = 0; b < num_bins; ++b) {
    const double left = mel_low + static_cast<double>(b) * delta, centre = left + delta, right = centre + delta;
    for (index_t k = 0; k < padded / 2; ++k) {
      const double m = mel(bin_width * static_cast<double>(k));
      const double up = (m - left) / (centre - left), down = (right - m) / (right - centre);
      banks(b, k) = static_cast<T>(std::max(0.0, std::min(up, down)));
    }
  }
  return banks;
}

/// Kaldi fbank: [frames, num_mel_bins (+1 with use_energy)].
template <class V>  // V: float or double, const or not
Tensor<std::remove_const_t<V>> kaldi_fbank(TensorView<V> samples_in, const KaldiFbankOptions& o = {}) {
  using T = std::remove_const_t<V>;
  const TensorView<const T> samples = samples_in;
  auto fr = detail::kaldi_frames(samples, o.frame, o.use_power);
  const Tensor<T> banks = kaldi_mel_banks<T>(o.num_mel_bins, fr.padded, o.frame.sample_frequency,
                                             o.low_freq, o.high_freq);
  const index_t frames = fr.power.dim(0), extra = o.use_energy ? 1 : 0;
  Tensor<T> out({frames, o.num_mel_bins + extra});
  const index_t first = o.use_energy && !o.htk_compat ? 1 : 0;
  auto mel = out.matrix().middleCols(first, o.num_mel_bins);
  mel.noalias() = fr.power.matrix() * banks.matrix().transpose();
  if (o.use_log_fbank) mel = mel.array().max(static_cast<T>(detail::kKaldiLogFloor)).log().matrix();
  if (o.use_energy)
    for (index_t f = 0; f < frames; ++f)
      out(f, o.htk_compat ? o.num_mel_bins : 0) = fr.log_energy[static_cast<std::size_t>(f)];
  if (o.subtract_mean) detail::subtract_column_mean(out);
  return out;
}

/// Kaldi spectrogram: log power spectrum, column 0 replaced by the log-energy: [frames, padded/2+1].
template <class V>  // V: float or double, const or not
Tensor<std::remove_const_t<V>> kaldi_spectrogram(TensorView<V> samples_in, const KaldiFrameOptions& o = {}, bool subtract_mean = false) {
  using T = std::remove_const_t<V>;
  const TensorView<const T> samples = samples_in;
  auto fr = detail::kaldi_frames(samples, o, true);
  fr.power.flat() = fr.power.flat().array().max(static_cast<T>(detail::kKaldiLogFloor)).log();
  for (index_t f = 0; f < fr.power.dim(0); ++f) fr.power(f, 0) = fr.log_energy[static_cast<std::size_t>(f)];
  if (subtract_mean) detail::subtract_column_mean(fr.power);
  return std::move(fr.power);
}

/// Kaldi MFCC: orthonormal DCT-II of the log mel energies, liftered: [frames, num_ceps].
template <class V>  // V: float or double, const or not
Tensor<std::remove_const_t<V>> kaldi_mfcc(TensorView<V> samples_in, const KaldiMfccOptions& o = {}) {
  using T = std::remove_const_t<V>;
  const TensorView<const T> samples = samples_in;
  const index_t bins = o.fbank.num_mel_bins;
  if (o.num_ceps < 1 || o.num_ceps > bins || !(o.cepstral_lifter >= 0))
    throw ValueError("frontend.10", detail::str("MFCC needs 1 <= num_ceps <= num_mel_bins (", bins,
                                                ") and cepstral_lifter >= 0; got ", o.num_ceps, ", ",
                                                o.cepstral_lifter));
  KaldiFbankOptions fo = o.fbank;
  fo.use_log_fbank = true;
  fo.use_power = true;
  fo.subtract_mean = false;
  const Tensor<T> fb = kaldi_fbank(samples, fo);
  const index_t frames = fb.dim(0), first = fo.use_energy && !fo.htk_compat ? 1 : 0;
  // dct(m, c) = sqrt(2 / M) cos(pi / M (m + 1/2) c), column 0 = sqrt(1 / M) (orthonormal).
  RowMatrix<T> dct(bins, o.num_ceps);
  const double pi = 3.14159265358979323846;
  for (index_t m = 0; m < bins; ++m)
    for (index_t c = 0; c < o.num_ceps; ++c)
      dct(m, c) = static_cast<T>(c == 0 ? std::sqrt(1.0 / static_cast<double>(bins))
                                        : std::sqrt(2.0 / static_cast<double>(bins)) *
                                              std::cos(pi / static_cast<double>(bins) * (static_cast<double>(m) + 0.5) *
                                                       static_cast<double>(c)));
  Tensor<T> out({frames, o.num_ceps});
  out.matrix().noalias() = fb.matrix().middleCols(first, bins) * dct;
  if (o.cepstral_lifter != 0)
    for (index_t c = 0; c < o.num_ceps; ++c)
      out.matrix().col(c) *= static_cast<T>(1.0 + 0.5 * o.cepstral_lifter *
                                                      std::sin(pi * static_cast<double>(c) / o.cepstral_lifter));
  if (fo.use_energy)
    for (index_t f = 0; f < frames; ++f) out(f, 0) = fb(f, fo.htk_compat ? bins : 0);
  if (fo.htk_compat) {  // c0 (or the energy) goes last; without energy it is scaled by sqrt(2)
    for (index_t f = 0; f < frames; ++f) {
      T c0 = out(f, 0);
      if (!fo.use_energy) c0 *= static_cast<T>(std::sqrt(2.0));
      for (index_t c = 0; c + 1 < o.num_ceps; ++c) out(f, c) = out(f, c + 1);
      out(f, o.num_ceps - 1) = c0;
    }
  }
  if (o.fbank.subtract_mean) detail::subtract_column_mean(out);
  return out;
}

}  // namespace asrkit
