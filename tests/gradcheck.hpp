// Finite-difference gradient checks in double precision, shared by the ops/, nn/ and train/
// tests (not part of the library).
//
//   auto loss = [&] { return asrkit_test::dot(layer.forward(x.view()), weights); };
//   auto dx = layer.backward(weights.view());                      // analytic dL/dx
//   REQUIRE(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);
//
// The loss is a fixed random projection of the output, L = sum(w * f(x)), so dL/dy = w and every
// output element contributes. Central differences: (L(x + h) - L(x - h)) / 2h, error O(h^2).
#pragma once

#include <algorithm>
#include <cmath>

#include <asrkit/core/tensor.hpp>

namespace asrkit_test {

/// sum(a * b) over all elements (shapes must have the same element count).
template <class A, class B>
double dot(const A& a, const B& b) {
  double s = 0;
  const auto* pa = a.data();
  const auto* pb = b.data();
  for (asrkit::index_t i = 0; i < a.numel(); ++i) s += static_cast<double>(pa[i]) * static_cast<double>(pb[i]);
  return s;
}

/// Largest |numeric - analytic| / max(1, |numeric|) over every element of `x`, where numeric is
/// the central difference of `loss()` (a callable reading x) and `analytic` the claimed dL/dx.
/// x is perturbed in place and restored.
template <class Loss, class X, class G>
double max_gradient_error(Loss&& loss, X& x, const G& analytic, double h = 1e-6) {
  double worst = 0;
  auto* px = x.data();
  const auto* pg = analytic.data();
  for (asrkit::index_t i = 0; i < x.numel(); ++i) {
    const double saved = px[i];
    px[i] = saved + h;
    const double up = loss();
    px[i] = saved - h;
    const double down = loss();
    px[i] = saved;
    const double numeric = (up - down) / (2 * h);
    worst = std::max(worst, std::fabs(numeric - static_cast<double>(pg[i])) / std::max(1.0, std::fabs(numeric)));
  }
  return worst;
}

}  // namespace asrkit_test
