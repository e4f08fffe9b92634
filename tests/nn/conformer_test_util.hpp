// Helpers of the Conformer-family tests (test_conformer_modules.cpp, test_conformer.cpp).
#pragma once

#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/parameter.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

namespace asrkit_conformer_test {

using asrkit::index_t;
using asrkit::Tensor;

/// One thread for the scope: the gradient checks run thousands of forwards of tiny layers, where
/// an OpenMP team per product only costs time (and a lot of it on a loaded machine).
struct SingleThreadScope {
  int saved = asrkit::num_threads();
  SingleThreadScope() { asrkit::set_num_threads(1); }
  ~SingleThreadScope() { asrkit::set_num_threads(saved); }
  SingleThreadScope(const SingleThreadScope&) = delete;
  SingleThreadScope& operator=(const SingleThreadScope&) = delete;
};

inline Tensor<double> randn(const asrkit::Shape& s, std::uint64_t seed, double stddev = 1.0) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0, stddev);
  return t;
}

inline Tensor<float> to_float(const Tensor<double>& t) {
  Tensor<float> f(t.shape());
  for (index_t i = 0; i < t.numel(); ++i) f.data()[i] = static_cast<float>(t.data()[i]);
  return f;
}

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  REQUIRE(a.numel() == b.numel());
  double worst = 0;
  for (index_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::fabs(double(a.data()[i]) - double(b.data()[i])));
  return worst;
}

/// dL/dx and dL/dθ of a training forward `fwd(layer, x)` against central differences, where
/// L = sum(w ⊙ y). Each loss evaluation runs a fresh copy of the initial layer, so running
/// statistics, dropout masks and stochastic-depth coins are the same every time.
template <class Layer, class Fwd>
void check_layer_gradients(const Layer& layer0, Tensor<double> x, Fwd fwd, double tol = 1e-6) {
  Layer initial = layer0;
  Layer layer = layer0;
  auto y = fwd(layer, x);
  const auto w = randn(y.shape(), 99);
  asrkit::zero_grad(layer);
  const auto dx = layer.backward(w.view());
  auto loss = [&] {
    Layer l = initial;
    return asrkit_test::dot(fwd(l, x), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < tol);
  std::vector<Tensor<double>*> values;
  std::vector<std::pair<std::string, const Tensor<double>*>> grads;
  initial.for_each_parameter([&](const std::string&, auto& p) { values.push_back(&p.value); });
  layer.for_each_parameter([&](const std::string& n, auto& p) { grads.emplace_back(n, &p.grad); });
  REQUIRE(values.size() == grads.size());
  REQUIRE(!values.empty());
  for (std::size_t k = 0; k < values.size(); ++k) {
    INFO("parameter " << grads[k].first);
    CHECK(asrkit_test::max_gradient_error(loss, *values[k], *grads[k].second) < tol);
  }
}

/// check_layer_gradients for a layer with forward_train(x, lengths); also checks that padded
/// input frames get zero gradient.
template <class Layer>
void check_sequence_gradients(const Layer& layer, const Tensor<double>& x,
                              const std::vector<std::int32_t>& lengths, double tol = 1e-6) {
  check_layer_gradients(layer, x, [&](auto& l, const Tensor<double>& in) {
    return l.forward_train(in.view(), asrkit::as_view(lengths));
  }, tol);
  Layer l = layer;
  auto y = l.forward_train(x.view(), asrkit::as_view(lengths));
  const auto dx = l.backward(randn(y.shape(), 5).view());
  if (dx.numel() == 0) return;
  for (index_t t = 0; t < x.dim(0); ++t)
    for (index_t b = 0; b < x.dim(1); ++b)
      if (t >= lengths[static_cast<std::size_t>(b)])
        for (index_t j = 0; j < x.dim(2); ++j) CHECK(dx(t, b, j) == 0.0);
}

/// Changing padded input frames changes no output (training and inference), and padded output
/// frames are 0.
template <class Layer, class Lengths>
void check_padding_invariance(const Layer& layer, const Tensor<double>& x, const Lengths& lengths,
                              const std::vector<std::int32_t>& out_lengths = {}) {
  Tensor<double> noisy(x);
  for (index_t t = 0; t < x.dim(0); ++t)
    for (index_t b = 0; b < x.dim(1); ++b)
      if (t >= lengths[static_cast<std::size_t>(b)])
        for (index_t j = 0; j < x.dim(2); ++j) noisy(t, b, j) = 100.0 + static_cast<double>(j);
  Layer a = layer, b = layer;
  const auto ya = a.forward_train(x.view(), asrkit::as_view(lengths));
  const auto yb = b.forward_train(noisy.view(), asrkit::as_view(lengths));
  CHECK(max_abs_diff(ya, yb) < 1e-12);
  CHECK(max_abs_diff(a.forward(x.view(), asrkit::as_view(lengths)),
                     b.forward(noisy.view(), asrkit::as_view(lengths))) < 1e-12);
  const auto& ol = out_lengths.empty() ? lengths : out_lengths;
  if (ya.dim(0) == x.dim(0))
    for (index_t t = 0; t < ya.dim(0); ++t)
      for (index_t bb = 0; bb < ya.dim(1); ++bb)
        if (t >= ol[static_cast<std::size_t>(bb)])
          for (index_t j = 0; j < ya.dim(2); ++j) CHECK(ya(t, bb, j) == 0.0);
}

}  // namespace asrkit_conformer_test
