// Helpers of the BN-folding tests (not part of the library): random tensors, "trained" BNs
// (running statistics far from 0 / 1 and random γ, β) and the comparison relative to the
// output's scale.
#pragma once

#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/parameter.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../nn/conformer_test_util.hpp"
#include "../test_util.hpp"

namespace asrkit_fold_test {

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

using asrkit_conformer_test::SingleThreadScope;  // tiny layers: no thread team per product

/// N(mean, stddev) values: the non-zero mean keeps running_mean far from 0.
template <class T>
Tensor<T> randn(const Shape& s, std::uint64_t seed, double mean = 0.0, double stddev = 1.0) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), static_cast<T>(mean), static_cast<T>(stddev));
  return t;
}

/// Tolerance of a folded-vs-unfolded comparison relative to the output scale (SPECS §10.3: the
/// folded weights are rounded once, so float differs in the last bits and double far below).
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

/// max |a − b| / max(max |a|, 1e-30).
template <class A, class B>
double relative_diff(const A& a, const B& b) {
  REQUIRE(a.numel() == b.numel());
  double worst = 0, scale = 1e-30;
  for (index_t i = 0; i < a.numel(); ++i) {
    worst = std::max(worst, std::fabs(double(a.data()[i]) - double(b.data()[i])));
    scale = std::max(scale, std::fabs(double(a.data()[i])));
  }
  return worst / scale;
}

/// Random γ in [0.5, 1.5] and β in [−1, 1] for every BatchNorm of a module (the owners of a
/// "running_mean" buffer), so the folds see a non-trivial affine part.
template <class Module>
void randomize_norms(Module& m, std::uint64_t seed) {
  std::vector<std::string> owners;
  m.for_each_buffer([&](const std::string& n, auto&) {
    const std::string tail = "running_mean";
    if (n.size() >= tail.size() && n.compare(n.size() - tail.size(), tail.size(), tail) == 0)
      owners.push_back(n.substr(0, n.size() - tail.size()));  // "prefix." (or "")
  });
  asrkit::Rng rng(seed);
  m.for_each_parameter([&](const std::string& n, auto& p) {
    using V = typename std::decay_t<decltype(p.value)>::value_type;
    for (const auto& o : owners) {
      if (n == o + "weight") rng.fill_uniform(p.value.view(), V(0.5), V(1.5));
      if (n == o + "bias") rng.fill_uniform(p.value.view(), V(-1), V(1));
    }
  });
}

/// Names of a module's buffers (BN running statistics: a folded module has none).
template <class Module>
std::vector<std::string> buffer_names(Module& m) {
  std::vector<std::string> out;
  m.for_each_buffer([&](const std::string& n, auto&) { out.push_back(n); });
  return out;
}

/// Names of every state_dict entry.
template <class Module>
std::vector<std::string> state_names(Module& m) {
  std::vector<std::string> out;
  m.for_each_parameter([&](const std::string& n, auto&) { out.push_back(n); });
  m.for_each_buffer([&](const std::string& n, auto&) { out.push_back(n); });
  return out;
}

}  // namespace asrkit_fold_test
