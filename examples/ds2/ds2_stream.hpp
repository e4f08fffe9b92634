// ds2_stream.hpp - chunked inference of a forward-only DS2 model (SPECS §3.9): feature frames
// in, the logits of every output frame that can already be computed out.
//
//   ds2::Stream<float> s(model);               // forward-only (lookahead) models only
//   for (auto& chunk : chunks)                 // chunk [Tc, bins], Tc >= 0
//     consume(s.push(chunk.view()));           // logits [E, V], E >= 0
//   consume(s.finish());                       // the rest; the stream is ready for a new utterance
//
// The concatenated logits equal Model::forward on the whole utterance (to rounding: the GEMMs
// see other block sizes). What each part waits for: a convolution needs its kernel's future
// columns (k_w - 1 - p_w past the output frame, times the strides below it), the recurrent
// layers nothing (their state is carried, RecurrentState), the row convolution τ output frames
// (RowConvolutionStream). finish() supplies the right-hand zero padding the offline model sees.
#pragma once

#include "ds2_model.hpp"

#include <optional>
#include <vector>

namespace ds2 {

template <class T>
class Stream {
 public:
  /// ValueError "ds2.7" for a bidirectional model (its backward direction needs the whole
  /// utterance). The stream keeps a reference to `model`, which must outlive it.
  explicit Stream(const Model<T>& model) : model_(model) {
    const Config& c = model.config();
    if (c.bidirectional)
      throw asrkit::ValueError("ds2.7", "ds2::Stream: the model \"" + c.name +
                                            "\" is bidirectional; streaming needs a forward-only "
                                            "model (bidirectional false, lookahead τ)");
    asrkit::Rng unused(0);  // the weights are copied below
    index_t channels = 1;
    for (std::size_t i = 0; i < c.convs.size(); ++i) {
      const ConvSpec& s = c.convs[i];
      // The same convolution without time padding: the stream supplies the zero columns.
      asrkit::Conv2dOptions o = s.options();
      o.padding[1] = 0;
      convs_.emplace_back(channels, s.channels, o, unused);
      convs_.back().weight().value = model.convs_[i].conv.weight().value;
      channels = s.channels;
    }
    reset();
  }

  /// features [Tc, bins] (Tc >= 0; normalised like Model::forward's input) -> logits [E, V] of
  /// the output frames completed by this chunk.
  Tensor<T> push(TensorView<const T> features) { return advance(features, false); }

  /// Logits of the output frames still pending (zero padding past the end, as offline); then
  /// resets for the next utterance.
  Tensor<T> finish() {
    const Tensor<T> none(Shape{0, model_.config().bins});
    Tensor<T> rest = advance(none.view(), true);
    reset();
    return rest;
  }

  /// Output frames returned since the start of the utterance.
  index_t frames_out() const noexcept { return frames_out_; }

 private:
  void reset() {
    const Config& c = model_.config();
    pending_.clear();
    index_t channels = 1, rows = c.bins;
    for (const ConvSpec& s : c.convs) {
      // Each conv's pending columns start with its left padding: p_w zero columns.
      pending_.emplace_back(Shape{1, channels, rows, s.padding[1]}, T(0));
      channels = s.channels;
      rows = s.output_size(rows, 0);
    }
    states_.assign(static_cast<std::size_t>(c.rnn_layers), asrkit::RecurrentState<T>{});
    lookahead_.reset();
    if (!model_.lookahead_.empty()) lookahead_.emplace(model_.lookahead_[0], 1);
    frames_out_ = 0;
  }

  Tensor<T> advance(TensorView<const T> features, bool last) {
    const Config& c = model_.config();
    if (features.rank() != 2 || features.dim(1) != c.bins)
      throw asrkit::ShapeError(
          "ds2.3", asrkit::detail::str("ds2::Stream::push: argument features: expected shape [Tc, ",
                                       c.bins, "], got ", features.shape().str()));
    Model<T>& model = const_cast<Model<T>&>(model_);  // inference only: nothing changes
    // [Tc, bins] -> columns [1, 1, bins, Tc].
    const index_t steps = features.dim(0);
    Tensor<T> columns(Shape{1, 1, c.bins, steps}, asrkit::uninitialized);
    for (index_t t = 0; t < steps; ++t)
      for (index_t f = 0; f < c.bins; ++f)
        columns.data()[f * steps + t] = features.data()[t * c.bins + f];

    for (std::size_t i = 0; i < convs_.size(); ++i) {
      const ConvSpec& s = c.convs[i];
      Tensor<T>& have = pending_[i];
      have = append_columns(have, columns.view(), last ? s.padding[1] : 0);
      const index_t width = have.dim(3), rows_out = s.output_size(have.dim(2), 0);
      const index_t count = width < s.kernel[1] ? 0 : (width - s.kernel[1]) / s.stride[1] + 1;
      columns = Tensor<T>(Shape{1, s.channels, rows_out, 0});
      if (count == 0) continue;  // later layers may still have columns to finish
      Tensor<T> y = convs_[i].forward(
          slice_columns(have.view(), 0, (count - 1) * s.stride[1] + s.kernel[1]).view());
      have = slice_columns(have.view(), count * s.stride[1], width);
      Tensor<T> rows =
          model.template normalize_conv<false>(i, y.view(), {static_cast<std::int32_t>(count)});
      columns = detail::rows_to_image<T>(rows.view(), 1, rows_out);
    }
    // [1, C, F, E] -> the RNN input [E, 1, C·F] (feature c·F + f, as offline).
    const index_t C = columns.dim(1), F = columns.dim(2), E = columns.dim(3);
    Tensor<T> x(Shape{E, 1, C * F}, asrkit::uninitialized);
    for (index_t r = 0; r < C * F; ++r)
      for (index_t t = 0; t < E; ++t) x.data()[t * C * F + r] = columns.data()[r * E + t];
    if (E > 0) {
      Tensor<std::int32_t> length(Shape{1}, static_cast<std::int32_t>(E));
      for (std::size_t l = 0; l < model.rnns_.size(); ++l)
        x = std::visit(
            [&](const auto& layer) { return layer.forward(x.view(), length.view(), states_[l]); },
            model.rnns_[l]);
    } else {
      x = Tensor<T>(Shape{0, 1, c.hidden});
    }
    if (lookahead_) {
      x = lookahead_->push(x.view());
      if (last) x = concat_frames(x, lookahead_->finish());
      if (x.dim(0) > 0) x = model.lookahead_act_.forward(x.view());
    }
    Tensor<T> logits(Shape{x.dim(0), c.vocab});
    if (x.dim(0) > 0) {
      const Tensor<T> y = model.fc_[0].forward(x.view());
      std::copy(y.data(), y.data() + y.numel(), logits.data());
    }
    frames_out_ += logits.dim(0);
    return logits;
  }

  // [1, C, F, P] followed by the columns of `more` [1, C, F, M] and `zeros` zero columns.
  static Tensor<T> append_columns(const Tensor<T>& have, TensorView<const T> more, index_t zeros) {
    const index_t C = have.dim(1), F = have.dim(2), P = have.dim(3), M = more.dim(3);
    Tensor<T> out(Shape{1, C, F, P + M + zeros}, T(0));
    for (index_t r = 0; r < C * F; ++r) {
      std::copy(have.data() + r * P, have.data() + (r + 1) * P, out.data() + r * (P + M + zeros));
      std::copy(more.data() + r * M, more.data() + (r + 1) * M,
                out.data() + r * (P + M + zeros) + P);
    }
    return out;
  }

  // Columns [begin, end) of [1, C, F, W].
  static Tensor<T> slice_columns(TensorView<const T> x, index_t begin, index_t end) {
    const index_t rows = x.dim(1) * x.dim(2), W = x.dim(3);
    Tensor<T> out(Shape{1, x.dim(1), x.dim(2), end - begin}, asrkit::uninitialized);
    for (index_t r = 0; r < rows; ++r)
      std::copy(x.data() + r * W + begin, x.data() + r * W + end, out.data() + r * (end - begin));
    return out;
  }

  // [A, 1, d] then [B, 1, d] -> [A + B, 1, d].
  static Tensor<T> concat_frames(const Tensor<T>& a, const Tensor<T>& b) {
    Tensor<T> out(Shape{a.dim(0) + b.dim(0), 1, a.dim(2)}, asrkit::uninitialized);
    std::copy(a.data(), a.data() + a.numel(), out.data());
    std::copy(b.data(), b.data() + b.numel(), out.data() + a.numel());
    return out;
  }

  const Model<T>& model_;
  std::vector<asrkit::Conv2d<T>> convs_;  // the model's convs without time padding
  std::vector<Tensor<T>> pending_;        // per conv: input columns not yet consumed
  std::vector<asrkit::RecurrentState<T>> states_;
  std::optional<asrkit::RowConvolutionStream<T>> lookahead_;
  index_t frames_out_ = 0;
};

}  // namespace ds2
