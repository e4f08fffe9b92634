#include <asrkit/frontend/window.hpp>

#include <cmath>

#include "../test_util.hpp"

TEST_CASE("windows: definitions, symmetry, periodic form", "[frontend][window]") {
  using asrkit::Window;
  const auto hann = asrkit::make_window<double>(Window::hann, 9);
  CHECK(hann(0) == Approx(0.0).margin(1e-15));
  CHECK(hann(4) == Approx(1.0));
  CHECK(hann(8) == Approx(0.0).margin(1e-15));
  for (int n = 0; n < 9; ++n) CHECK(hann(n) == Approx(hann(8 - n)));
  const auto periodic = asrkit::make_window<double>(Window::hann, 8, true);
  for (int n = 0; n < 8; ++n) CHECK(periodic(n) == Approx(hann(n)).margin(1e-15));  // = first 8 of 9
  const auto hamming = asrkit::make_window<double>(Window::hamming, 5);
  CHECK(hamming(0) == Approx(0.08));
  CHECK(hamming(2) == Approx(1.0));
  const auto povey = asrkit::make_window<double>(Window::povey, 9);
  for (int n = 0; n < 9; ++n) CHECK(povey(n) == Approx(std::pow(hann(n), 0.85)).margin(1e-15));
  const auto blackman = asrkit::make_window<double>(Window::blackman, 7);
  CHECK(blackman(0) == Approx(0.0).margin(1e-15));
  CHECK(blackman(3) == Approx(1.0));
  CHECK(asrkit::make_window<float>(Window::rectangular, 4).flat().sum() == 4.0f);
  CHECK(asrkit::make_window<float>(Window::hann, 1)(0) == 0.0f);  // cos(0): a single-sample hann
  REQUIRE_THROWS_ID(asrkit::make_window<float>(Window::hann, 0), asrkit::ValueError,
                    "[asrkit.frontend.1] window length must be >= 1, got 0");
}
