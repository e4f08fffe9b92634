// asrkit/frontend/window.hpp - analysis windows for framing audio.
//
//   auto w = asrkit::make_window<float>(asrkit::Window::hamming, 320);   // symmetric
//   auto p = asrkit::make_window<float>(asrkit::Window::hann, 400, true); // periodic (torch.stft)
//
// Definitions follow torch's window functions and Kaldi's feature-window.cc:
//   hann     0.5 - 0.5 cos(2 pi n / N')           hamming  0.54 - 0.46 cos(2 pi n / N')
//   povey    hann^0.85 (Kaldi's default)           blackman a - 0.5 cos(2 pi n / N') + (0.5 - a) cos(4 pi n / N')
// with N' = L - 1 (symmetric) or L (periodic); rectangular is all ones.
#pragma once

#include <cmath>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {

enum class Window { rectangular, hann, hamming, povey, blackman };

template <class T>
Tensor<T> make_window(Window type, index_t length, bool periodic = false, T blackman_coeff = T(0.42)) {
  if (length < 1)
    throw ValueError("frontend.1", detail::str("window length must be >= 1, got ", length));
  Tensor<T> w({length});
  const double denom = periodic ? static_cast<double>(length) : static_cast<double>(length - 1);
  const double two_pi = 2.0 * 3.14159265358979323846;
  for (index_t n = 0; n < length; ++n) {
    // A symmetric window of length 1 is [1] (denominator 0).
    const double x = denom > 0 ? two_pi * static_cast<double>(n) / denom : 0.0;
    double v = 1.0;
    switch (type) {
      case Window::rectangular: v = 1.0; break;
      case Window::hann: v = 0.5 - 0.5 * std::cos(x); break;
      case Window::hamming: v = 0.54 - 0.46 * std::cos(x); break;
      case Window::povey: v = std::pow(0.5 - 0.5 * std::cos(x), 0.85); break;
      case Window::blackman:
        v = static_cast<double>(blackman_coeff) - 0.5 * std::cos(x) +
            (0.5 - static_cast<double>(blackman_coeff)) * std::cos(2 * x);
        break;
    }
    w(n) = static_cast<T>(v);
  }
  return w;
}

}  // namespace asrkit
