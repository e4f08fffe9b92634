// asrkit/frontend/fft.hpp - real-input FFT through Eigen's FFT module.
//
//   asrkit::RealFft<float> fft(512);
//   fft.spectrum(frame, power_out, 2);   // |X_k|^2 for k = 0 .. 256 (n / 2 + 1 bins)
//
// Backend: Eigen's default kissfft, or FFTW when built with ASRKIT_WITH_FFTW (link the
// asrkit::fftw CMake target, which defines EIGEN_FFTW_DEFAULT for the whole target). kissfft
// takes about 0.8 us per 320-point real frame here, more than torch.stft needs for a whole
// frame, so FFTW is what makes the spectrogram faster than PyTorch (docs/frontend.md).
// One object per thread. FFTW's planner is not thread-safe, so the plan is made once, in the
// constructor, under a global lock; executing it is thread-safe.
#pragma once

#if defined(ASRKIT_WITH_FFTW) && !defined(EIGEN_FFTW_DEFAULT)
#define EIGEN_FFTW_DEFAULT
#endif
#include <unsupported/Eigen/FFT>

#include <algorithm>
#include <complex>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>

namespace asrkit {

template <class T>
class RealFft {
 public:
  explicit RealFft(index_t n)
      : n_(n), input_(static_cast<std::size_t>(n)), spectrum_(static_cast<std::size_t>(n / 2 + 1)) {
    if (n < 2) throw ValueError("frontend.2", detail::str("FFT length must be >= 2, got ", n));
    fft_.SetFlag(Eigen::FFT<T>::HalfSpectrum);
    static std::mutex planner;
    const std::lock_guard<std::mutex> lock(planner);
    fft_.fwd(spectrum_.data(), input_.data(), n_);  // makes the plan (buffers as used later)
  }

  /// A scratch input buffer of n samples, with the alignment the plan was made for.
  T* input() noexcept { return input_.data(); }

  /// This thread's FFT of size n, planned on first use and kept for the thread's lifetime (so a
  /// feature call does not re-plan: FFTW's planner costs about as much as a few frames).
  static RealFft& for_thread(index_t n) {
    thread_local std::map<index_t, std::unique_ptr<RealFft>> cache;
    auto& slot = cache[n];
    if (!slot) slot = std::make_unique<RealFft>(n);
    return *slot;
  }

  index_t size() const noexcept { return n_; }
  index_t bins() const noexcept { return n_ / 2 + 1; }

  /// The n / 2 + 1 complex bins of the real input `in` (n samples).
  const std::vector<std::complex<T>>& forward(const T* in) {
    fft_.fwd(spectrum_.data(), in, n_);
    return spectrum_;
  }

  /// |X_k|^p for the n / 2 + 1 bins, p = 1 (magnitude) or 2 (power).
  void spectrum(const T* in, T* out, int p) {
    forward(in);
    // std::complex<T> is laid out as two T (re, im): a flat loop the compiler vectorises. It
    // runs on an internal buffer, so the result does not depend on out's alignment (the
    // vectorised body and a peeled scalar start may contract a * a + b * b differently).
    const T* c = reinterpret_cast<const T*>(spectrum_.data());
    const index_t bins = this->bins();
    power_.resize(static_cast<std::size_t>(bins));
    T* pw = power_.data();
    for (index_t k = 0; k < bins; ++k) pw[k] = c[2 * k] * c[2 * k] + c[2 * k + 1] * c[2 * k + 1];
    if (p == 1) {  // Eigen's packet sqrt: std::sqrt stays scalar (errno semantics)
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> mag(pw, bins);
      mag = mag.sqrt();
    }
    std::copy_n(pw, bins, out);
  }

 private:
  index_t n_;
  Eigen::FFT<T> fft_;
  std::vector<T> input_;
  std::vector<std::complex<T>> spectrum_;
  std::vector<T, Eigen::aligned_allocator<T>> power_;
};

}  // namespace asrkit
