// asrkit/frontend/augment.hpp - training-time augmentation: SpecAugment masks and additive noise.
//
//   asrkit::Rng rng(seed);
//   auto masks = asrkit::spec_augment(feats.view(), {}, rng);          // [frames, bins], in place
//   asrkit::add_noise(audio.view(), noise.view(), 10.0, rng);          // 10 dB SNR, in place
//   asrkit::maybe_add_noise(audio.view(), noises, {}, rng);            // DS2: 40% of utterances
//
// Everything random comes from the asrkit::Rng passed in, in a documented order, so a seed
// gives the same augmentation on every platform.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {

/// SpecAugment frequency and time masking (Park et al. 2019, §2; time warping is not
/// implemented). Defaults: two frequency masks of width <= 27 and two time masks of width
/// <= 40 (the LibriSpeech "SS" widths) with no cap from max_time_ratio (Park's SS uses 0.2).
struct SpecAugmentOptions {
  int freq_masks = 2;           ///< m_F >= 0
  int freq_width = 27;          ///< F >= 0: a frequency mask is f ~ U{0..min(F, bins)} bins wide
  int time_masks = 2;           ///< m_T >= 0
  int time_width = 40;          ///< T >= 0: a time mask is t ~ U{0..min(T, floor(p frames))}
  double max_time_ratio = 1.0;  ///< p in [0, 1]: caps a time mask at p * frames (Park §2)
  /// Written into masked cells. 0 is the mean of normalised features, which is what Park et al.
  /// use ("setting the masked value to zero is equivalent to setting it to the mean value"):
  /// apply SpecAugment after normalisation.
  double mask_value = 0.0;
};

/// One applied mask: cells [start, start + width) along `axis` (0 = frames/time, 1 = bins/freq).
struct SpecAugmentMask {
  int axis = 0;
  index_t start = 0;
  index_t width = 0;
};

/// Additive-noise augmentation: with `probability` add a random clip at a uniform SNR.
struct NoiseAugmentOptions {
  double probability = 0.4;  ///< DS2 §5.2: noise is added to 40% of randomly chosen utterances
  double min_snr_db = 5.0;   ///< our default range; the DS2 paper gives none
  double max_snr_db = 20.0;
};

/// What maybe_add_noise() did (for logging and tests).
struct NoiseAugmentResult {
  bool applied = false;
  std::size_t noise_index = 0;  ///< which clip (when applied)
  double snr_db = 0.0;          ///< the SNR drawn (when applied)
};

namespace detail {
namespace augment {

template <class T>
void check_finite(TensorView<const T> x, const char* what, const char* name) {
  const T* p = x.data();
  for (index_t i = 0, n = x.numel(); i < n; ++i)
    if (!std::isfinite(p[i]))
      throw ValueError("augment.2",
                       str(what, ": ", name, " must be finite, got ", p[i], " at element ", i));
}

inline void check_rank1(const Shape& s, const char* what, const char* name) {
  if (s.rank() != 1)
    throw ShapeError("augment.4",
                     str(what, ": ", name, " must have rank 1 [samples], got shape ", s.str()));
}

inline void check_snr(double snr_db, const char* what, const char* name) {
  if (!std::isfinite(snr_db))
    throw ValueError("augment.6", str(what, ": ", name, " must be finite, got ", snr_db));
}

template <class T>
std::vector<SpecAugmentMask> spec_augment(TensorView<T> features, const SpecAugmentOptions& o,
                                          Rng& rng) {
  const char* what = "spec_augment";
  const auto bad = [what](const char* name, double v, const char* expected) {
    return ValueError("augment.3",
                      str(what, ": options.", name, " must be ", expected, ", got ", v));
  };
  if (o.freq_masks < 0) throw bad("freq_masks", o.freq_masks, ">= 0");
  if (o.freq_width < 0) throw bad("freq_width", o.freq_width, ">= 0");
  if (o.time_masks < 0) throw bad("time_masks", o.time_masks, ">= 0");
  if (o.time_width < 0) throw bad("time_width", o.time_width, ">= 0");
  if (!(o.max_time_ratio >= 0.0 && o.max_time_ratio <= 1.0))
    throw bad("max_time_ratio", o.max_time_ratio, "in [0, 1]");
  if (!(std::abs(o.mask_value) <= static_cast<double>(std::numeric_limits<T>::max())))
    throw bad("mask_value", o.mask_value, "finite in the feature type");
  if (features.rank() != 2)
    throw ShapeError("augment.1",
                     str(what, ": features must have rank 2 [frames, bins], got shape ",
                         features.shape().str()));
  check_finite<T>(features, what, "features");

  const index_t frames = features.dim(0), bins = features.dim(1);
  const T value = static_cast<T>(o.mask_value);
  T* x = features.data();
  std::vector<SpecAugmentMask> masks;
  masks.reserve(static_cast<std::size_t>(o.freq_masks) + static_cast<std::size_t>(o.time_masks));
  // Draw order (fixed, so a seed reproduces): all frequency masks, then all time masks; per
  // mask the width, then the start. Masks may overlap, as in Park et al.
  const auto draw = [&rng](index_t max_width, index_t extent) {
    const auto uniform_upto = [&rng](index_t k) {  // uniform in {0, ..., k}
      return static_cast<index_t>(rng.uniform_int(static_cast<std::uint64_t>(k) + 1));
    };
    const index_t width = uniform_upto(max_width);
    const index_t start = uniform_upto(extent - width);
    return std::pair<index_t, index_t>(start, width);
  };
  const index_t max_f = std::min<index_t>(o.freq_width, bins);
  for (int m = 0; m < o.freq_masks; ++m) {
    const auto [f0, f] = draw(max_f, bins);
    for (index_t t = 0; t < frames; ++t) std::fill_n(x + t * bins + f0, f, value);
    masks.push_back({1, f0, f});
  }
  // p * frames is capped before flooring: a ratio of 1 never exceeds the frame count.
  const auto cap = static_cast<index_t>(std::floor(o.max_time_ratio * static_cast<double>(frames)));
  const index_t max_t = std::min<index_t>({static_cast<index_t>(o.time_width), cap, frames});
  for (int m = 0; m < o.time_masks; ++m) {
    const auto [t0, t] = draw(max_t, frames);
    std::fill_n(x + t0 * bins, t * bins, value);
    masks.push_back({0, t0, t});
  }
  return masks;
}

template <class T>
void add_noise(TensorView<T> signal, TensorView<const T> noise, double snr_db, Rng& rng) {
  const char* what = "add_noise";
  check_rank1(signal.shape(), what, "signal");
  check_rank1(noise.shape(), what, "noise");
  if (noise.numel() == 0)
    throw ValueError("augment.5", str(what, ": noise must have at least 1 sample, got 0"));
  check_snr(snr_db, what, "snr_db");
  check_finite<T>(signal, what, "signal");
  const index_t n = signal.numel(), m = noise.numel();
  // Always exactly one draw, whatever the content, so the Rng stream stays aligned.
  const auto offset = static_cast<index_t>(rng.uniform_int(static_cast<std::uint64_t>(m)));
  const T* s = signal.data();
  const T* v = noise.data();
  double ps = 0, pn = 0, max_s = 0, max_n = 0;
  for (index_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(s[i]);
    ps += d * d;
    max_s = std::max(max_s, std::abs(d));
  }
  // The noise is read from `offset` on, looping back to its start when it is shorter.
  for (index_t i = 0, j = offset; i < n; ++i, j = j + 1 == m ? 0 : j + 1) {
    if (!std::isfinite(v[j]))
      throw ValueError("augment.2",
                       str(what, ": noise must be finite, got ", v[j], " at element ", j));
    const double d = static_cast<double>(v[j]);
    pn += d * d;
    max_n = std::max(max_n, std::abs(d));
  }
  // An all-zero (or empty) signal or noise segment has no SNR to reach: leave the signal as it
  // is (adding 0) rather than produce NaN or infinite gains.
  if (n == 0 || ps == 0 || pn == 0) return;
  // 10 log10(ps / (g^2 pn)) = snr_db  <=>  g = sqrt(ps / (pn 10^(snr_db / 10))); the powers'
  // 1/n factors cancel.
  const double gain = std::sqrt(ps / (pn * std::pow(10.0, snr_db / 10.0)));
  if (!std::isfinite(ps) || !std::isfinite(pn) || !std::isfinite(gain) ||
      !(max_s + gain * max_n <= static_cast<double>(std::numeric_limits<T>::max())))
    throw ValueError("augment.8", str(what, ": noise at ", snr_db,
                                      " dB SNR would overflow the "
                                      "sample type (gain ",
                                      gain, ", peak signal ", max_s, ", peak noise ", max_n, ")"));
  T* out = signal.data();
  for (index_t i = 0, j = offset; i < n; ++i, j = j + 1 == m ? 0 : j + 1)
    out[i] = static_cast<T>(static_cast<double>(out[i]) + gain * static_cast<double>(v[j]));
}

template <class T>
NoiseAugmentResult maybe_add_noise(TensorView<T> signal, const std::vector<Tensor<T>>& noises,
                                   const NoiseAugmentOptions& o, Rng& rng) {
  const char* what = "maybe_add_noise";
  if (!(o.probability >= 0.0 && o.probability <= 1.0))
    throw ValueError("augment.7",
                     str(what, ": options.probability must be in [0, 1], got ", o.probability));
  check_snr(o.min_snr_db, what, "options.min_snr_db");
  check_snr(o.max_snr_db, what, "options.max_snr_db");
  if (!(o.min_snr_db <= o.max_snr_db))
    throw ValueError("augment.6", str(what, ": options.min_snr_db must be <= max_snr_db, got ",
                                      o.min_snr_db, " > ", o.max_snr_db));
  if (noises.empty())
    throw ValueError("augment.5", str(what, ": the list of noise clips is empty"));
  check_rank1(signal.shape(), what, "signal");
  check_finite<T>(signal, what, "signal");
  // Draws: one uniform for the decision; if applied, the clip, the SNR, then add_noise's offset.
  NoiseAugmentResult r;
  if (!rng.bernoulli(o.probability)) return r;
  r.applied = true;
  r.noise_index = static_cast<std::size_t>(rng.uniform_int(noises.size()));
  r.snr_db = o.min_snr_db + (o.max_snr_db - o.min_snr_db) * rng.uniform<double>();
  add_noise<T>(signal, noises[r.noise_index].view(), r.snr_db, rng);
  return r;
}

}  // namespace augment
}  // namespace detail

/// Masks `features` [frames, bins] in place with options.freq_masks frequency bands and
/// options.time_masks time spans (Park et al. 2019); returns the masks applied, in order.
inline std::vector<SpecAugmentMask> spec_augment(TensorView<float> features,
                                                 const SpecAugmentOptions& options, Rng& rng) {
  return detail::augment::spec_augment(features, options, rng);
}
inline std::vector<SpecAugmentMask> spec_augment(TensorView<double> features,
                                                 const SpecAugmentOptions& options, Rng& rng) {
  return detail::augment::spec_augment(features, options, rng);
}

/// signal += g * noise[offset...] (looped), with g chosen so that
/// 10 log10(P_signal / P_scaled_noise) == snr_db, P = mean square over the signal's length.
/// offset is uniform in [0, noise samples). An all-zero signal or noise segment leaves the
/// signal unchanged.
inline void add_noise(TensorView<float> signal, TensorView<const float> noise, double snr_db,
                      Rng& rng) {
  detail::augment::add_noise<float>(signal, noise, snr_db, rng);
}
inline void add_noise(TensorView<double> signal, TensorView<const double> noise, double snr_db,
                      Rng& rng) {
  detail::augment::add_noise<double>(signal, noise, snr_db, rng);
}

/// With probability options.probability, adds noises[i] (i uniform) at an SNR uniform in
/// [min_snr_db, max_snr_db) through add_noise(). Options, the list and the signal are checked on
/// every call, applied or not.
inline NoiseAugmentResult maybe_add_noise(TensorView<float> signal,
                                          const std::vector<Tensor<float>>& noises,
                                          const NoiseAugmentOptions& options, Rng& rng) {
  return detail::augment::maybe_add_noise<float>(signal, noises, options, rng);
}
inline NoiseAugmentResult maybe_add_noise(TensorView<double> signal,
                                          const std::vector<Tensor<double>>& noises,
                                          const NoiseAugmentOptions& options, Rng& rng) {
  return detail::augment::maybe_add_noise<double>(signal, noises, options, rng);
}

}  // namespace asrkit
