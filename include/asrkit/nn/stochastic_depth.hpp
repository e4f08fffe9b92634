// asrkit/nn/stochastic_depth.hpp - stochastic depth for residual encoder blocks (Huang et al.
// 2016), in the ESPnet form used by InterCTC and run-time pruning (SPECS §6, §8).
//
//   asrkit::StochasticDepth sd;                         // ESPnet1: p_l = rate · l / L
//   sd.rate = 0.3;
//   auto p = sd.skip_probabilities(24);                 // 0.0125, 0.025, ..., 0.3
//   asrkit::Rng rng(7);
//   auto drop = asrkit::LayerDrop<float>::draw(p[5], sd.granularity, batch, rng);
//   // drop.factor[b]: 0 (item b skips the layer) or 1 / (1 − p) (every residual branch scaled)
//
// Semantics (ESPnet encoder_layer.py, SPECS §6):
// - layer l (1-based) of L is skipped with probability p_l: linear p_l = rate · l / L, constant
//   p_l = rate, or list p_l = rates[l − 1];
// - batch granularity draws one coin per layer and forward pass for the whole minibatch
//   (torch.rand(1) < p); sample granularity one coin per batch item;
// - a skipped layer (item) is the identity; a kept one scales every residual branch by
//   1 / (1 − p) (inverted scaling), so inference neither skips nor scales;
// - coins come from an asrkit::Rng, so a seed fixes every decision on every platform.
#pragma once

#include <string>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {

/// How the per-layer skip probability grows with depth.
enum class DepthSchedule { linear, constant, list };
/// One coin per minibatch (ESPnet) or one per batch item.
enum class DepthGranularity { batch, sample };

struct StochasticDepth {
  double rate = 0.0;                        ///< linear: p_L; constant: every p_l
  DepthSchedule schedule = DepthSchedule::linear;
  std::vector<double> rates;                ///< list: p_1 .. p_L
  DepthGranularity granularity = DepthGranularity::batch;

  /// p_l for layer l = 1..L. Throws ValueError stochastic_depth.1 for a probability outside
  /// [0, 1), a list whose size is not L, or l outside [1, L].
  double skip_probability(index_t layer, index_t num_layers) const {
    if (num_layers < 1 || layer < 1 || layer > num_layers)
      throw ValueError("stochastic_depth.1", detail::str("StochasticDepth: layer must be in [1, ",
                                                         num_layers, "] (1-based), got ", layer));
    double p = rate;
    if (schedule == DepthSchedule::linear) {
      p = rate * static_cast<double>(layer) / static_cast<double>(num_layers);
    } else if (schedule == DepthSchedule::list) {
      if (static_cast<index_t>(rates.size()) != num_layers)
        throw ValueError("stochastic_depth.1", detail::str("StochasticDepth: the list schedule needs one "
                                                           "rate per layer (", num_layers, "), got ",
                                                           rates.size()));
      p = rates[static_cast<std::size_t>(layer - 1)];
    }
    check_probability(p);
    return p;
  }

  /// p_1 .. p_L.
  std::vector<double> skip_probabilities(index_t num_layers) const {
    std::vector<double> p;
    for (index_t l = 1; l <= num_layers; ++l) p.push_back(skip_probability(l, num_layers));
    return p;
  }

  static void check_probability(double p) {
    if (!(p >= 0.0 && p < 1.0))
      throw ValueError("stochastic_depth.1", detail::str("StochasticDepth: a skip probability must be in "
                                                         "[0, 1), got ", p));
  }
};

/// One layer's decision for one training forward pass: per batch item, the factor of every
/// residual branch (0: the item skips the layer; 1 / (1 − p): kept).
template <class T>
struct LayerDrop {
  std::vector<T> factor;

  /// Every item kept with factor 1 (inference, or p = 0).
  static LayerDrop keep_all(index_t batch) {
    return LayerDrop{std::vector<T>(static_cast<std::size_t>(batch), T(1))};
  }

  /// Draws the coins: one for the batch (granularity batch) or one per item. p = 0 draws nothing,
  /// so models without stochastic depth consume no random numbers.
  static LayerDrop draw(double p, DepthGranularity granularity, index_t batch, Rng& rng) {
    StochasticDepth::check_probability(p);
    if (p == 0.0) return keep_all(batch);
    const T kept = static_cast<T>(1.0 / (1.0 - p));
    LayerDrop d;
    d.factor.resize(static_cast<std::size_t>(batch));
    if (granularity == DepthGranularity::batch) {
      const bool skip = rng.uniform<double>() < p;
      for (auto& f : d.factor) f = skip ? T(0) : kept;
    } else {
      for (auto& f : d.factor) f = rng.uniform<double>() < p ? T(0) : kept;
    }
    return d;
  }

  /// True when every item skips (the layer need not run at all).
  bool all_skipped() const {
    for (T f : factor)
      if (f != T(0)) return false;
    return true;
  }
  bool any_skipped() const {
    for (T f : factor)
      if (f == T(0)) return true;
    return false;
  }
};

}  // namespace asrkit
