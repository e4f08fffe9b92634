// ds2_model.hpp - Deep Speech 2 (Amodei et al. 2016; ../shared/SPECS.md §3) composed from asrkit
// layers: the model the ds2 tools train, ship and run.
//
//   ds2::Config cfg = ds2::Config::small();             // or tiny(), paper(), from_json(...)
//   ds2::Model<float> model(cfg, rng);
//   auto out = model.forward_train(features, lengths);  // features [T, B, 161] -> logits [T', B,
//   V]
//   ... CTC on out.logits / out.lengths ...
//   model.backward(dlogits);                            // adds to every parameter gradient
//
// Layers, in order (SPECS §3.2-3.4, §3.9):
//   conv.i       Conv2d over (frequency, time) of the spectrogram image [B, C, F, T], no bias;
//   conv.i.norm  BN per channel over the valid (frequency, time) positions of every item
//                (SequenceBatchNorm on rows [T', B·F', C]; padded frames never count), then a
//                clipped ReLU; padded frames are 0 after each block, so a padded batch gives
//                each item what it gets alone (the deepspeech.pytorch MaskConv rule);
//   rnn.i        bidirectional (directions summed, one shared input weight) or forward-only
//                simple RNN / GRU with sequence-wise BN of W x (SPECS §3.3);
//   lookahead    row convolution over τ future frames + clipped ReLU (forward-only models);
//   fc           Linear(H, V): CTC logits.
// Parameter and buffer names are those of tests/reference/ds2_reference.py (a torch.nn.Module),
// so a state dict moves both ways through safetensors.
#pragma once

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/activation.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/conv.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/recurrent.hpp>
#include <asrkit/nn/row_conv.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

namespace ds2 {

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::TensorView;

/// One 2-D convolution of the front end: (frequency, time) sizes, as in SPECS §3.4's table.
struct ConvSpec {
  index_t channels = 32;
  std::array<index_t, 2> kernel{41, 11};
  std::array<index_t, 2> stride{2, 2};
  std::array<index_t, 2> padding{20, 5};

  /// Output size along axis 0 (frequency) or 1 (time) for an input of n: (n + 2p - k) / s + 1,
  /// 0 when the padded input is shorter than the kernel.
  index_t output_size(index_t n, int axis) const {
    const index_t span = n + 2 * padding[axis] - kernel[axis];
    return span < 0 ? 0 : span / stride[axis] + 1;
  }

  /// The layer's options: these sizes, no bias (BN's β takes its role, SPECS §3.3).
  asrkit::Conv2dOptions options() const {
    asrkit::Conv2dOptions o;
    o.kernel = kernel;
    o.stride = stride;
    o.padding = padding;
    o.bias = false;
    return o;
  }
};

/// A DS2 architecture. JSON keys are the member names (Config::to_json / from_json).
struct Config {
  std::string name = "custom";
  index_t bins = 161;  ///< spectrogram bins (20 ms windows at 16 kHz)
  std::vector<ConvSpec> convs{ConvSpec{}};
  std::string cell = "gru";  ///< "gru" or "rnn"
  index_t rnn_layers = 3;
  index_t hidden = 256;
  bool bidirectional = true;
  index_t lookahead = 0;     ///< row-convolution future frames τ (forward-only models)
  index_t vocab = 29;        ///< output labels including the CTC blank (id 0)
  double clip = 20.0;        ///< clipped ReLU ceiling (SPECS §3.2)
  double bn_momentum = 0.1;  ///< running-statistics update of every BN

  /// For unit and parity tests: two small convs, 2 GRU layers of 12.
  static Config tiny(bool bidirectional = true) {
    Config c;
    c.name = bidirectional ? "tiny" : "tiny-forward";
    c.bins = 17;
    c.convs = {ConvSpec{3, {5, 3}, {2, 2}, {2, 1}}, ConvSpec{4, {3, 3}, {2, 1}, {1, 1}}};
    c.rnn_layers = 2;
    c.hidden = 12;
    c.bidirectional = bidirectional;
    c.lookahead = bidirectional ? 0 : 3;
    c.vocab = 7;
    return c;
  }
  /// Trains on 2 CPU cores: one 2-D conv (32 channels, 41×11, stride 4×2, so 41 frequency
  /// rows reach the RNNs), 3 bidirectional GRU layers of 320.
  static Config small() {
    Config c;
    c.name = "small";
    c.convs = {ConvSpec{32, {41, 11}, {4, 2}, {20, 5}}};
    c.rnn_layers = 3;
    c.hidden = 320;
    return c;
  }
  /// The paper-sized benchmark model (SPECS §3.4 2-layer 2-D front end): 2 convs of 32
  /// channels, 5 GRU layers of 800 (the PyTorch anchor shape).
  static Config paper(bool bidirectional = true) {
    Config c;
    c.name = bidirectional ? "paper" : "paper-forward";
    c.convs = {ConvSpec{32, {41, 11}, {2, 2}, {20, 5}}, ConvSpec{32, {21, 11}, {2, 1}, {10, 5}}};
    c.rnn_layers = 5;
    c.hidden = 800;
    c.bidirectional = bidirectional;
    c.lookahead = bidirectional ? 0 : 20;
    return c;
  }

  nlohmann::json to_json() const {
    nlohmann::json convs_json = nlohmann::json::array();
    for (const auto& s : convs)
      convs_json.push_back({{"channels", s.channels},
                            {"kernel", s.kernel},
                            {"stride", s.stride},
                            {"padding", s.padding}});
    return {{"name", name},
            {"bins", bins},
            {"convs", convs_json},
            {"cell", cell},
            {"rnn_layers", rnn_layers},
            {"hidden", hidden},
            {"bidirectional", bidirectional},
            {"lookahead", lookahead},
            {"vocab", vocab},
            {"clip", clip},
            {"bn_momentum", bn_momentum}};
  }

  /// Missing keys keep the defaults above; a wrong type or an invalid value throws
  /// asrkit::ValueError "ds2.1" naming the key.
  static Config from_json(const nlohmann::json& j) {
    Config c;
    auto get = [&](const char* key, auto& out) {
      if (!j.contains(key)) return;
      if constexpr (std::is_integral_v<std::decay_t<decltype(out)>> &&
                    !std::is_same_v<std::decay_t<decltype(out)>, bool>)
        if (!j.at(key).is_number_integer())
          throw asrkit::ValueError(
              "ds2.1", asrkit::detail::str("ds2 config: key \"", key, "\" must be an integer, got ",
                                           j.at(key).dump()));
      try {
        j.at(key).get_to(out);
      } catch (const nlohmann::json::exception& e) {
        throw asrkit::ValueError("ds2.1",
                                 asrkit::detail::str("ds2 config: key \"", key, "\": ", e.what()));
      }
    };
    if (!j.is_object())
      throw asrkit::ValueError(
          "ds2.1", "ds2 config: expected a JSON object, got " + std::string(j.type_name()));
    static const char* const kKeys[] = {"name",       "bins",   "convs",         "cell",
                                        "rnn_layers", "hidden", "bidirectional", "lookahead",
                                        "vocab",      "clip",   "bn_momentum"};
    for (const auto& item : j.items())  // a typo must not silently fall back to a default
      if (std::find_if(std::begin(kKeys), std::end(kKeys),
                       [&](const char* k) { return item.key() == k; }) == std::end(kKeys))
        throw asrkit::ValueError("ds2.1", "ds2 config: unknown key \"" + item.key() + "\"");
    get("name", c.name);
    get("bins", c.bins);
    get("cell", c.cell);
    get("rnn_layers", c.rnn_layers);
    get("hidden", c.hidden);
    get("bidirectional", c.bidirectional);
    get("lookahead", c.lookahead);
    get("vocab", c.vocab);
    get("clip", c.clip);
    get("bn_momentum", c.bn_momentum);
    if (j.contains("convs")) {
      if (!j.at("convs").is_array())
        throw asrkit::ValueError("ds2.1", "ds2 config: key \"convs\" must be an array");
      c.convs.clear();
      for (const auto& e : j.at("convs")) {
        if (!e.is_object())
          throw asrkit::ValueError(
              "ds2.1", "ds2 config: key \"convs\": every entry must be an object, got " +
                           std::string(e.type_name()));
        ConvSpec s;
        const auto sub = [&](const char* key, auto& out) {
          if (e.contains(key)) e.at(key).get_to(out);
        };
        try {
          sub("channels", s.channels);
          sub("kernel", s.kernel);
          sub("stride", s.stride);
          sub("padding", s.padding);
        } catch (const nlohmann::json::exception& ex) {
          throw asrkit::ValueError("ds2.1",
                                   asrkit::detail::str("ds2 config: key \"convs\": ", ex.what()));
        }
        c.convs.push_back(s);
      }
    }
    c.validate();
    return c;
  }

  static Config load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw asrkit::IoError("ds2.2", "ds2 config: cannot open \"" + path + "\"");
    try {
      return from_json(nlohmann::json::parse(in));
    } catch (const nlohmann::json::parse_error& e) {
      throw asrkit::FormatError("ds2.2", "ds2 config \"" + path + "\": " + e.what());
    }
  }

  /// Frequency rows after the conv stack (each conv maps F to (F + 2p - k) / s + 1).
  index_t conv_rows() const {
    index_t f = bins;
    for (const auto& s : convs) f = s.output_size(f, 0);
    return f;
  }
  /// Output frames of an input of `frames` frames (the CTC input length).
  index_t output_frames(index_t frames) const {
    for (const auto& s : convs) frames = s.output_size(frames, 1);
    return frames;
  }

  void validate() const {
    auto bad = [](const std::string& what) {
      throw asrkit::ValueError("ds2.1", "ds2 config: " + what);
    };
    if (bins < 1) bad(asrkit::detail::str("bins must be >= 1, got ", bins));
    if (convs.empty() || convs.size() > 3)
      bad(asrkit::detail::str("convs must have 1 to 3 layers, got ", convs.size()));
    for (const auto& s : convs)
      for (int a = 0; a < 2; ++a)
        if (s.channels < 1 || s.kernel[a] < 1 || s.stride[a] < 1 || s.padding[a] < 0)
          bad("every conv needs channels, kernel and stride >= 1 and padding >= 0");
    if (conv_rows() < 1)
      bad(asrkit::detail::str("the convs leave ", conv_rows(), " frequency rows of ", bins,
                              " bins"));
    if (cell != "gru" && cell != "rnn")
      bad("cell must be \"gru\" or \"rnn\", got \"" + cell + "\"");
    if (rnn_layers < 1 || rnn_layers > 7)
      bad(asrkit::detail::str("rnn_layers must be 1 to 7, got ", rnn_layers));
    if (hidden < 1) bad(asrkit::detail::str("hidden must be >= 1, got ", hidden));
    if (lookahead < 0) bad(asrkit::detail::str("lookahead must be >= 0, got ", lookahead));
    if (lookahead > 0 && bidirectional)
      bad("lookahead (row convolution) is for forward-only models");
    if (vocab < 2) bad(asrkit::detail::str("vocab must be >= 2 (blank + one label), got ", vocab));
    if (!(clip > 0)) bad(asrkit::detail::str("clip must be > 0, got ", clip));
  }
};

/// What a forward pass gives: logits [T', B, V] and each item's valid output frames.
template <class T>
struct Output {
  Tensor<T> logits;
  Tensor<std::int32_t> lengths;
};

namespace detail {

// [B, C, F, T] <-> rows [T, B·F, C]: the layout in which a per-channel BN over the valid
// (frequency, time) positions is a SequenceBatchNorm with each item's length repeated F times.
template <class T>
Tensor<T> image_to_rows(TensorView<const T> x) {
  const index_t B = x.dim(0), C = x.dim(1), F = x.dim(2), S = x.dim(3);
  Tensor<T> r(Shape{S, B * F, C}, asrkit::uninitialized);
  for (index_t b = 0; b < B; ++b)
    for (index_t c = 0; c < C; ++c)
      for (index_t f = 0; f < F; ++f) {
        const T* src = x.data() + ((b * C + c) * F + f) * S;
        T* dst = r.data() + (b * F + f) * C + c;
        for (index_t t = 0; t < S; ++t) dst[t * B * F * C] = src[t];
      }
  return r;
}

template <class T>
Tensor<T> rows_to_image(TensorView<const T> r, index_t B, index_t F) {
  const index_t S = r.dim(0), C = r.dim(2);
  Tensor<T> x(Shape{B, C, F, S}, asrkit::uninitialized);
  for (index_t b = 0; b < B; ++b)
    for (index_t c = 0; c < C; ++c)
      for (index_t f = 0; f < F; ++f) {
        const T* src = r.data() + (b * F + f) * C + c;
        T* dst = x.data() + ((b * C + c) * F + f) * S;
        for (index_t t = 0; t < S; ++t) dst[t] = src[t * B * F * C];
      }
  return x;
}

// Rows [T, B·F, C] <-> the RNN input [T, B, C·F] (feature c·F + f: the order of PyTorch's
// x.view(B, C·F, T) in deepspeech.pytorch).
template <class T>
Tensor<T> rows_to_sequence(TensorView<const T> r, index_t B, index_t F, bool inverse = false) {
  const index_t S = r.dim(0), C = inverse ? r.dim(2) / F : r.dim(2);
  Tensor<T> out(inverse ? Shape{S, B * F, C} : Shape{S, B, C * F}, asrkit::uninitialized);
  for (index_t t = 0; t < S; ++t)
    for (index_t b = 0; b < B; ++b)
      for (index_t f = 0; f < F; ++f)
        for (index_t c = 0; c < C; ++c) {
          const index_t row = ((t * B + b) * F + f) * C + c, seq = (t * B + b) * C * F + c * F + f;
          if (inverse)
            out.data()[row] = r.data()[seq];
          else
            out.data()[seq] = r.data()[row];
        }
  return out;
}

}  // namespace detail

template <class T>
class Stream;

template <class T>
class Model {
  static_assert(std::is_floating_point_v<T>, "ds2::Model<T>: T must be float or double");

 public:
  using Gru = asrkit::Recurrent<asrkit::GRUCell<T>>;
  using Rnn = asrkit::Recurrent<asrkit::RNNCell<T>>;

  Model(const Config& config, asrkit::Rng& rng) : config_(config), lookahead_act_(T(config.clip)) {
    config_.validate();
    asrkit::BatchNormOptions bn;
    bn.momentum = config_.bn_momentum;
    index_t channels = 1;
    for (std::size_t i = 0; i < config_.convs.size(); ++i) {
      const auto& s = config_.convs[i];
      asrkit::Conv2dOptions o = s.options();
      o.input_grad = i > 0;  // nothing upstream of the first conv learns
      convs_.push_back({asrkit::Conv2d<T>(channels, s.channels, o, rng),
                        asrkit::SequenceBatchNorm<T>(s.channels, bn),
                        asrkit::ClippedReLU<T>(T(config_.clip))});
      channels = s.channels;
    }
    index_t features = channels * config_.conv_rows();
    asrkit::RecurrentOptions ro;
    ro.bidirectional = config_.bidirectional;
    ro.merge = asrkit::RecurrentMerge::sum;
    ro.share_input_weights = true;
    ro.input_batch_norm = true;
    ro.batch_norm = bn;
    ro.init = asrkit::RecurrentInit::ds2;
    for (index_t l = 0; l < config_.rnn_layers; ++l) {
      if (config_.cell == "gru") {
        asrkit::GRUCellOptions c;
        c.hidden_size = config_.hidden;
        c.update = asrkit::GRUUpdate::ds2;
        rnns_.emplace_back(std::in_place_type<Gru>, features, c, ro, rng);
      } else {
        asrkit::RNNCellOptions c;
        c.hidden_size = config_.hidden;
        c.activation = asrkit::RecurrentActivation::clipped_relu;
        c.clip = config_.clip;
        rnns_.emplace_back(std::in_place_type<Rnn>, features, c, ro, rng);
      }
      features = config_.hidden;
    }
    if (config_.lookahead > 0) lookahead_.emplace_back(features, config_.lookahead, rng);
    fc_.emplace_back(features, config_.vocab, rng);
  }

  const Config& config() const noexcept { return config_; }

  /// Inference (running BN statistics). features [T, B, bins] (time-major, zero past each
  /// length), lengths [B] or an empty view (all T).
  Output<T> forward(TensorView<const T> features,
                    TensorView<const std::int32_t> lengths = {}) const {
    return const_cast<Model*>(this)->template run<false>(features, lengths);
  }
  /// Training: batch statistics, caches for backward.
  Output<T> forward_train(TensorView<const T> features,
                          TensorView<const std::int32_t> lengths = {}) {
    return run<true>(features, lengths);
  }

  /// dL/dlogits [T', B, V] of the last forward_train; adds to every parameter gradient.
  void backward(TensorView<const T> dlogits) {
    Tensor<T> d = fc_[0].backward(dlogits);
    if (!lookahead_.empty()) d = lookahead_[0].backward(lookahead_act_.backward(d).view());
    for (auto it = rnns_.rbegin(); it != rnns_.rend(); ++it)
      d = std::visit([&](auto& r) { return r.backward(d.view()); }, *it);
    d = detail::rows_to_sequence<T>(d.view(), batch_, rows_.back(), /*inverse=*/true);
    for (std::size_t i = convs_.size(); i-- > 0;) {
      auto& c = convs_[i];
      Tensor<T> drows = c.norm.backward(c.act.backward(d.view()).view());
      Tensor<T> dimage = detail::rows_to_image<T>(drows.view(), batch_, rows_[i]);
      Tensor<T> dx = c.conv.backward(dimage.view());
      if (i > 0) d = detail::image_to_rows<T>(dx.view());
    }
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    visit_layers(
        [&](auto& layer, const std::string& name) { asrkit::visit_parameters(layer, f, name); },
        prefix);
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    visit_layers(
        [&](auto& layer, const std::string& name) { asrkit::visit_buffers(layer, f, name); },
        prefix);
  }

  /// Parameters (weights, biases, γ, β), not counting BN statistics.
  index_t num_parameters() {
    index_t n = 0;
    for_each_parameter([&](const std::string&, auto& p) { n += p.value.numel(); });
    return n;
  }

 private:
  struct ConvBlock {
    asrkit::Conv2d<T> conv;
    asrkit::SequenceBatchNorm<T> norm;
    asrkit::ClippedReLU<T> act;
  };

  template <class F>
  void visit_layers(F&& f, std::string_view prefix) {
    const std::string p = prefix.empty() ? std::string() : std::string(prefix) + ".";
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      const std::string n = p + "conv." + std::to_string(i);
      f(convs_[i].conv, n);
      f(convs_[i].norm, n + ".norm");
    }
    for (std::size_t i = 0; i < rnns_.size(); ++i)
      std::visit([&](auto& r) { f(r, p + "rnn." + std::to_string(i)); }, rnns_[i]);
    if (!lookahead_.empty()) f(lookahead_[0], p + "lookahead");
    f(fc_[0], p + "fc");
  }

  // One body for inference and training (Train: forward_train everywhere, caches kept).
  template <bool Train>
  Output<T> run(TensorView<const T> features, TensorView<const std::int32_t> lengths) {
    if (features.rank() != 3 || features.dim(2) != config_.bins)
      throw asrkit::ShapeError(
          "ds2.3", asrkit::detail::str("ds2::Model: argument features: expected shape [T, B, ",
                                       config_.bins, "], got ", features.shape().str()));
    const index_t steps = features.dim(0), batch = features.dim(1);
    const auto len =
        asrkit::detail::checked_lengths(lengths, steps, batch, "ds2::Model", {"ds2.4", "ds2.5"});
    if (Train) batch_ = batch;
    // [T, B, bins] -> the image [B, 1, bins, T].
    Tensor<T> image(Shape{batch, 1, config_.bins, steps}, asrkit::uninitialized);
    for (index_t t = 0; t < steps; ++t)
      for (index_t b = 0; b < batch; ++b)
        for (index_t f = 0; f < config_.bins; ++f)
          image.data()[(b * config_.bins + f) * steps + t] =
              t < len[static_cast<std::size_t>(b)]
                  ? features.data()[(t * batch + b) * config_.bins + f]
                  : T(0);

    std::vector<std::int32_t> frames(len.begin(), len.end());
    Tensor<T> rows;
    if (Train) rows_.clear();
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      auto& c = convs_[i];
      Tensor<T> y = Train ? c.conv.forward_train(image.view()) : c.conv.forward(image.view());
      if (Train) rows_.push_back(y.dim(2));
      for (auto& n : frames) n = static_cast<std::int32_t>(config_.convs[i].output_size(n, 1));
      rows = normalize_conv<Train>(i, y.view(), frames);
      if (i + 1 < convs_.size()) image = detail::rows_to_image<T>(rows.view(), batch, y.dim(2));
    }
    const index_t F = config_.conv_rows();
    Tensor<T> x = detail::rows_to_sequence<T>(rows.view(), batch, F);
    Tensor<std::int32_t> out_len(Shape{batch});
    std::copy(frames.begin(), frames.end(), out_len.data());
    for (auto& r : rnns_)
      x = std::visit(
          [&](auto& layer) {
            return Train ? layer.forward_train(x.view(), out_len.view())
                         : layer.forward(x.view(), out_len.view());
          },
          r);
    if (!lookahead_.empty()) {
      x = Train ? lookahead_[0].forward_train(x.view(), out_len.view())
                : lookahead_[0].forward(x.view(), out_len.view());
      // moved in: the clipped ReLU keeps x for backward instead of a copy of its output
      x = Train ? lookahead_act_.forward_train(std::move(x)) : lookahead_act_.forward(x.view());
    }
    Tensor<T> logits = Train ? fc_[0].forward_train(x.view()) : fc_[0].forward(x.view());
    return {std::move(logits), std::move(out_len)};
  }

  // Conv block i after its convolution: y [B, C, F, S] with `frames` valid columns per item ->
  // rows [S, B·F, C] through BN over the valid positions (0 on padded frames, which the
  // clipped ReLU keeps 0) and the clipped ReLU.
  template <bool Train>
  Tensor<T> normalize_conv(std::size_t i, TensorView<const T> y,
                           const std::vector<std::int32_t>& frames) {
    auto& c = convs_[i];
    const index_t batch = y.dim(0), F = y.dim(2);
    Tensor<std::int32_t> repeated(Shape{batch * F});  // each item's frames, once per row f
    for (index_t b = 0; b < batch; ++b)
      for (index_t f = 0; f < F; ++f)
        repeated.data()[b * F + f] = frames[static_cast<std::size_t>(b)];
    Tensor<T> rows = detail::image_to_rows<T>(y);
    rows = Train ? c.norm.forward_train(std::move(rows), repeated.view())
                 : c.norm.forward(rows.view(), repeated.view());
    return Train ? c.act.forward_train(std::move(rows)) : c.act.forward(rows.view());
  }

  friend class Stream<T>;

  Config config_;
  std::vector<ConvBlock> convs_;
  std::vector<std::variant<Rnn, Gru>> rnns_;
  std::vector<asrkit::RowConvolution<T>> lookahead_;  // 0 or 1
  asrkit::ClippedReLU<T> lookahead_act_;
  std::vector<asrkit::Linear<T>> fc_;  // 1 (a vector: Linear has no default constructor)
  // Training cache: batch size and the frequency rows after each conv.
  index_t batch_ = 0;
  std::vector<index_t> rows_;
};

}  // namespace ds2
