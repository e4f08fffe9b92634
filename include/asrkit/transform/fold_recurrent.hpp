// asrkit/transform/fold_recurrent.hpp - folding DS2's sequence-wise BN of a recurrent layer into
// its input weights (SPECS §3.3, §10.3, §12.1).
//
//   asrkit::BatchNormRNN<float> rnn(161, 800, o, rng);   // h_t = f(BN(W x_t) + U h_{t−1})
//   ... train ...
//   auto report = asrkit::transform::fold_batch_norms(rnn, "rnns.0");
//   // rnn is now h_t = f(W' x_t + b' + U h_{t−1}): same outputs, no BN
//
// DS2 normalises only the input term W x (one BN per input projection: one when both
// directions share W, one per direction otherwise). At inference that BN is a per-feature affine
// map, so it folds exactly into W_ih and b_ih like a BN after a Linear (post-BN):
// W'_c = s_c·W_c, b'_c = s_c·(b_c − μ_c) + β_c; the layer gains "bias_ih_l0[_reverse]" and
// loses "norm_ih_*". Works for every Recurrent<Cell> (RNN, GRU, LSTM) with input_batch_norm.
// Per-time-step BN (BN-LSTM's RecurrentBatchNorm) is not foldable into W (its statistics
// change with t; SPECS §12.1) and is not handled here.
#pragma once

#include <string>
#include <string_view>

#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/recurrent.hpp>
#include <asrkit/transform/fold_batch_norm.hpp>

namespace asrkit {
namespace transform {
namespace detail {
namespace fold {

/// Input projection p of a recurrent layer (W_ih [C, F], b_ih [C]) as a foldable layer.
template <class Cell>
struct RecurrentProjection {
  using T = typename Cell::value_type;
  Recurrent<Cell>& layer;
  index_t p;

  Geometry fold_geometry() const {
    const index_t cols = layer.cell(0).input_columns(), in = layer.input_size();
    return {cols, in, 1, 1, {0, 0}, {0, 0}, {1, 1}, asrkit::detail::str("Linear(", in, " -> ", cols, ")")};
  }
  Parameter<T>& weight() { return layer.weight_ih(p); }
  Parameter<T>& bias() { return layer.bias_ih(p); }
  void enable_bias() {
    if (layer.bias_ih(p).value.numel() == 0) layer.bias_ih(p) = Parameter<T>(Shape{layer.weight_ih(p).value.dim(0)});
  }
};

}  // namespace fold
}  // namespace detail

/// Folds the input BN(s) of a DS2 BN-RNN / BN-GRU (input_batch_norm) into W_ih and b_ih and
/// deletes them; `prefix` is the layer's state_dict prefix (for the report and messages). A layer
/// without input BN gives an empty report. Nothing changes on fold.2 (NaN / Inf statistics).
template <class Cell>
FoldReport fold_batch_norms(Recurrent<Cell>& layer, std::string_view prefix = {}) {
  if (!layer.options().input_batch_norm) return {};
  return detail::fold::run_pass(
      [&](auto&& f) {
        for (index_t p = 0; p < layer.num_projections(); ++p) {
          const std::string sfx = p == 0 ? "_l0" : "_l0_reverse";
          detail::fold::RecurrentProjection<Cell> proj{layer, p};
          f(proj, layer.input_norm(p), join_name(prefix, "norm_ih" + sfx), join_name(prefix, "weight_ih" + sfx));
        }
      },
      [&] { layer.remove_input_batch_norm(); });
}

}  // namespace transform
}  // namespace asrkit
