// asrkit/train/clip.hpp - gradient clipping by the global norm (torch.nn.utils.clip_grad_norm_).
//
//   double norm = asrkit::clip_grad_norm(model, 400.0);   // DS2 sec. 3.11: rescale above 400
//
// The norm is taken over all gradients of the model together (Pascanu et al. 2013):
//   total = (Σ_params Σ_i |g_i|^p)^(1/p)   (p = 2 by default; p = inf: max |g_i|),
// accumulated in double in visiting order (deterministic). When total > max_norm every gradient
// is multiplied by max_norm / (total + 1e-6), as PyTorch does; the pre-clip norm is returned.
// A NaN/inf norm propagates into the gradients (PyTorch's default) unless error_if_nonfinite.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include <asrkit/core/error.hpp>
#include <asrkit/nn/parameter.hpp>

namespace asrkit {

/// The global p-norm of every parameter gradient of `model` (no clipping).
template <class Model>
double grad_norm(Model& model, double norm_type = 2.0) {
  if (!(norm_type > 0))
    throw ValueError("clip.1", detail::str("grad_norm: norm_type must be > 0 (or inf), got ", norm_type));
  const bool inf = std::isinf(norm_type);
  double acc = 0;
  model.for_each_parameter([&](const std::string&, auto& p) {
    const auto* g = p.grad.data();
    for (index_t i = 0, n = p.grad.numel(); i < n; ++i) {
      const double a = std::fabs(static_cast<double>(g[i]));
      if (inf) acc = (a > acc || std::isnan(a)) ? a : acc;
      else if (norm_type == 2.0) acc += a * a;
      else acc += std::pow(a, norm_type);
    }
  });
  if (inf) return acc;
  return norm_type == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type);
}

/// Rescales all gradients so their global norm is at most max_norm; returns the norm before.
template <class Model>
double clip_grad_norm(Model& model, double max_norm, double norm_type = 2.0,
                      bool error_if_nonfinite = false) {
  if (!(max_norm >= 0) || std::isinf(max_norm))
    throw ValueError("clip.1", detail::str("clip_grad_norm: max_norm must be finite and >= 0, got ", max_norm));
  const double total = grad_norm(model, norm_type);
  if (error_if_nonfinite && !std::isfinite(total))
    throw ValueError("clip.2", detail::str("clip_grad_norm: the total gradient norm is ", total,
                                           " (not finite)"));
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef)) {
    model.for_each_parameter([&](const std::string&, auto& p) {
      using T = std::decay_t<decltype(*p.grad.data())>;
      const T c = static_cast<T>(coef);
      auto* g = p.grad.data();
      for (index_t i = 0, n = p.grad.numel(); i < n; ++i) g[i] *= c;
    });
  }
  return total;
}

}  // namespace asrkit
