// asrkit/nn/subsampling.hpp - convolutional front-end subsampling of Transformer / Conformer
// encoders (ESPnet Conv2dSubsampling, Conv2dSubsampling6, Conv2dSubsampling8).
//
//   asrkit::Rng rng(1);
//   asrkit::Conv2dSubsampling<float> sub(80, 256, {/*factor*/ 4}, rng);
//   auto y   = sub.forward_train(feats, lengths);      // [T, B, 80] -> [T', B, 256]
//   auto len = sub.output_lengths(lengths);           // per item T'_b
//   auto dx  = sub.backward(dy);
//
// The features are one image per item, [B, 1, T, F] (time as height, as ESPnet), then
//   factor 4: Conv2d(1, D, 3, stride 2) → ReLU → Conv2d(D, D, 3, stride 2) → ReLU
//   factor 6: Conv2d(1, D, 3, stride 2) → ReLU → Conv2d(D, D, 5, stride 3) → ReLU
//   factor 8: three Conv2d(·, D, 3, stride 2) → ReLU
// (no padding), and Linear(D·F' → D) on each frame's [D, F'] map flattened channel-major
// (ESPnet `x.transpose(1, 2).view(b, t, c * f)`). Names as ESPnet's nn.Sequential:
// "conv.0", "conv.2", "conv.4" (convs), "out.0" (the Linear). Positional encoding is not part of
// this layer (asrkit::Encoder adds it).
// FusionFormer (SPECS §10.2, "front-end subsampling convs: Conv → BN → ReLU"): a BatchNorm2d-like
// BN over the valid frames follows each conv; names "conv.0", "conv.1" (BN), "conv.3", "conv.4"
// (BN), "conv.6", "conv.7".
// Lengths: every conv maps L to (L − k) / s + 1 (floor; 0 when L < k), so
//   ×4: ((L − 1) / 2 − 1) / 2,  ×6: ((L − 1) / 2 − 2) / 3,  ×8: (((L − 1) / 2 − 1) / 2 − 1) / 2,
// the lengths of ESPnet's subsampled masks. A valid output frame only reads valid input frames,
// so padding never changes a valid result; padded output frames are 0.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/conv.hpp>
#include <asrkit/nn/detail/sequence.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/activation.hpp>

namespace asrkit {

struct SubsamplingOptions {
  index_t factor = 4;         ///< 4, 6 or 8
  bool fusionformer = false;  ///< Conv → BN → ReLU
  BatchNormOptions norm{};
  bool input_grad = true;     ///< false: backward skips dL/dfeatures (returns an empty tensor)
};

template <class T>
class Conv2dSubsampling {
  static_assert(std::is_floating_point_v<T>, "Conv2dSubsampling<T>: T must be float or double");

 public:
  Conv2dSubsampling(index_t in_features, index_t d_model, const SubsamplingOptions& o, Rng& rng)
      : options_(o), in_features_(in_features), d_model_(d_model) {
    if (o.factor != 4 && o.factor != 6 && o.factor != 8)
      throw ValueError("subsampling.1", detail::str("Conv2dSubsampling: factor must be 4, 6 or 8, got ",
                                                    o.factor));
    if (in_features < 1 || d_model < 1)
      throw ValueError("subsampling.1", detail::str("Conv2dSubsampling: in_features and d_model must be "
                                                    ">= 1, got ", in_features, " and ", d_model));
    const std::vector<std::array<index_t, 2>> ks =
        o.factor == 4 ? std::vector<std::array<index_t, 2>>{{3, 2}, {3, 2}}
        : o.factor == 6 ? std::vector<std::array<index_t, 2>>{{3, 2}, {5, 3}}
                        : std::vector<std::array<index_t, 2>>{{3, 2}, {3, 2}, {3, 2}};
    index_t f = in_features;
    for (std::size_t i = 0; i < ks.size(); ++i) {
      Conv2dOptions c;
      c.kernel = {ks[i][0], ks[i][0]};
      c.stride = {ks[i][1], ks[i][1]};
      c.input_grad = i > 0 || o.input_grad;
      stages_.push_back(Stage{Conv2d<T>(i == 0 ? 1 : d_model, d_model, c, rng), {}, ks[i][0], ks[i][1], {}, {}});
      if (o.fusionformer) stages_.back().norm.emplace(d_model, o.norm);
      f = conv_length(f, ks[i][0], ks[i][1]);
    }
    if (f < 1)
      throw ValueError("subsampling.1", detail::str("Conv2dSubsampling: in_features ", in_features,
                                                    " is too small for subsampling by ", o.factor));
    out_features_ = f;
    out_.emplace(d_model * f, d_model, rng);
  }

  /// T' for an input of T frames (0 when T is too short).
  index_t output_length(index_t steps) const {
    for (const auto& s : stages_) steps = conv_length(steps, s.kernel, s.stride);
    return steps;
  }
  /// Per-item output lengths.
  std::vector<std::int32_t> output_lengths(const std::vector<std::int32_t>& lengths) const {
    std::vector<std::int32_t> out;
    for (auto l : lengths) out.push_back(static_cast<std::int32_t>(output_length(l)));
    return out;
  }
  std::vector<std::int32_t> output_lengths(TensorView<const std::int32_t> lengths) const {
    return output_lengths(std::vector<std::int32_t>(lengths.data(), lengths.data() + lengths.numel()));
  }

  /// Inference: [T, B, F] features -> [T', B, D].
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) const {
    return run(*this, x, lengths);
  }
  /// Training: batch statistics in the FusionFormer BNs; caches what backward needs.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    Tensor<T> y = run(*this, x, lengths);
    cached_ = true;
    return y;
  }

  /// dL/dfeatures [T, B, F] for dy [T', B, D] (empty when input_grad is false).
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_) throw ValueError("subsampling.3", "Conv2dSubsampling::backward: call forward_train first");
    const Shape want{out_steps_, batch_, d_model_};
    if (dy.shape() != want)
      throw ShapeError("subsampling.2", detail::str("Conv2dSubsampling::backward: argument dy: expected "
                                                    "shape ", want.str(), ", got ", dy.shape().str()));
    Tensor<T> g(dy);
    detail::seq::zero_padding(g.view(), out_lengths_);
    g = out_->backward(g);  // [T', B, D·F']
    Tensor<T> img = frames_to_image(g, d_model_, out_features_);
    for (std::size_t i = stages_.size(); i-- > 0;) {
      Stage& s = stages_[i];
      ops::activation_backward(ops::ActivationKind::relu, TensorView<const T>(), TensorView<const T>(s.relu_out.view()),
                               TensorView<const T>(img.view()), img.view());
      if (s.norm) img = norm_backward(s, img);
      img = s.conv.backward(img);
    }
    if (!options_.input_grad) return Tensor<T>();
    // [B, 1, T, F] -> [T, B, F]
    Tensor<T> dx(Shape{img.dim(2), batch_, in_features_}, uninitialized);
    for (index_t b = 0; b < batch_; ++b)
      for (index_t t = 0; t < img.dim(2); ++t)
        std::copy(img.data() + (b * img.dim(2) + t) * in_features_,
                  img.data() + (b * img.dim(2) + t + 1) * in_features_, dx.data() + (t * batch_ + b) * in_features_);
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    for (std::size_t i = 0; i < stages_.size(); ++i) {
      visit_parameters(stages_[i].conv, f, join_name(prefix, conv_name(i, 0)));
      if (stages_[i].norm)
        visit_parameters(*stages_[i].norm, f, join_name(prefix, conv_name(i, 1)));
    }
    visit_parameters(*out_, f, join_name(prefix, "out.0"));
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    for (std::size_t i = 0; i < stages_.size(); ++i)
      if (stages_[i].norm) visit_buffers(*stages_[i].norm, f, join_name(prefix, conv_name(i, 1)));
  }

  index_t factor() const noexcept { return options_.factor; }
  index_t in_features() const noexcept { return in_features_; }
  index_t d_model() const noexcept { return d_model_; }
  const SubsamplingOptions& options() const noexcept { return options_; }
  /// The conv stages (2 for ×4 and ×6, 3 for ×8), each Conv2d → [BN] → ReLU.
  index_t num_stages() const noexcept { return static_cast<index_t>(stages_.size()); }
  Conv2d<T>& conv(index_t stage) { return stages_.at(static_cast<std::size_t>(stage)).conv; }
  /// Stage `stage`'s BN (FusionFormer; nullptr otherwise or after remove_batch_norms).
  SequenceBatchNorm<T>* norm(index_t stage) {
    auto& n = stages_.at(static_cast<std::size_t>(stage)).norm;
    return n ? &*n : nullptr;
  }
  Linear<T>& out() noexcept { return *out_; }
  /// State-dict name of stage `stage`'s conv (offset 0) or BN (offset 1), e.g. "conv.3".
  std::string conv_name(std::size_t stage, index_t offset) const {
    return "conv." + std::to_string(static_cast<index_t>(stage) * (options_.fusionformer ? 3 : 2) + offset);
  }
  /// Deletes every stage's BN (forward then runs Conv2d → ReLU; the convs keep their names
  /// "conv.0", "conv.3", ...). For transform::fold_batch_norms, after it folded them into the convs.
  void remove_batch_norms() {
    for (auto& s : stages_) s.norm.reset();
  }

 private:
  struct Stage {
    Conv2d<T> conv;
    std::optional<SequenceBatchNorm<T>> norm;
    index_t kernel, stride;
    Tensor<T> relu_out;                 // training cache
    std::vector<std::int32_t> lengths;  // valid output frames per item (the BN mask)
  };

  static index_t conv_length(index_t n, index_t k, index_t s) { return n < k ? 0 : (n - k) / s + 1; }

  // One forward: inference for a const Self, training (batch statistics, caches) otherwise.
  template <class Self>
  static Tensor<T> run(Self& self, TensorView<const T> x, TensorView<const std::int32_t> lengths) {
    constexpr bool train = !std::is_const_v<Self>;
    const index_t feats = self.in_features_;
    auto len = detail::seq::checked_lengths(x, feats, lengths, "Conv2dSubsampling");
    const index_t steps = x.dim(0), batch = x.dim(1);
    if (self.output_length(steps) < 1)
      throw ShapeError("subsampling.2", detail::str("Conv2dSubsampling: ", steps, " frames are too few "
                                                    "for subsampling by ", self.options_.factor));
    // [T, B, F] -> [B, 1, T, F]
    Tensor<T> img(Shape{batch, 1, steps, feats}, uninitialized);
    for (index_t t = 0; t < steps; ++t)
      for (index_t b = 0; b < batch; ++b)
        std::copy(x.data() + (t * batch + b) * feats, x.data() + (t * batch + b + 1) * feats,
                  img.data() + (b * steps + t) * feats);
    for (auto& s : self.stages_) {
      if constexpr (train) img = s.conv.forward_train(img);
      else img = s.conv.forward(img);
      for (auto& l : len) l = static_cast<std::int32_t>(conv_length(l, s.kernel, s.stride));
      if (s.norm) img = norm_forward(s, img, len);
      ops::activation(ops::ActivationKind::relu, TensorView<const T>(img.view()), img.view());
      if constexpr (train) {
        s.relu_out = img;
        s.lengths = len;
      }
    }
    Tensor<T> frames = image_to_frames(img);
    Tensor<T> y;
    if constexpr (train) y = self.out_->forward_train(std::move(frames));
    else y = self.out_->forward(frames);
    detail::seq::zero_padding(y.view(), len);
    if constexpr (train) {
      self.out_lengths_ = len;
      self.out_steps_ = y.dim(0);
      self.batch_ = batch;
    }
    return y;
  }

  // [B, C, H, W] <-> [H, B·W, C]: per-channel statistics over the rows of valid frames h < len[b].
  static Tensor<T> image_to_rows(const Tensor<T>& img) {
    const index_t B = img.dim(0), C = img.dim(1), H = img.dim(2), W = img.dim(3);
    Tensor<T> r(Shape{H, B * W, C}, uninitialized);
    for (index_t b = 0; b < B; ++b)
      for (index_t c = 0; c < C; ++c)
        for (index_t h = 0; h < H; ++h)
          for (index_t w = 0; w < W; ++w) r((h), b * W + w, c) = img(b, c, h, w);
    return r;
  }
  static Tensor<T> rows_to_image(const Tensor<T>& r, index_t B, index_t W) {
    const index_t H = r.dim(0), C = r.dim(2);
    Tensor<T> img(Shape{B, C, H, W}, uninitialized);
    for (index_t b = 0; b < B; ++b)
      for (index_t c = 0; c < C; ++c)
        for (index_t h = 0; h < H; ++h)
          for (index_t w = 0; w < W; ++w) img(b, c, h, w) = r(h, b * W + w, c);
    return img;
  }
  static std::vector<std::int32_t> row_lengths(const std::vector<std::int32_t>& len, index_t W) {
    std::vector<std::int32_t> out;
    for (auto l : len) out.insert(out.end(), static_cast<std::size_t>(W), l);
    return out;
  }
  template <class S>
  static Tensor<T> norm_forward(S& s, const Tensor<T>& img, const std::vector<std::int32_t>& len) {
    const auto rl = row_lengths(len, img.dim(3));
    Tensor<T> rows = image_to_rows(img);
    Tensor<T> y;
    if constexpr (std::is_const_v<S>) y = s.norm->forward(rows, as_view(rl));
    else y = s.norm->forward_train(std::move(rows), as_view(rl));
    return rows_to_image(y, img.dim(0), img.dim(3));
  }
  Tensor<T> norm_backward(Stage& s, const Tensor<T>& g) {
    return rows_to_image(s.norm->backward(image_to_rows(g)), g.dim(0), g.dim(3));
  }

  // [B, C, T', F'] -> [T', B, C·F'] (channel-major per frame) and back.
  static Tensor<T> image_to_frames(const Tensor<T>& img) {
    const index_t B = img.dim(0), C = img.dim(1), H = img.dim(2), W = img.dim(3);
    Tensor<T> f(Shape{H, B, C * W}, uninitialized);
    for (index_t b = 0; b < B; ++b)
      for (index_t c = 0; c < C; ++c)
        for (index_t h = 0; h < H; ++h)
          std::copy(&img(b, c, h, 0), &img(b, c, h, 0) + W, f.data() + (h * B + b) * C * W + c * W);
    return f;
  }
  static Tensor<T> frames_to_image(const Tensor<T>& f, index_t C, index_t W) {
    const index_t H = f.dim(0), B = f.dim(1);
    Tensor<T> img(Shape{B, C, H, W}, uninitialized);
    for (index_t b = 0; b < B; ++b)
      for (index_t c = 0; c < C; ++c)
        for (index_t h = 0; h < H; ++h)
          std::copy(f.data() + (h * B + b) * C * W + c * W, f.data() + (h * B + b) * C * W + (c + 1) * W,
                    &img(b, c, h, 0));
    return img;
  }

  SubsamplingOptions options_;
  index_t in_features_, d_model_, out_features_ = 0;
  std::vector<Stage> stages_;
  std::optional<Linear<T>> out_;
  // training cache
  std::vector<std::int32_t> out_lengths_;
  index_t out_steps_ = 0, batch_ = 0;
  bool cached_ = false;
};

}  // namespace asrkit
