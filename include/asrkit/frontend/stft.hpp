// asrkit/frontend/stft.hpp - short-time Fourier transform (torch.stft's framing) and the Deep
// Speech 2 log-spectrogram.
//
//   asrkit::StftOptions o;  o.n_fft = 400;  o.hop_length = 160;       // torch.stft defaults else
//   asrkit::Tensor<float> mag = asrkit::stft_spectrum(samples.view(), o);   // [frames, 201]
//   asrkit::Tensor<float> ds2 = asrkit::ds2_spectrogram(samples.view());    // [frames, 161]
//
// Framing as torch.stft(center=True): the signal is padded by n_fft / 2 on both sides (reflect
// or zeros), frame f covers padded samples [f * hop, f * hop + n_fft), the window (win_length,
// default n_fft) sits centred inside the n_fft frame; frames = 1 + (padded - n_fft) / hop.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/frontend/fft.hpp>
#include <asrkit/frontend/window.hpp>

namespace asrkit {

enum class PadMode { reflect, constant };

struct StftOptions {
  index_t n_fft = 400;
  index_t hop_length = 0;  ///< 0: n_fft / 4 (torch's default)
  index_t win_length = 0;  ///< 0: n_fft
  Window window = Window::hann;
  bool periodic = true;    ///< torch's window functions default to periodic
  bool center = true;
  PadMode pad_mode = PadMode::reflect;
  int power = 1;           ///< 1: magnitude |X|, 2: power |X|^2
};

namespace detail {

inline void check_stft_options(const StftOptions& o, index_t samples) {
  const index_t win = o.win_length > 0 ? o.win_length : o.n_fft;
  const index_t hop = o.hop_length > 0 ? o.hop_length : o.n_fft / 4;
  if (o.n_fft < 2 || win > o.n_fft || hop < 1 || (o.power != 1 && o.power != 2))
    throw ValueError("frontend.3", detail::str("STFT options need n_fft >= 2, 1 <= win_length <= n_fft, "
                                               "hop_length >= 1 and power 1 or 2; got n_fft=", o.n_fft,
                                               " win_length=", win, " hop_length=", hop, " power=", o.power));
  if (o.center && o.pad_mode == PadMode::reflect && samples <= o.n_fft / 2)
    throw ValueError("frontend.4", detail::str("reflect padding needs more than n_fft / 2 = ", o.n_fft / 2,
                                               " samples, got ", samples));
  if (!o.center && samples < o.n_fft)
    throw ValueError("frontend.4", detail::str("without centring a frame needs n_fft = ", o.n_fft,
                                               " samples, got ", samples));
}

template <class T>
void check_finite_samples(TensorView<const T> samples) {
  if (samples.rank() != 1)
    throw ShapeError("frontend.5", "samples must be rank 1 [n], got shape " + samples.shape().str());
  // x * 0 is NaN exactly for NaN and +-Inf, so one vectorised sum finds any of them.
  if ((samples.flat().array() * T(0)).sum() != T(0))
    throw ValueError("frontend.6", "samples contain NaN or Inf");
}

}  // namespace detail

/// |STFT|^power of a mono signal: [frames, n_fft / 2 + 1].
template <class V>  // V: float or double, const or not
Tensor<std::remove_const_t<V>> stft_spectrum(TensorView<V> samples_in, const StftOptions& o) {
  using T = std::remove_const_t<V>;
  const TensorView<const T> samples = samples_in;
  detail::check_finite_samples(samples);
  const index_t n = samples.dim(0);
  detail::check_stft_options(o, n);
  const index_t win = o.win_length > 0 ? o.win_length : o.n_fft;
  const index_t hop = o.hop_length > 0 ? o.hop_length : o.n_fft / 4;
  const index_t pad = o.center ? o.n_fft / 2 : 0;
  const index_t frames = 1 + (n + 2 * pad - o.n_fft) / hop;
  // The window, zero-padded to n_fft and centred (torch.stft).
  std::vector<T> window(static_cast<std::size_t>(o.n_fft), T(0));
  const Tensor<T> w = make_window<T>(o.window, win, o.periodic);
  std::copy_n(w.data(), win, window.begin() + (o.n_fft - win) / 2);
  const T* x = samples.data();
  auto sample = [&](index_t i) -> T {  // padded-signal sample i
    i -= pad;
    if (i >= 0 && i < n) return x[i];
    if (o.pad_mode == PadMode::constant) return T(0);
    return x[i < 0 ? -i : 2 * (n - 1) - i];  // reflect, edge not repeated (numpy / torch)
  };
  RealFft<T>& fft = RealFft<T>::for_thread(o.n_fft);
  T* frame = fft.input();
  const T* win_data = window.data();
  Tensor<T> out({frames, fft.bins()});
  for (index_t f = 0; f < frames; ++f) {
    const index_t start = f * hop - pad;  // in signal coordinates
    if (start >= 0 && start + o.n_fft <= n) {
      const T* src = x + start;  // interior frame: a plain vectorisable product
      for (index_t k = 0; k < o.n_fft; ++k) frame[k] = win_data[k] * src[k];
    } else {
      for (index_t k = 0; k < o.n_fft; ++k) frame[k] = win_data[k] * sample(start + pad + k);
    }
    fft.spectrum(frame, out.data() + f * fft.bins(), o.power);
  }
  return out;
}

/// Deep Speech 2's input (Amodei et al. 2016; ../shared/SPECS.md 3.1): log(1 + |STFT|) with
/// 20 ms Hamming windows every 10 ms, 161 bins at 16 kHz. Normalise per bin afterwards
/// (frontend/normalize.hpp).
struct Ds2SpectrogramOptions {
  int sample_rate = 16000;
  double window_ms = 20.0;
  double hop_ms = 10.0;
  Window window = Window::hamming;
};

template <class V>  // V: float or double, const or not
Tensor<std::remove_const_t<V>> ds2_spectrogram(TensorView<V> samples_in, const Ds2SpectrogramOptions& o = {}) {
  using T = std::remove_const_t<V>;
  const TensorView<const T> samples = samples_in;
  if (o.sample_rate < 1 || !(o.window_ms > 0) || !(o.hop_ms > 0))
    throw ValueError("frontend.3", detail::str("DS2 spectrogram needs sample_rate >= 1 and positive "
                                               "window_ms and hop_ms, got ", o.sample_rate, ", ",
                                               o.window_ms, ", ", o.hop_ms));
  StftOptions s;
  s.n_fft = static_cast<index_t>(std::lround(o.sample_rate * o.window_ms / 1000.0));
  s.hop_length = static_cast<index_t>(std::lround(o.sample_rate * o.hop_ms / 1000.0));
  s.window = o.window;
  Tensor<T> spec = stft_spectrum(samples, s);
  // log(1 + x) through Eigen's vectorised log (its log1p is scalar here); for x >= 0 the
  // absolute error stays below one float ulp of 1, far below any feature's scale.
  spec.flat() = (spec.flat().array() + T(1)).log();
  return spec;
}

}  // namespace asrkit
