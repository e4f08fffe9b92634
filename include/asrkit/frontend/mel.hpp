// asrkit/frontend/mel.hpp - mel scales, triangular mel filterbanks and the log-mel spectrogram.
//
//   auto fb = asrkit::melscale_fbanks<float>(201, 0, 8000, 80, 16000);  // [201, 80], torchaudio's
//   asrkit::LogMelOptions o;  o.n_mels = 80;
//   asrkit::Tensor<float> feats = asrkit::log_mel_spectrogram(samples.view(), o);  // [frames, 80]
//
// Scales: HTK mel = 2595 log10(1 + f / 700); Slaney (Auditory Toolbox): linear below 1 kHz
// (f / (200 / 3)), logarithmic above (15 + ln(f / 1000) / (ln 6.4 / 27)). Filters are triangles
// between mel-spaced points, evaluated on the linear FFT bin frequencies, as
// torchaudio.functional.melscale_fbanks; norm = slaney scales each to unit area (2 / width).
// Kaldi's banks (triangles in the mel domain) live in kaldi.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/frontend/stft.hpp>

namespace asrkit {

enum class MelScale { htk, slaney };
enum class MelNorm { none, slaney };

inline double hz_to_mel(double hz, MelScale scale) {
  if (scale == MelScale::htk) return 2595.0 * std::log10(1.0 + hz / 700.0);
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return hz >= min_log_hz ? min_log_mel + std::log(hz / min_log_hz) / logstep : hz / f_sp;
}

inline double mel_to_hz(double mel, MelScale scale) {
  if (scale == MelScale::htk) return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return mel >= min_log_mel ? min_log_hz * std::exp(logstep * (mel - min_log_mel)) : f_sp * mel;
}

/// Triangular filters [n_freqs, n_mels] over the bin frequencies linspace(0, sample_rate / 2
/// (integer division, as torchaudio), n_freqs).
template <class T>
Tensor<T> melscale_fbanks(index_t n_freqs, double f_min, double f_max, index_t n_mels, int sample_rate,
                          MelNorm norm = MelNorm::none, MelScale scale = MelScale::htk) {
  if (n_freqs < 2 || n_mels < 1 || sample_rate < 1 || !(f_min >= 0) || !(f_max > f_min))
    throw ValueError("frontend.7", detail::str("mel filterbank needs n_freqs >= 2, n_mels >= 1, "
                                               "sample_rate >= 1 and 0 <= f_min < f_max; got n_freqs=",
                                               n_freqs, " n_mels=", n_mels, " sample_rate=", sample_rate,
                                               " f_min=", f_min, " f_max=", f_max));
  const double nyquist = static_cast<double>(sample_rate / 2);
  std::vector<double> freqs(static_cast<std::size_t>(n_freqs)), pts(static_cast<std::size_t>(n_mels + 2));
  for (index_t k = 0; k < n_freqs; ++k)
    freqs[static_cast<std::size_t>(k)] = nyquist * static_cast<double>(k) / static_cast<double>(n_freqs - 1);
  const double m_min = hz_to_mel(f_min, scale), m_max = hz_to_mel(f_max, scale);
  for (index_t i = 0; i < n_mels + 2; ++i)
    pts[static_cast<std::size_t>(i)] =
        mel_to_hz(m_min + (m_max - m_min) * static_cast<double>(i) / static_cast<double>(n_mels + 1), scale);
  Tensor<T> fb({n_freqs, n_mels});
  for (index_t m = 0; m < n_mels; ++m) {
    const double left = pts[static_cast<std::size_t>(m)], centre = pts[static_cast<std::size_t>(m + 1)],
                 right = pts[static_cast<std::size_t>(m + 2)];
    const double area = norm == MelNorm::slaney ? 2.0 / (right - left) : 1.0;
    for (index_t k = 0; k < n_freqs; ++k) {
      const double f = freqs[static_cast<std::size_t>(k)];
      const double up = (f - left) / (centre - left), down = (right - f) / (right - centre);
      fb(k, m) = static_cast<T>(std::max(0.0, std::min(up, down)) * area);
    }
  }
  return fb;
}

struct LogMelOptions {
  int sample_rate = 16000;
  StftOptions stft = [] {
    StftOptions s;
    s.n_fft = 400;
    s.hop_length = 160;
    s.power = 2;
    return s;
  }();
  index_t n_mels = 80;
  double f_min = 0.0;
  double f_max = 0.0;  ///< 0: sample_rate / 2
  MelScale scale = MelScale::htk;
  MelNorm norm = MelNorm::none;
  double floor = 1e-10;  ///< log(max(mel energy, floor))
};

/// log of the mel filterbank energies of |STFT|^power: [frames, n_mels].
template <class V>  // V: float or double, const or not
Tensor<std::remove_const_t<V>> log_mel_spectrogram(TensorView<V> samples_in, const LogMelOptions& o = {}) {
  using T = std::remove_const_t<V>;
  const TensorView<const T> samples = samples_in;
  if (!(o.floor > 0))
    throw ValueError("frontend.7", detail::str("log floor must be > 0, got ", o.floor));
  const Tensor<T> spec = stft_spectrum(samples, o.stft);
  const double f_max = o.f_max > 0 ? o.f_max : o.sample_rate / 2.0;
  const Tensor<T> fb = melscale_fbanks<T>(spec.dim(1), o.f_min, f_max, o.n_mels, o.sample_rate, o.norm, o.scale);
  Tensor<T> mel({spec.dim(0), o.n_mels});
  mel.matrix().noalias() = spec.matrix() * fb.matrix();
  mel.flat() = mel.flat().array().max(static_cast<T>(o.floor)).log();
  return mel;
}

}  // namespace asrkit
