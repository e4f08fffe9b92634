// asrkit/nn/detail/residual.hpp - one pre-LN residual step of an encoder block,
//   x ← x + coef · factor[b] · Dropout( Module( LN(x) ) ),
// shared by TransformerBlock and ConformerBlock / FusionFormerBlock (internal). coef is ½ for the
// macaron feed-forward modules (Gulati et al. 2020, eq. 1), factor the stochastic-depth scale of
// each batch item (SPECS §6: 1 / (1 − p) when kept, 0 when skipped; 1 at inference). Without LN
// (FusionFormer, SPECS §10.2) the module reads x itself.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/sequence.hpp>
#include <asrkit/nn/dropout.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/stochastic_depth.hpp>

namespace asrkit {
namespace detail {

template <class T>
class ResidualStep {
 public:
  ResidualStep(index_t d_model, bool layer_norm, double dropout, std::uint64_t seed, T coef)
      : dropout_(dropout, seed), coef_(coef) {
    if (layer_norm) norm_.emplace(d_model, LayerNormOptions{1e-12, true});
  }

  /// Inference: x += coef · Module(LN(x)); `run(TensorView<const T>) -> Tensor<T>` is the module.
  template <class Run>
  void forward(Tensor<T>& x, Run&& run) const {
    Tensor<T> branch = norm_ ? run(TensorView<const T>(norm_->forward(x).view())) : run(TensorView<const T>(x.view()));
    seq::add_scaled(x.view(), TensorView<const T>(branch.view()), coef_,
                    std::vector<T>(static_cast<std::size_t>(x.dim(1)), T(1)));
  }

  /// Training: with dropout on the branch and the per-item factors; caches for backward.
  template <class Run>
  void forward_train(Tensor<T>& x, const std::vector<T>& factor, Run&& run) {
    Tensor<T> branch;
    if (norm_) {
      const Tensor<T> h = norm_->forward_train(x);
      branch = run(TensorView<const T>(h.view()));
    } else {
      branch = run(TensorView<const T>(x.view()));
    }
    if (dropout_.p() > 0) branch = dropout_.forward_train(branch);
    seq::add_scaled(x.view(), TensorView<const T>(branch.view()), coef_, factor);
  }

  /// g = dL/dx after the step; returns dL/dx before it (g + the branch's gradient).
  /// `back(Tensor<T>) -> Tensor<T>` is the module's backward.
  template <class Back>
  Tensor<T> backward(const Tensor<T>& g, const std::vector<T>& factor, Back&& back) {
    Tensor<T> d = seq::scaled(TensorView<const T>(g.view()), coef_, factor);
    if (dropout_.p() > 0) d = dropout_.backward(d);
    d = back(std::move(d));
    if (norm_) d = norm_->backward(d);
    seq::add_to(d.view(), TensorView<const T>(g.view()));
    return d;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view name) {
    if (norm_) visit_parameters(*norm_, f, name);
  }

  LayerNorm<T>* norm() noexcept { return norm_ ? &*norm_ : nullptr; }
  Dropout<T>& dropout() noexcept { return dropout_; }

 private:
  std::optional<LayerNorm<T>> norm_;
  Dropout<T> dropout_;
  T coef_;
};

/// A block's stochastic depth (SPECS §6): its skip probability, granularity, the Rng its coins
/// come from, and the decision of the last training forward.
template <class T>
struct BlockDepth {
  double skip_probability = 0.0;
  DepthGranularity granularity = DepthGranularity::batch;
  Rng rng;
  LayerDrop<T> drop;          // of the last forward_train
  bool skipped = false;       // every item skipped: the block was the identity

  const std::vector<T>& draw(index_t batch) {
    drop = LayerDrop<T>::draw(skip_probability, granularity, batch, rng);
    skipped = batch > 0 && drop.all_skipped();
    return drop.factor;
  }
};

/// The stochastic-depth state and accessors every encoder block shares (SPECS §6); the block
/// draws with depth_.draw(batch) in forward_train.
template <class T>
class StochasticDepthBlock {
 public:
  /// Sets the stochastic-depth skip probability p in [0, 1) of this block.
  void set_skip_probability(double p, DepthGranularity granularity = DepthGranularity::batch) {
    StochasticDepth::check_probability(p);
    depth_.skip_probability = p;
    depth_.granularity = granularity;
  }
  double skip_probability() const noexcept { return depth_.skip_probability; }
  /// The stochastic-depth decision of the last forward_train: per-item branch factors.
  const LayerDrop<T>& last_drop() const noexcept { return depth_.drop; }
  Rng& depth_rng() noexcept { return depth_.rng; }

 protected:
  BlockDepth<T> depth_;
};

/// Items skipped by sample-granularity stochastic depth leave the block unchanged: rows of y for
/// items with factor 0 are replaced by those of x (used after a block's final LayerNorm).
template <class T>
void keep_skipped_items(Tensor<T>& y, TensorView<const T> x, const std::vector<T>& factor) {
  const index_t steps = y.dim(0), batch = y.dim(1), d = y.dim(2);
  for (index_t b = 0; b < batch; ++b)
    if (factor[static_cast<std::size_t>(b)] == T(0))
      for (index_t t = 0; t < steps; ++t)
        std::copy(x.data() + (t * batch + b) * d, x.data() + (t * batch + b + 1) * d, y.data() + (t * batch + b) * d);
}

/// Splits g for keep_skipped_items' backward: returns the rows of skipped items (0 elsewhere)
/// and zeroes them in g.
template <class T>
Tensor<T> take_skipped_items(Tensor<T>& g, const std::vector<T>& factor) {
  Tensor<T> out(g.shape());
  const index_t steps = g.dim(0), batch = g.dim(1), d = g.dim(2);
  for (index_t b = 0; b < batch; ++b)
    if (factor[static_cast<std::size_t>(b)] == T(0))
      for (index_t t = 0; t < steps; ++t) {
        T* row = g.data() + (t * batch + b) * d;
        std::copy(row, row + d, out.data() + (t * batch + b) * d);
        std::fill(row, row + d, T(0));
      }
  return out;
}

}  // namespace detail
}  // namespace asrkit
