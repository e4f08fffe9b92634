// asrkit/frontend/stft.hpp - short-time Fourier transform (torch.stft's framing) and the Deep
// Speech 2 log-spectrogram.
//
//   asrkit::StftOptions o;  o.n_fft = 400;  o.hop_length = 160;       // torch.stft defaults else
//   asrkit::Tensor<float> mag = asrkit::stft_spectrum(samples.view(), o);   // [frames, 201]
//   asrkit::Tensor<float> ds2 = asrkit::ds2_spectrogram(samples.view());    // [frames, 161]
//   asrkit::StftStream<float> s(o);  s.push(chunk.view());  ...  s.finish();  // the same frames,
//                                                                            // chunk by chunk
//
// Framing as torch.stft(center=True): the signal is padded by n_fft / 2 on both sides (reflect
// or zeros), frame f covers padded samples [f * hop, f * hop + n_fft), the window (win_length,
// default n_fft) sits centred inside the n_fft frame; frames = 1 + (padded - n_fft) / hop.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include <asrkit/core/config.hpp>
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

namespace detail {

// What one STFT configuration needs per frame: the n_fft-long window (the win_length window
// zero-padded and centred, as torch.stft), hop and centre padding.
template <class T>
struct StftPlan {
  StftOptions o;
  index_t hop, pad;
  std::vector<T> window;

  explicit StftPlan(const StftOptions& opt) : o(opt) {
    check_stft_options(o, std::numeric_limits<index_t>::max());
    const index_t win = o.win_length > 0 ? o.win_length : o.n_fft;
    hop = o.hop_length > 0 ? o.hop_length : o.n_fft / 4;
    pad = o.center ? o.n_fft / 2 : 0;
    window.assign(static_cast<std::size_t>(o.n_fft), T(0));
    const Tensor<T> w = make_window<T>(o.window, win, o.periodic);
    std::copy_n(w.data(), win, window.begin() + (o.n_fft - win) / 2);
  }

  // Frames of a signal of n samples (n >= the options' minimum, check_stft_options).
  index_t frames(index_t n) const { return 1 + (n + 2 * pad - o.n_fft) / hop; }

  // Frames [f0, f1) into out [f1 - f0, bins]. x holds signal samples [base, base + len); every
  // sample a frame reads, directly or reflected at either end of the n-sample signal, must be
  // among them (n: the whole signal's length, or any value past the frames' reach while it is
  // still unknown). One copy for stft_spectrum and StftStream, so their frames agree bit for bit
  // (inlined, the FFT was contracted differently in one of them: the stream test failed).
  ASRKIT_ONE_COPY void compute(const T* x, index_t base, index_t len, index_t n, index_t f0, index_t f1, T* out) const {
    auto sample = [&](index_t i) -> T {  // signal sample i, i in [-pad, n + pad)
      if (i < 0 || i >= n) {
        if (o.pad_mode == PadMode::constant) return T(0);
        i = i < 0 ? -i : 2 * (n - 1) - i;  // reflect, edge not repeated (numpy / torch)
      }
      ASRKIT_ASSERT(i >= base && i < base + len);
      return x[i - base];
    };
    RealFft<T>& fft = RealFft<T>::for_thread(o.n_fft);
    T* frame = fft.input();
    const T* win = window.data();
    for (index_t f = f0; f < f1; ++f) {
      const index_t start = f * hop - pad;  // in signal coordinates
      if (start >= 0 && start + o.n_fft <= n) {
        const T* src = x + (start - base);  // interior frame: a plain vectorisable product
        for (index_t k = 0; k < o.n_fft; ++k) frame[k] = win[k] * src[k];
      } else {
        for (index_t k = 0; k < o.n_fft; ++k) frame[k] = win[k] * sample(start + k);
      }
      fft.spectrum(frame, out + (f - f0) * fft.bins(), o.power);
    }
  }
};

}  // namespace detail

/// |STFT|^power of a mono signal: [frames, n_fft / 2 + 1].
template <class V>  // V: float or double, const or not
Tensor<std::remove_const_t<V>> stft_spectrum(TensorView<V> samples_in, const StftOptions& o) {
  using T = std::remove_const_t<V>;
  const TensorView<const T> samples = samples_in;
  detail::check_finite_samples(samples);
  const index_t n = samples.dim(0);
  detail::check_stft_options(o, n);
  const detail::StftPlan<T> plan(o);
  const index_t frames = plan.frames(n);
  Tensor<T> out({frames, o.n_fft / 2 + 1});
  plan.compute(samples.data(), 0, n, n, 0, frames, out.data());
  return out;
}

/// stft_spectrum chunk by chunk, for audio that arrives as it is recorded: push(samples) returns
/// the frames whose samples have all arrived, finish() the rest (those reaching past the end,
/// reflected or zero-padded there) and resets for the next signal. The concatenated frames equal
/// stft_spectrum on the whole signal bit for bit. Latency: a frame leaves n_fft - pad samples
/// after its start. Keeps at most about 2 n_fft samples.
template <class T>
class StftStream {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "StftStream<T>: T must be float or double");

 public:
  /// ValueError frontend.3 for bad options (as stft_spectrum).
  explicit StftStream(const StftOptions& o) : plan_(o) {}

  index_t bins() const noexcept { return plan_.o.n_fft / 2 + 1; }

  /// samples [n] (n >= 0) -> [F, bins], the frames completed by them. ShapeError frontend.5 /
  /// ValueError frontend.6 for a chunk that is not rank 1 or holds NaN/Inf.
  Tensor<T> push(TensorView<const T> samples) {
    detail::check_finite_samples(samples);
    buffer_.insert(buffer_.end(), samples.data(), samples.data() + samples.dim(0));
    received_ += samples.dim(0);
    // Frames that lie inside the samples received so far (the start may be reflected).
    const index_t reach = received_ + plan_.pad - plan_.o.n_fft;  // last complete frame start (padded)
    // A frame starting before the signal reflects samples up to pad: wait for them too.
    const bool reflected = plan_.pad > 0 && plan_.o.pad_mode == PadMode::reflect;
    const index_t ready = reach < 0 || (reflected && received_ <= plan_.pad) ? 0 : reach / plan_.hop + 1;
    Tensor<T> out = emit(std::max(ready, next_), received_ + plan_.o.n_fft);  // n unknown: past reach
    // Keep what later frames can read: from the next frame's start, and the last n_fft + 1
    // samples (a frame reflected at the end reads back to n - pad - 1).
    const index_t keep_from = std::max<index_t>(
        0, std::min(next_ * plan_.hop - plan_.pad, received_ - plan_.o.n_fft - 1));
    if (keep_from > base_) {
      buffer_.erase(buffer_.begin(), buffer_.begin() + (keep_from - base_));
      base_ = keep_from;
    }
    return out;
  }

  /// The frames still missing (padding past the end) for a signal of the samples pushed so far;
  /// then resets. ValueError frontend.4 when the signal is too short (as stft_spectrum).
  Tensor<T> finish() {
    detail::check_stft_options(plan_.o, received_);
    Tensor<T> out = emit(plan_.frames(received_), received_);
    buffer_.clear();
    received_ = base_ = next_ = 0;
    return out;
  }

  /// Samples pushed since the start (or the last finish()).
  index_t received() const noexcept { return received_; }

 private:
  Tensor<T> emit(index_t upto, index_t n) {
    const index_t count = std::max<index_t>(0, upto - next_);
    Tensor<T> out({count, bins()});
    plan_.compute(buffer_.data(), base_, static_cast<index_t>(buffer_.size()), n, next_, next_ + count, out.data());
    next_ += count;
    return out;
  }

  detail::StftPlan<T> plan_;
  std::vector<T> buffer_;  // signal samples [base_, received_)
  index_t received_ = 0, base_ = 0, next_ = 0;  // next_: the next frame to return
};

/// Deep Speech 2's input (Amodei et al. 2016; ../shared/SPECS.md 3.1): log(1 + |STFT|) with
/// 20 ms Hamming windows every 10 ms, 161 bins at 16 kHz. Normalise per bin afterwards
/// (frontend/normalize.hpp).
struct Ds2SpectrogramOptions {
  int sample_rate = 16000;
  double window_ms = 20.0;
  double hop_ms = 10.0;
  Window window = Window::hamming;
};

namespace detail {

inline StftOptions ds2_stft_options(const Ds2SpectrogramOptions& o) {
  if (o.sample_rate < 1 || !(o.window_ms > 0) || !(o.hop_ms > 0))
    throw ValueError("frontend.3", detail::str("DS2 spectrogram needs sample_rate >= 1 and positive "
                                               "window_ms and hop_ms, got ", o.sample_rate, ", ",
                                               o.window_ms, ", ", o.hop_ms));
  StftOptions s;
  s.n_fft = static_cast<index_t>(std::lround(o.sample_rate * o.window_ms / 1000.0));
  s.hop_length = static_cast<index_t>(std::lround(o.sample_rate * o.hop_ms / 1000.0));
  s.window = o.window;
  return s;
}

// log(1 + x) in place through Eigen's packet log (its log1p is scalar here); for x >= 0 the
// absolute error stays below one float ulp of 1, far below any feature's scale. Every element,
// the tail included, goes through the packet path, so a value's result does not depend on its
// position (a stream's chunks then match the whole spectrogram bit for bit; one copy, as
// StftPlan::compute).
template <class T>
ASRKIT_ONE_COPY void log1p_in_place(Tensor<T>& spec) {
  using namespace Eigen::internal;
  using Packet = typename packet_traits<T>::type;
  constexpr index_t L = sizeof(Packet) / sizeof(T);  // unpacket_traits<__m256> warns (GCC)
  const Packet one = pset1<Packet>(T(1));
  T* x = spec.data();
  const index_t n = spec.numel();
  index_t i = 0;
  for (; i + L <= n; i += L) pstoreu(x + i, plog(padd(ploadu<Packet>(x + i), one)));
  if (i < n) {
    alignas(64) T tail[L] = {};
    std::copy(x + i, x + n, tail);
    pstore(tail, plog(padd(pload<Packet>(tail), one)));
    std::copy(tail, tail + (n - i), x + i);
  }
}

}  // namespace detail

template <class V>  // V: float or double, const or not
Tensor<std::remove_const_t<V>> ds2_spectrogram(TensorView<V> samples_in, const Ds2SpectrogramOptions& o = {}) {
  using T = std::remove_const_t<V>;
  Tensor<T> spec = stft_spectrum(TensorView<const T>(samples_in), detail::ds2_stft_options(o));
  detail::log1p_in_place(spec);
  return spec;
}

/// ds2_spectrogram chunk by chunk (StftStream underneath): the concatenated frames equal the
/// offline spectrogram bit for bit.
template <class T>
class Ds2SpectrogramStream {
 public:
  explicit Ds2SpectrogramStream(const Ds2SpectrogramOptions& o = {}) : stft_(detail::ds2_stft_options(o)) {}
  index_t bins() const noexcept { return stft_.bins(); }
  /// samples [n] -> [F, bins] (see StftStream::push).
  Tensor<T> push(TensorView<const T> samples) { return log1p(stft_.push(samples)); }
  /// The last frames; resets (see StftStream::finish).
  Tensor<T> finish() { return log1p(stft_.finish()); }
  index_t received() const noexcept { return stft_.received(); }

 private:
  static Tensor<T> log1p(Tensor<T> spec) {
    detail::log1p_in_place(spec);
    return spec;
  }
  StftStream<T> stft_;
};

}  // namespace asrkit
