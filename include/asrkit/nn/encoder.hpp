// asrkit/nn/encoder.hpp - a stack of encoder blocks with intermediate-CTC taps, stochastic depth
// and run-time depth pruning (Lee & Watanabe 2021; Lee, Kang & Watanabe 2021; SPECS §6-8).
//
//   asrkit::Rng rng(1);
//   asrkit::EncoderOptions eo;
//   eo.intermediate_layers = {6, 12};                 // 1-based: the outputs of layers 6 and 12
//   eo.stochastic_depth.rate = 0.3;                   // p_l = 0.3 · l / 24
//   asrkit::Encoder<asrkit::TransformerBlock<float>> enc(24, 256, {}, eo, rng);
//   auto out = enc.forward_train(x, lengths);         // x [T, B, 256] (after subsampling)
//   // out.output [T, B, 256], out.intermediates[k] [T, B, 256] for each tap
//   auto dx = enc.backward(d_output, {d_tap6, d_tap12});
//   enc.set_depth(12);                                // prune: layers 1..12 only
//   auto streams = enc.forward_streams(x, lengths);   // residual stream at positions 0..L (SVCCA)
//
// Data flow: the block's positional encoding (Transformer: x·sqrt(D) + PE(t); Conformer and
// FusionFormer: x·sqrt(D) and the relative table pos_emb for every block), then the active
// blocks in order, then "after_norm" (LayerNorm, eps 1e-12; none for FusionFormer, SPECS §10.2).
// Taps (SPECS §7.1): X^(l) is the residual stream after layer l (1-based); with
// tap_final_norm (default) it is passed through the same after_norm, as ESPnet does for pre-LN
// encoders; the model continues from the un-normalised X^(l). The CTC head is not part of the
// encoder (it is shared by the final output and every tap).
// Pruning (SPECS §8.2): removing layer l makes layer l + 1 read the output of layer l − 1; a tap
// at a removed layer reads the stream at that position (the output of the last kept layer
// before it). Stochastic depth: each layer keeps the skip probability of its original index.
// Names: "encoders.<i>.*" (0-based like ESPnet's ModuleList) and "after_norm.*".
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/detail/sequence.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/positional_encoding.hpp>
#include <asrkit/nn/stochastic_depth.hpp>

namespace asrkit {

struct EncoderOptions {
  std::vector<index_t> intermediate_layers;  ///< 1-based taps (InterCTC), e.g. {6, 12}
  bool tap_final_norm = true;                ///< pass taps through after_norm (when there is one)
  StochasticDepth stochastic_depth{};        ///< per-layer skip probabilities (SPECS §6)
  PositionalEncodingOptions positional{};    ///< x_scale (default sqrt(D)) and dropout
  std::uint64_t seed = 0;                    ///< blocks' dropout / stochastic-depth streams
};

template <class T>
struct EncoderOutput {
  Tensor<T> output;                      ///< [T, B, D], after after_norm
  std::vector<Tensor<T>> intermediates;  ///< one per tap, in EncoderOptions order
};

template <class Block>
class Encoder {
 public:
  using T = typename Block::value_type;
  using BlockOptions = typename Block::Options;

  Encoder(index_t num_layers, index_t d_model, const BlockOptions& block, const EncoderOptions& o, Rng& rng)
      : options_(o), positional_(d_model, o.positional) {
    if (num_layers < 1)
      throw ValueError("encoder.1", detail::str("Encoder: num_layers must be >= 1, got ", num_layers));
    for (index_t l : o.intermediate_layers)
      if (l < 1 || l > num_layers ||
          std::count(o.intermediate_layers.begin(), o.intermediate_layers.end(), l) > 1)
        throw ValueError("encoder.1", detail::str("Encoder: intermediate layer ", l, " must be in [1, ",
                                                  num_layers, "] (1-based) and listed once"));
    const auto p = o.stochastic_depth.skip_probabilities(num_layers);
    for (index_t l = 0; l < num_layers; ++l) {
      BlockOptions b = block;
      b.skip_probability = p[static_cast<std::size_t>(l)];
      b.granularity = o.stochastic_depth.granularity;
      b.seed = Rng(o.seed, static_cast<std::uint64_t>(l) + 1).next_u64();
      blocks_.emplace_back(d_model, b, rng);
      active_.push_back(l + 1);
    }
    if (Block::has_layer_norm) after_norm_.emplace(d_model, LayerNormOptions{1e-12, true});
  }

  /// Inference (no dropout, no skipping); taps included.
  EncoderOutput<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {},
                           AttentionMask mask = {}) const {
    EncoderOutput<T> out;
    const auto record_taps = tap_recorder(out, [&](std::size_t, const Tensor<T>& tap) {
      return after_norm_ && options_.tap_final_norm ? after_norm_->forward(tap) : tap;
    });
    std::vector<std::int32_t> len;
    Tensor<T> h = run_inference(x, lengths, mask, len, [&](index_t pos, const Tensor<T>& h_pos) {
      if (pos > 0) record_taps(pos, h_pos, len);
    });
    out.output = after_norm_ ? after_norm_->forward(h) : std::move(h);
    detail::seq::zero_padding(out.output.view(), len);
    return out;
  }

  /// Inference, returning the residual stream at every position 0..L (SVCCA analysis, SPECS
  /// §8.3): [0] after the positional encoding, [l] after layer position l (before after_norm); a
  /// pruned position repeats the stream before it. Each [T, B, D] with padded frames zeroed.
  std::vector<Tensor<T>> forward_streams(TensorView<const T> x, TensorView<const std::int32_t> lengths = {},
                                         AttentionMask mask = {}) const {
    std::vector<Tensor<T>> streams;
    std::vector<std::int32_t> len;
    run_inference(x, lengths, mask, len, [&](index_t, const Tensor<T>& h_pos) {
      streams.push_back(h_pos);
      detail::seq::zero_padding(streams.back().view(), len);
    });
    return streams;
  }

  /// Training: dropout and stochastic depth in the blocks; caches what backward needs.
  EncoderOutput<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {},
                                 AttentionMask mask = {}) {
    lengths_ = detail::seq::checked_lengths(x, d_model(), lengths, "Encoder");
    const auto lv = as_view(lengths_);
    EncoderOutput<T> out;
    Tensor<T> h, pos;
    split_encoding(positional_.forward_train(x, lv), h, pos);
    tap_norms_.clear();
    // the last step's cache is spent; cleared, the tap norms below copy only the parameters
    if (after_norm_) after_norm_->clear_cache();
    const auto record_taps = tap_recorder(out, [&](std::size_t k, const Tensor<T>& tap) {
      if (!(after_norm_ && options_.tap_final_norm)) return tap;
      // a copy of after_norm holds this tap's cache; its gradients are merged in backward
      if (tap_norms_.empty()) tap_norms_.assign(options_.intermediate_layers.size(), *after_norm_);
      tap_norms_[k] = *after_norm_;
      return tap_norms_[k].forward_train(tap);
    });
    run_layers(*this, h, [&](Block& b, const Tensor<T>& in) {
      if constexpr (Block::relative_positions) return b.forward_train(in, pos, lv, mask);
      else return b.forward_train(in, lv, mask);
    }, [&](index_t p, const Tensor<T>& h_pos) { record_taps(p, h_pos, lengths_); });
    out.output = after_norm_ ? after_norm_->forward_train(std::move(h)) : std::move(h);  // h: the cache
    detail::seq::zero_padding(out.output.view(), lengths_);
    shape_ = out.output.shape();
    cached_ = true;
    return out;
  }

  /// dL/dx for the gradient of the final output and of each tap (d_intermediates: one per tap in
  /// EncoderOptions order, or empty when the taps are unused; an empty tensor skips one tap).
  Tensor<T> backward(TensorView<const T> d_output, const std::vector<Tensor<T>>& d_intermediates = {}) {
    if (!cached_) throw ValueError("encoder.2", "Encoder::backward: call forward_train first");
    const auto& taps = options_.intermediate_layers;
    if (!d_intermediates.empty() && d_intermediates.size() != taps.size())
      throw ShapeError("encoder.3", detail::str("Encoder::backward: argument d_intermediates: expected ",
                                                taps.size(), " gradients (one per tap) or none, got ",
                                                d_intermediates.size()));
    for (const auto& d : d_intermediates)
      if (d.numel() != 0 && d.shape() != shape_)
        throw ShapeError("encoder.3", detail::str("Encoder::backward: a tap gradient must have shape ",
                                                  shape_.str(), ", got ", d.shape().str()));
    Tensor<T> g = detail::seq::checked_gradient(d_output, shape_, lengths_, "Encoder");
    if (after_norm_) g = after_norm_->backward(g);
    const index_t layers = num_layers();
    for (index_t pos = layers; pos >= 1; --pos) {
      for (std::size_t k = 0; k < taps.size(); ++k)
        if (taps[k] == pos && !d_intermediates.empty() && d_intermediates[k].numel() != 0)
          add_tap_gradient(g, k, d_intermediates[k]);
      if (std::binary_search(active_.begin(), active_.end(), pos))
        g = blocks_[static_cast<std::size_t>(pos - 1)].backward(g);
    }
    g = positional_.backward(g);
    detail::seq::zero_padding(g.view(), lengths_);
    return g;
  }

  /// Keeps only the given layers (1-based, any order; SPECS §8.2). Taps stay at their positions.
  void set_layers(std::vector<index_t> layers) {
    std::sort(layers.begin(), layers.end());
    for (std::size_t i = 0; i < layers.size(); ++i)
      if (layers[i] < 1 || layers[i] > num_layers() || (i > 0 && layers[i] == layers[i - 1]))
        throw ValueError("encoder.4", detail::str("Encoder::set_layers: layer ", layers[i], " must be in [1, ",
                                                  num_layers(), "] (1-based) and listed once"));
    active_ = std::move(layers);
    cached_ = false;
  }
  /// Truncates to layers 1..depth (depth in [0, L]).
  void set_depth(index_t depth) {
    if (depth < 0 || depth > num_layers())
      throw ValueError("encoder.4", detail::str("Encoder::set_depth: depth must be in [0, ", num_layers(),
                                                "], got ", depth));
    std::vector<index_t> keep;
    for (index_t l = 1; l <= depth; ++l) keep.push_back(l);
    set_layers(std::move(keep));
  }
  const std::vector<index_t>& active_layers() const noexcept { return active_; }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      visit_parameters(blocks_[i], f, join_name(prefix, "encoders." + std::to_string(i)));
    if (after_norm_) visit_parameters(*after_norm_, f, join_name(prefix, "after_norm"));
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      visit_buffers(blocks_[i], f, join_name(prefix, "encoders." + std::to_string(i)));
  }

  index_t num_layers() const noexcept { return static_cast<index_t>(blocks_.size()); }
  index_t d_model() const noexcept { return positional_.d_model(); }
  /// Layer l (1-based).
  Block& layer(index_t l) { return blocks_.at(static_cast<std::size_t>(l - 1)); }
  LayerNorm<T>* after_norm() noexcept { return after_norm_ ? &*after_norm_ : nullptr; }
  typename Block::PositionalEncoding& positional_encoding() noexcept { return positional_; }
  const EncoderOptions& options() const noexcept { return options_; }

 private:
  // Runs positions 1..L of `self` (const: inference), the active ones through run(block, h), and
  // calls after(l, h) with the stream after every position l.
  template <class Self, class Run, class After>
  static void run_layers(Self& self, Tensor<T>& h, Run&& run, After&& after) {
    for (index_t pos = 1; pos <= self.num_layers(); ++pos) {
      if (std::binary_search(self.active_.begin(), self.active_.end(), pos))
        h = run(self.blocks_[static_cast<std::size_t>(pos - 1)], h);
      after(pos, h);
    }
  }

  // An `after` for run_layers that records tap(k, h) for every tap k at position l into out.
  template <class Tap>
  auto tap_recorder(EncoderOutput<T>& out, Tap tap) const {
    out.intermediates.resize(options_.intermediate_layers.size());
    return [this, &out, tap](index_t pos, const Tensor<T>& h, const std::vector<std::int32_t>& len) {
      const auto& taps = options_.intermediate_layers;
      for (std::size_t k = 0; k < taps.size(); ++k)
        if (taps[k] == pos) {
          out.intermediates[k] = tap(k, h);
          detail::seq::zero_padding(out.intermediates[k].view(), len);
        }
    };
  }

  // The positional encoding's output as the stream h and (relative encodings) the table pos.
  template <class Encoded>
  static void split_encoding(Encoded&& e, Tensor<T>& h, Tensor<T>& pos) {
    if constexpr (Block::relative_positions) {
      h = std::move(e.x);
      pos = std::move(e.pos_emb);
    } else {
      h = std::move(e);
    }
  }

  // Inference front end and blocks: lengths checked into len, the positional encoding (after(0,
  // h)), then every position (after(l, h)); returns the last stream (before after_norm).
  template <class After>
  Tensor<T> run_inference(TensorView<const T> x, TensorView<const std::int32_t> lengths, AttentionMask mask,
                          std::vector<std::int32_t>& len, After&& after) const {
    len = detail::seq::checked_lengths(x, d_model(), lengths, "Encoder");
    const auto lv = as_view(len);
    Tensor<T> h, pos;
    split_encoding(positional_.forward(x, lv), h, pos);
    after(index_t(0), h);
    run_layers(*this, h, [&](const Block& b, const Tensor<T>& in) {
      if constexpr (Block::relative_positions) return b.forward(in, pos, lv, mask);
      else return b.forward(in, lv, mask);
    }, after);
    return h;
  }

  // Tap k's gradient through its after_norm copy (parameter gradients merged into after_norm).
  void add_tap_gradient(Tensor<T>& g, std::size_t k, const Tensor<T>& d_tap) {
    Tensor<T> d(d_tap);
    detail::seq::zero_padding(d.view(), lengths_);
    if (after_norm_ && options_.tap_final_norm) {
      LayerNorm<T>& n = tap_norms_[k];
      zero_grad(n);
      d = n.backward(d);
      add_grads<T>(*after_norm_, n);
    }
    detail::seq::add_to(g.view(), TensorView<const T>(d.view()));
  }

  EncoderOptions options_;
  typename Block::PositionalEncoding positional_;
  std::vector<Block> blocks_;
  std::optional<LayerNorm<T>> after_norm_;
  std::vector<index_t> active_;  // 1-based, increasing
  // forward_train cache
  std::vector<LayerNorm<T>> tap_norms_;  // one per tap, in EncoderOptions order
  std::vector<std::int32_t> lengths_;
  Shape shape_;
  bool cached_ = false;
};

}  // namespace asrkit
